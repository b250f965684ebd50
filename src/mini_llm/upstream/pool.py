"""The keep-alive connections to one origin (scheme, host, port): a bounded pool, idle ones LIFO.

At most `limit` connections are open at once, busy, idle or connecting. A request past that waits
its turn (FIFO) for a connection or a free slot, at most `timeout` seconds. The most recently used
idle connection goes out first, so the others age out: one timer per pool closes those idle for
`idle_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections import deque

from mini_llm.upstream.connection import UpstreamConnection
from mini_llm.upstream.request_head import Origin


class PoolTimeout(TimeoutError):
    """No connection or slot came free within the timeout: the provider was not contacted."""


class OriginPool:
    """The connections to one origin; `acquire` hands out one that is open as far as the loop has seen."""

    __slots__ = (
        "_connections",
        "_idle",
        "_idle_timeout",
        "_limit",
        "_open",
        "_ssl",
        "_sweeper",
        "_timeout",
        "_waiters",
        "loop",
        "origin",
    )

    def __init__(
        self, origin: Origin, limit: int, timeout: float, idle_timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()  # made by the first request: one loop per worker
        self._limit = limit
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._ssl = tls
        self._open = 0  # slots taken: connections open or being opened
        self._idle: list[UpstreamConnection] = []  # oldest first; the newest goes out first
        self._connections: set[UpstreamConnection] = set()
        self._waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    async def acquire(self) -> UpstreamConnection:
        """A connection ready for a request: idle, handed over, or new (raises OSError, TimeoutError or PoolTimeout).

        An idle connection the provider closed is dropped unused. A new connection that closes
        before the request is written (nothing of it went out) is replaced once, by another new one.
        """
        deadline = -1.0
        replaced = False
        while True:
            idle = self._idle
            while idle:
                connection = idle.pop()
                connection.idle_since = -1.0
                if connection.usable:
                    return connection
                connection.abort()
            if self._open < self._limit:
                self._open += 1
            else:
                if deadline < 0:
                    deadline = self.loop.time() + self._timeout
                handed = await self._wait_turn(deadline)
                if handed is not None:
                    if handed.usable:
                        return handed
                    handed.abort()
                    continue
            connection = await self._connect()
            if connection.usable:
                return connection
            connection.abort()
            if replaced:
                raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
            replaced = True

    def adopt(self, connection: UpstreamConnection) -> None:
        """A new connection is made: the slot reserved for it is now its own."""
        self._connections.add(connection)

    def release(self, connection: UpstreamConnection) -> None:
        """A connection whose exchange ended cleanly: to the first waiter, else idle."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = self.loop.time()
        self._idle.append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._idle_timeout, self._sweep)

    def forget(self, connection: UpstreamConnection) -> None:
        """A connection is closing: its slot goes to the first waiter, else it is free."""
        if connection.idle_since >= 0:
            connection.idle_since = -1.0
            self._idle.remove(connection)
        self._connections.discard(connection)
        self._free_slot()

    def close(self) -> None:
        """Close every connection, busy ones too; whoever waits for one gets a connection error."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionAbortedError(errno.ECONNABORTED, os.strerror(errno.ECONNABORTED)))
        for connection in list(self._connections):
            if connection.idle_since >= 0:
                connection.close()
            else:
                connection.abort()  # its response fails: "the connection closed"

    async def _connect(self) -> UpstreamConnection:
        """Open a connection in a slot already taken; the slot is freed if it cannot be made."""
        loop = self.loop
        connection = UpstreamConnection(self)
        origin = self.origin
        try:
            async with asyncio.timeout(self._timeout):
                if self._ssl is None:
                    await loop.create_connection(lambda: connection, origin.host, origin.port)
                else:
                    # SNI and the certificate's name check both use the host (RFC 6066 3).
                    await loop.create_connection(
                        lambda: connection,
                        origin.host,
                        origin.port,
                        ssl=self._ssl,
                        server_hostname=origin.host,
                        ssl_handshake_timeout=self._timeout,
                    )
        except BaseException:
            if not connection.owns_slot:  # else its connection_lost frees the slot
                self._free_slot()
            raise
        return connection

    async def _wait_turn(self, deadline: float) -> UpstreamConnection | None:
        """Wait (FIFO, until `deadline`) for a connection handed over, or None: a slot freed for a new one."""
        loop = self.loop
        waiter: asyncio.Future[UpstreamConnection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # handed over just as the request was cancelled
            raise
        finally:
            timer.cancel()

    def _pass_on(self, handed: UpstreamConnection | None) -> None:
        """What a cancelled waiter was handed goes on: a slot to the next, a connection only if still open."""
        if handed is None:
            self._free_slot()
        elif handed.usable:
            self.release(handed)
        else:
            handed.abort()  # closed or closing since the hand-over: never idle; its slot is freed once

    def _free_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # a slot: the waiter opens its own connection
                return
        self._open -= 1

    def _sweep(self) -> None:
        """Close the connections idle for `idle_timeout`; re-arm for the oldest one left."""
        self._sweeper = None
        idle = self._idle
        loop = self.loop
        expired = loop.time() - self._idle_timeout
        while idle and idle[0].idle_since <= expired:
            connection = idle.pop(0)
            connection.idle_since = -1.0
            connection.close()
        if idle:
            self._sweeper = loop.call_at(idle[0].idle_since + self._idle_timeout, self._sweep)


def _expire(waiter: asyncio.Future[UpstreamConnection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout())
