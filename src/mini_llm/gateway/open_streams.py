"""A worker's open stream relays: one budget for the partial events they hold, and a way to end them.

Each stream caps its own partial event (EventTooLarge), but many streams each just under that cap
would still add up; the budget bounds the sum per worker. Ending a stream means cancelling its
task with a reason: the relay then sends an in-stream error event and a proper end, which works
even while the stream sits idle waiting for its provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mini_llm.errors import GatewayError


class StreamEnded(GatewayError):
    """The gateway ended a stream it was relaying (503): out of buffer budget, or shutting down."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(503, message, code=code)


def budget_exhausted(held: int, limit: int) -> StreamEnded:
    return StreamEnded(
        f"the gateway ended this stream: its incomplete event held {held} bytes of memory when the worker's "
        f"budget of {limit} bytes for incomplete stream events (MINI_LLM_STREAM_BUFFER_BYTES) ran out",
        "stream_buffer_exhausted",
    )


def drain_timed_out(timeout: float) -> StreamEnded:
    return StreamEnded(
        f"the gateway is shutting down: the stream was still open at the drain timeout of {timeout:g}s "
        "(MINI_LLM_DRAIN_TIMEOUT)",
        "gateway_shutting_down",
    )


class StreamHandle:
    """One relay's entry: the partial-event bytes it holds, and why the gateway ended it, if it did.

    Used as a context manager around the relay, so a finished stream always leaves the registry.
    `close` closes the provider's connection (None for the mock).
    """

    __slots__ = ("_close", "_streams", "_task", "ended", "held")

    def __init__(
        self, streams: OpenStreams, task: asyncio.Task[object] | None, close: Callable[[], object] | None
    ) -> None:
        self._streams = streams
        self._task = task
        self._close = close
        self.held = 0
        self.ended: StreamEnded | None = None

    def hold(self, size: int) -> None:
        """Record the bytes this stream holds now; past the budget the biggest holder is ended.

        When that is this stream, StreamEnded is raised here; another stream is cancelled.
        """
        streams = self._streams
        streams.held += size - self.held
        self.held = size
        if streams.held > streams.limit:
            streams.enforce(self)

    def claim(self) -> StreamEnded | None:
        """After a CancelledError: the reason the gateway ended this stream (the cancel undone), or None."""
        if self.ended is None or self._task is None:
            return None  # the cancel was not the gateway's: the client left
        self._task.uncancel()
        return self.ended

    def release(self) -> None:
        """The relay is about to send its last message: leave the budget and close the provider's connection.

        That send can wait on a stalled client. Meanwhile the stream holds nothing worth counting, so
        the budget must not pick it (its cancel would cut the last event), and a billed connection
        to the provider must not stay open. After a complete read the close is a no-op.
        """
        self._streams.drop(self)
        close, self._close = self._close, None
        if close is not None:
            close()

    def __enter__(self) -> StreamHandle:
        return self

    def __exit__(self, *_: object) -> None:
        self._streams.drop(self)

    def stop(self, reason: StreamEnded) -> None:
        """Cancel the relay's task; it sends `reason` as its last event."""
        self.ended = reason
        if self._task is not None:
            self._task.cancel()


class OpenStreams:
    """The registry; all of it runs on the worker's event loop, so no locking."""

    __slots__ = ("_open", "closed", "held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._open: set[StreamHandle] = set()
        # Set by end_all: a stream opened later (its provider answered after the drain timeout)
        # ends at once with the same reason, rather than run on until the worker is killed.
        self.closed: StreamEnded | None = None

    def __len__(self) -> int:
        return len(self._open)

    def open(self, close: Callable[[], object] | None = None) -> StreamHandle:
        """A stream's entry; `close` closes its provider's connection when the relay ends."""
        if self.closed is not None:
            # Ended before it starts: the relay sees it before its first event. No task: a cancel
            # it meets from now on is the client's, never the gateway's.
            late = StreamHandle(self, None, close)
            late.ended = self.closed
            return late
        handle = StreamHandle(self, asyncio.current_task(), close)
        self._open.add(handle)
        return handle

    def drop(self, handle: StreamHandle) -> None:
        """Forget a stream and its bytes at once: they are no longer counted, whoever still holds them."""
        self._open.discard(handle)
        self.held -= handle.held
        handle.held = 0

    def enforce(self, current: StreamHandle) -> None:
        """End the biggest holders until the sum fits; raises for `current` after the others."""
        mine: StreamEnded | None = None
        while self.held > self.limit and self._open:
            victim = max(self._open, key=_held)
            reason = budget_exhausted(victim.held, self.limit)
            if victim is current:
                self.drop(victim)
                mine = reason
            else:
                self.end(victim, reason)
        if mine is not None:
            raise mine

    def end(self, handle: StreamHandle, reason: StreamEnded) -> None:
        self.drop(handle)
        handle.stop(reason)

    def end_all(self, reason: StreamEnded) -> None:
        """End every open stream, and every stream opened from now on, with `reason`."""
        self.closed = reason
        for handle in list(self._open):
            self.end(handle, reason)


def _held(handle: StreamHandle) -> int:
    return handle.held
