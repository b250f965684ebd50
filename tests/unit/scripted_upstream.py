"""A provider scripted per test: a real asyncio TCP (or TLS) server on 127.0.0.1, one handler per connection.

It counts the connections it accepted and keeps every request's raw bytes, so a test can say how
many connections a client used and what exactly went over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType

Handler = Callable[["Exchange"], Awaitable[None]]


class Exchange:
    """One accepted connection, as the handler sees it."""

    def __init__(self, server: ScriptedUpstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.client_closed = asyncio.Event()

    async def request(self) -> bytes | None:
        """The next request's raw bytes (head and Content-Length body), or None once the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        raw = head + await self.reader.readexactly(length)
        self.server.requests.append(raw)
        return raw

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_client(self) -> bool:
        """Wait until the client closes or resets the connection; True if it sent nothing more before.

        `client_closed` is set then, for a test to wait on while the handler does this.
        """
        try:
            return await self.reader.read() == b""
        except ConnectionError:
            return True
        finally:
            self.client_closed.set()


def answer(body: bytes = b'{"ok":true}', *headers: bytes, status: bytes = b"200 OK") -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length body."""
    head = [b"HTTP/1.1 " + status, b"content-type: application/json", *headers, b"content-length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def keep_alive(exchange: Exchange) -> None:
    """Answer every request on the connection with the same small JSON body."""
    while await exchange.request() is not None:
        await exchange.send(answer())


class ScriptedUpstream:
    """`async with ScriptedUpstream(handler) as server:` then `server.base_url`, `server.accepted`."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self._handler = handler
        self._tls = tls
        self._host = host
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.requests: list[bytes] = []
        self.exchanges: list[Exchange] = []
        self.port = 0

    @property
    def base_url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}/v1"

    async def __aenter__(self) -> ScriptedUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        exchange = Exchange(self, reader, writer)
        self.exchanges.append(exchange)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(exchange)
        except ConnectionError:
            pass  # the client dropped the connection: what several tests do on purpose
        except asyncio.CancelledError:
            # The server's own shutdown: ends the task normally, as Python 3.11's start_server
            # callback logs a cancelled handler as an error.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
