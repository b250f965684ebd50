"""A tiny HTTP/1.1 client with str headers for cases the SDKs cannot express (bad bodies, chunked uploads).

The bytes go over `tests.e2e.raw_http`, which also parses the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.e2e.raw_http import address, exchange, parse


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request on a fresh connection; `chunks` sends the body chunked."""
    host, port = address(url)
    given = {name.lower() for name in headers or {}}
    # RFC 9110 7.2: Host names the port too, as browsers send it.
    lines = [f"{method} {path} HTTP/1.1", *([] if "host" in given else [f"Host: {host}:{port}"]), "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        payload = b""
    answer = parse(exchange(url, "\r\n".join(lines).encode() + b"\r\n\r\n" + payload, timeout))
    headers_seen = {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers.items()}
    return RawResponse(answer.status, headers_seen, answer.body)
