"""Cancel a request's work the moment its client goes away."""

from __future__ import annotations

import asyncio

from mini_llm.asgi import Message, Receive


class DisconnectWatch:
    """Cancels the request's task the moment the client goes away.

    granian's send() does not raise after a disconnect (ASGI 2.3), so without this a gateway
    would keep a billed upstream request running for nobody; the caller's `finally` then
    closes the upstream connection. granian's receive() returns a future, so the watch is a
    done-callback on it (no task per request); a server whose receive() is a coroutine gets
    a watcher task instead.
    """

    __slots__ = ("_pending", "_receive", "_task", "gone")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._receive = receive
        self.gone = False
        self._pending: asyncio.Future[Message] | None = None
        self._arm()

    def _arm(self) -> None:
        try:
            awaitable = self._receive()
            pending = awaitable if asyncio.isfuture(awaitable) else asyncio.ensure_future(awaitable)
        except Exception:  # a server that cannot tell us any more: keep serving, stop watching
            self._pending = None
            return
        self._pending = pending
        pending.add_done_callback(self._on_message)

    def _on_message(self, done: asyncio.Future[Message]) -> None:
        if done is not self._pending or done.cancelled():
            return
        if done.exception() is not None:  # a server that cannot tell us any more: stop watching
            self._pending = None
            return
        if done.result()["type"] != "http.disconnect":
            self._arm()  # e.g. the empty end of a body: keep listening
            return
        self._pending = None
        self.gone = True
        self._task.cancel()

    def absorb(self) -> bool:
        """True (and the cancellation undone) when a CancelledError came from this watch."""
        if not self.gone:
            return False
        self._task.uncancel()
        return True

    def close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
