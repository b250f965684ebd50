"""One provider answer read by the fast client: the parser's pieces queued for the relay, flow-controlled.

The connection hands each `data_received` to `feed`; the parser turns it into body pieces, which
wait in a deque until the relay takes them. One future at a time wakes the reader. Silence is
watched by one `call_later` timer per answer, not `asyncio.wait_for`, which would cost a task.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from mini_llm.errors import GatewayError
from mini_llm.hotpath import HTTPParseError, ResponseParser
from mini_llm.upstream import is_event_stream
from mini_llm.upstream.connection import UpstreamConnection
from mini_llm.upstream.failures import ProviderFailures

# Backpressure: past HIGH_WATER body bytes the relay has not taken yet, the provider is no longer
# read (its TCP window fills and it waits); reading resumes once the queue is down to LOW_WATER.
# One read of the transport adds at most 256 KiB more, so a slow client holds about 512 KiB per stream.
HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
_CLOSED: Final = "the connection closed"
_CLOSED_HERE: Final = "the answer was closed"


class FastResponse:
    """Status and headers once they are in; the body through `read()` or `chunks()`, once."""

    __slots__ = (
        "_connection",
        "_ended",
        "_error",
        "_failures",
        "_heard",
        "_high_water",
        "_last_heard",
        "_loop",
        "_parser",
        "_paused",
        "_pieces",
        "_queued",
        "_timer",
        "_unsent",
        "_waiter",
        "content_length",
        "headers",
        "status",
    )

    def __init__(
        self, connection: UpstreamConnection, failures: ProviderFailures, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._loop = loop
        # The connection until the answer is read to its end (then it is back in the pool) or dropped.
        self._connection: UpstreamConnection | None = connection
        connection.response = self
        self._failures = failures
        self._parser = ResponseParser()
        self._pieces: deque[bytes] = deque()
        self._queued = 0
        self._high_water = HIGH_WATER
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: GatewayError | None = None
        self._heard = False  # the status line and headers are in
        self._ended = False  # the body is complete: nothing more comes from the provider
        self._last_heard = 0.0
        self._unsent = 0  # the request bytes the transport still held at the last check for silence
        self._timer: asyncio.TimerHandle | None = loop.call_later(failures.timeout, self._silent_before_head)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None

    @property
    def is_event_stream(self) -> bool:
        return is_event_stream(self.headers)

    # The connection's side: what the provider sends.

    def feed(self, data: bytes) -> None:
        if self._ended:
            # Bytes past a complete answer: the answer stands, the connection cannot be trusted again.
            self._drop()
            return
        parser = self._parser
        try:
            pieces = parser.feed(data)
        except HTTPParseError as exc:
            if not self._heard and parser.head_complete:  # the head was fine, the body after it was not
                self._head_in()
            self._fail(self._failures.broke(self._heard, str(exc)))
            return
        if not self._heard:
            if not parser.head_complete:
                return
            self._head_in()
        if pieces:
            self._queue(pieces)
        if parser.done:
            self._end()
        else:
            self._last_heard = self._loop.time()
        self._wake()

    def eof(self) -> None:
        """The provider closed its side: the end of a close-delimited body, else a failure."""
        if self._ended or self._error is not None:
            return
        try:
            pieces = self._parser.feed_eof()
        except HTTPParseError:
            self._fail(self._failures.broke(self._heard, _CLOSED))
            return
        if pieces:
            self._queue(pieces)
        self._end()
        self._wake()

    def lost(self, exc: Exception | None) -> None:
        """The connection is gone; without an EOF first, the body is cut short, whatever `exc` says.

        Only the provider's EOF may end a close-delimited body: a loss without one is a reset, our
        own abort (the pool's shutdown), or, on uvloop, a TLS connection that ended without
        close_notify, which RFC 9112 9.8 says leaves the answer incomplete.
        """
        self._connection = None
        self._fail(self._failures.broke(self._heard, _CLOSED))

    def request_taken(self) -> None:
        """The transport handed (nearly) all of a large request to the kernel: the wait for the head starts now."""
        if not self._heard and self._error is None:
            self._cancel_timer()
            self._timer = self._loop.call_later(self._failures.timeout, self._silent_before_head)

    # The relay's side.

    async def answered(self) -> None:
        """Wait for the status line and headers (the send's last step); raises the 502/504 on failure."""
        while not self._heard:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def read(self) -> bytes:
        try:
            # The whole body is wanted: never pause reading for it, which would wait on itself.
            self._high_water = sys.maxsize
            self._resume()
            while not self._ended:
                if self._error is not None:
                    raise self._error
                await self._wait()
            if self._error is not None:  # closed after its end, before it was taken
                raise self._error
            pieces = self._pieces
            body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces.clear()
            self._queued = 0
            self._release()
            return body
        except BaseException:
            self.close()
            raise

    async def chunks(self) -> AsyncIterator[bytes]:
        pieces = self._pieces
        try:
            while True:
                if pieces:
                    # What came while the relay was busy goes on as one piece (as aiohttp's readany
                    # joins its buffer): a chunked stream is one HTTP chunk per event, and a send
                    # per event would cost the most exactly when the gateway is busiest.
                    if len(pieces) == 1:
                        piece = pieces.popleft()
                    else:
                        piece = b"".join(pieces)
                        pieces.clear()
                    self._queued -= len(piece)
                    if self._paused and self._queued <= LOW_WATER:
                        self._resume()
                    yield piece
                    # NOTE: not kept while waiting for the next piece: a silent provider's stream
                    # would otherwise keep its last piece alive, uncounted by the stream budget.
                    del piece
                elif self._error is not None:
                    raise self._error
                elif self._ended:
                    self._release()
                    return
                else:
                    await self._wait()
        finally:
            self.close()  # a no-op after the clean end; else the consumer left (or failed) mid-answer

    def close(self) -> None:
        """Drop the answer; a reader still waiting for it wakes with a 502 ("the answer was closed")."""
        if self._connection is not None:
            self._drop()
        if self._error is None and (self._pieces or not self._ended):  # else the body was taken whole
            self._error = self._failures.broke(self._heard, _CLOSED_HERE)
            self._wake()
        self._pieces.clear()

    # Internals.

    def _head_in(self) -> None:
        parser = self._parser
        self._heard = True
        self.status = parser.status
        self.headers = parser.headers
        length = parser.content_length
        self.content_length = None if length < 0 else length
        self._cancel_timer()
        if not parser.done:
            self._last_heard = self._loop.time()
            self._timer = self._loop.call_later(self._failures.timeout, self._check_silence)

    def _queue(self, pieces: list[bytes]) -> None:
        self._pieces.extend(pieces)
        queued = self._queued
        for piece in pieces:
            queued += len(piece)
        self._queued = queued
        if queued > self._high_water and not self._paused and self._connection is not None:
            self._paused = True
            self._connection.pause_reading()

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._connection is not None:
                self._connection.resume_reading()
            self._last_heard = self._loop.time()  # the silence is measured from now: the pause was ours
            if self._timer is None and not self._ended and self._error is None:
                self._timer = self._loop.call_later(self._failures.timeout, self._check_silence)

    def _end(self) -> None:
        self._ended = True
        self._cancel_timer()

    def _release(self) -> None:
        """The body was taken to its clean end: the connection goes back to its pool if it may."""
        connection = self._connection
        if connection is not None:
            self._connection = None
            if self._paused:  # an idle connection must read, or its provider's close goes unseen
                self._paused = False
                connection.resume_reading()
            connection.finish(self._parser.keep_alive)

    def _drop(self) -> None:
        connection = self._connection
        self._connection = None
        self._cancel_timer()
        if connection is not None:
            connection.response = None
            connection.abort()

    def _fail(self, error: GatewayError) -> None:
        """The first failure wins; the connection is dropped, never reused after an anomaly."""
        if self._error is not None or self._ended:
            return
        self._error = error
        self._drop()
        self._wake()

    def _silent_before_head(self) -> None:
        """No head in `timeout`: a 504, unless the provider is still taking a large request in.

        A provider reading the body is not silent: while the transport's buffer of the request
        shrinks from one check to the next, the wait goes on (as aiohttp's read timeout starts once
        the request is written).
        """
        self._timer = None
        connection = self._connection
        unsent = connection.transport.get_write_buffer_size() if connection and connection.transport else 0
        if unsent and unsent != self._unsent:
            self._unsent = unsent
            self._timer = self._loop.call_later(self._failures.timeout, self._silent_before_head)
        else:
            self._fail(self._failures.silent(False))

    def _check_silence(self) -> None:
        """Between pieces: fail once `timeout` passed without a byte, unless reading is paused for the relay."""
        self._timer = None
        if self._paused or self._ended or self._error is not None:
            return
        due = self._last_heard + self._failures.timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check_silence)
        else:
            self._fail(self._failures.silent(True))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wait(self) -> asyncio.Future[None]:
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
