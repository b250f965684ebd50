"""A tiny HTTP/1.1 client for cases the SDKs cannot express (bad bodies, chunked uploads).

The bytes go over `tests.e2e.raw_http`, which also parses the answer into its `Answer` (bytes headers).
"""

from __future__ import annotations

from tests.e2e.raw_http import Answer, address, exchange, parse


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
    timeout: float = 10.0,
) -> Answer:
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
    return parse(exchange(url, "\r\n".join(lines).encode() + b"\r\n\r\n" + payload, timeout))
