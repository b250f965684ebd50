"""The raw upstream: an `asyncio.Protocol` on uvloop that does nothing but answer, so it costs next to nothing.

A POST whose body holds `"stream": true` gets the canned 50-event SSE stream: chunked, one chunk per
event, each event written on its own, as a provider flushes each event (so a proxy relays 50 reads, not
one); any other POST gets the canned chat completion (Content-Length, one write). Both bodies are read
from files once at start (the harness writes the mock's own answers there); no request body is decoded.
Keep-alive unless the client asks to close; GET /health answers 200. With a token delay the events are
spaced by it (timers, no task per stream). Standalone (run by path), no project imports:
`python raw_upstream.py --port N --json FILE --sse FILE [--token-delay S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
from pathlib import Path
from typing import Final, cast

import uvloop

_STREAM: Final = re.compile(rb'"stream"\s*:\s*true')
_MAX_HEAD: Final = 64 * 1024
_HEALTH: Final = b'{"status":"ok"}'


def split_events(sse: bytes) -> list[bytes]:
    """The stream's events, each with its blank-line terminator."""
    return [event + b"\n\n" for event in sse.split(b"\n\n") if event]


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 section 7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def fixed(status: bytes, content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %b\r\nContent-Type: %b\r\nContent-Length: %d\r\n\r\n" % (status, content_type, len(body))
    return head + body


STREAM_HEAD: Final = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"
_BAD: Final = fixed(b"400 Bad Request", b"text/plain", b"bad request\n")
_NO_LENGTH: Final = fixed(b"411 Length Required", b"text/plain", b"Content-Length required\n")


class Request:
    """What the answer depends on, parsed from one request head (header names are case-insensitive)."""

    __slots__ = ("body_length", "close", "method", "path")

    def __init__(self, method: bytes, path: bytes, body_length: int | None, close: bool) -> None:
        self.method, self.path, self.body_length, self.close = method, path, body_length, close


def parse_head(head: bytes) -> Request | None:
    """The request line and the two headers that matter; None for a head that is not HTTP/1.x."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    length: int | None = 0
    close = parts[2] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            length = None  # request bodies in chunks are not needed by any client of this benchmark
        elif name == b"connection":
            close = value == b"close" or (close and value != b"keep-alive")
    return Request(parts[0], parts[1], length, close)


class Answers:
    """The canned answers, prepared once."""

    def __init__(self, json_body: bytes, sse_body: bytes, token_delay: float) -> None:
        self.json = fixed(b"200 OK", b"application/json", json_body)
        self.events = [chunk(event) for event in split_events(sse_body)]
        self.health = fixed(b"200 OK", b"application/json", _HEALTH)
        self.token_delay = token_delay


class RawUpstream(asyncio.Protocol):
    """One connection: requests answered in order; a delayed stream holds back the next request."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self.pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.pending is not None:
            self.pending.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._serve()

    def _serve(self) -> None:
        while self.transport is not None and not self.streaming:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self._finish(_BAD, close=True)
                return
            request = parse_head(bytes(self.buffer[:end]))
            if request is None or request.body_length is None:
                self._finish(_BAD if request is None else _NO_LENGTH, close=True)
                return
            stop = end + 4 + request.body_length
            if len(self.buffer) < stop:
                return
            body = self.buffer[end + 4 : stop]
            del self.buffer[:stop]
            if request.method == b"GET":
                self._finish(self.answers.health, request.close)
            elif not _STREAM.search(body):
                self._finish(self.answers.json, request.close)
            elif self.answers.token_delay <= 0:
                self.transport.write(STREAM_HEAD)
                for event in self.answers.events:
                    self.transport.write(event)
                self._finish(LAST_CHUNK, request.close)
            else:
                self.streaming = True
                self.transport.write(STREAM_HEAD)
                self._next_event(0, request.close)

    def _next_event(self, index: int, close: bool) -> None:
        self.pending = None
        if self.transport is None:
            return
        events = self.answers.events
        if index < len(events):
            self.transport.write(events[index])
            loop = asyncio.get_running_loop()
            self.pending = loop.call_later(self.answers.token_delay, self._next_event, index + 1, close)
            return
        self.streaming = False
        self._finish(LAST_CHUNK, close)
        self._serve()

    def _finish(self, answer: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(answer)
        if close:
            self.transport.close()
            self.transport = None


async def serve(port: int, answers: Answers) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RawUpstream(answers), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json", type=Path, required=True, help="the non-stream answer's body")
    parser.add_argument("--sse", type=Path, required=True, help="the event stream's body")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between events (default 0)")
    args = parser.parse_args()
    answers = Answers(args.json.read_bytes(), args.sse.read_bytes(), args.token_delay)
    uvloop.run(serve(args.port, answers))


if __name__ == "__main__":
    main()
