"""One keep-alive HTTP/1.1 connection to a provider, as an asyncio.Protocol: no StreamReader in between.

The connection carries one exchange at a time. Whatever the transport reports goes straight to
the response being read; while idle in its pool, any event (bytes, EOF, loss) marks it dead, so a
connection the provider closed is never handed out again.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from mini_llm.upstream.fast_response import FastResponse
    from mini_llm.upstream.pool import OriginPool


class UpstreamConnection(asyncio.Protocol):
    """The transport's events, routed to the current response; the pool's slot is held until it closes."""

    __slots__ = ("_pool", "closed", "idle_since", "owns_slot", "response", "transport")

    def __init__(self, pool: OriginPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.response: FastResponse | None = None
        self.closed = False
        self.owns_slot = False  # True from connection_made until the pool forgets it
        self.idle_since = -1.0  # the loop time it went idle; negative while in use

    @property
    def usable(self) -> bool:
        """Open as far as the loop has seen: no EOF, no loss, not closing (checked before every write)."""
        transport = self.transport
        return not self.closed and transport is not None and not transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # uvloop and asyncio both set it already; set here so no loop or version can leave it off.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.owns_slot = True
        self._pool.adopt(self)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is not None:
            response.feed(data)
        else:
            # Bytes while no request is out: the next answer could not be told from them.
            self.abort()

    def eof_received(self) -> None:
        self.closed = True
        response = self.response
        if response is not None:
            response.eof()
        # Returning None lets the transport close itself: a half-closed connection is of no use.

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._forget()
        response = self.response
        if response is not None:
            self.response = None
            response.lost(exc)

    def resume_writing(self) -> None:
        # The provider took a good part of a large request body: it is reading, not silent.
        response = self.response
        if response is not None:
            response.request_taken()

    def pause_reading(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def finish(self, keep_alive: bool) -> None:
        """The answer was read to its clean end: back to the pool if the exchange left nothing behind.

        Not when the provider said `Connection: close`, nor while a part of the request is still
        unsent (a provider that answered early may not read the rest as the request's own body):
        then it is dropped at once, since a polite close waits for the provider to take the rest.
        """
        self.response = None
        transport = self.transport
        unsent = transport.get_write_buffer_size() if transport is not None else 0
        if keep_alive and self.usable and not unsent:
            self._pool.release(self)
        elif unsent:
            self.abort()
        else:
            self.close()

    def close(self) -> None:
        """Close politely (TLS close_notify, pending writes flushed): for a connection nobody waits on."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._forget()

    def abort(self) -> None:
        """Drop the connection at once; a response still reading it learns so from connection_lost."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._forget()

    def _forget(self) -> None:
        if self.owns_slot:
            self.owns_slot = False
            self._pool.forget(self)
