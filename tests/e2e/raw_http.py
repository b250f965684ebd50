"""HTTP/1.1 exchanges as raw bytes, for requests no client library sends: odd header bytes, fuzzed input."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import Any

import msgspec


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def request_bytes(url: str, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """One request on a connection the server closes after answering; Content-Length from the body."""
    host, port = address(url)
    lines = [method + b" " + path + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(url: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` as it is and read until the server closes."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        # The server may answer (413, 400) and close before the whole body is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return bytes(received)


def parse(data: bytes) -> Answer:
    """Status, lowercase headers and the body (de-chunked) of one HTTP/1.1 answer, past any 1xx.

    A repeated header is combined into one value, comma-separated (RFC 9110 5.3), so a test sees
    every copy the server sent, never only the last.
    """
    head, _, body = data.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1"):  # 100 Continue before the final answer (RFC 9110 15.2)
        head, _, body = body.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        key, value = name.strip().lower(), value.strip()
        headers[key] = headers[key] + b", " + value if key in headers else value
    if headers.get(b"transfer-encoding") == b"chunked":
        body = _dechunk(body)
    return Answer(int(status_line.split()[1]), headers, body)


def send(
    url: str, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
) -> Answer:
    return parse(exchange(url, request_bytes(url, method, path, headers or [], body)))


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)
