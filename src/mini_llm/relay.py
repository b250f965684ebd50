"""Relay an answer to the client: a whole body at once, or an SSE stream event by event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from mini_llm.asgi import Headers, Message, Receive, Send
from mini_llm.errors import GatewayError, Protocol, UpstreamUnreachable, stream_error_event
from mini_llm.hotpath import EventTooLarge, SSEEvent, SSESplitter

# Added to the relayed headers (which carry the content type): no cache, no proxy buffering.
_STREAM_HEADERS: Headers = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _Usage(msgspec.Struct):
    usage: dict[str, Any] | None = None


class _AnthropicStart(msgspec.Struct):
    message: _Usage


_USAGE = msgspec.json.Decoder(_Usage)
_ANTHROPIC_START = msgspec.json.Decoder(_AnthropicStart)


class StreamObserver:
    """Watches the events going by (on the side) for the access log: count, first token, usage, end."""

    __slots__ = (
        "done",
        "error",
        "events",
        "first_token",
        "malformed",
        "protocol",
        "started",
        "truncated",
        "usage",
    )

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.started = time.perf_counter()
        self.events = 0
        self.first_token: float | None = None
        self.usage: dict[str, Any] = {}
        self.done = False
        self.error = False
        self.truncated = False
        self.malformed = 0

    def observe(self, event: SSEEvent) -> None:
        """Never raises: a malformed event only leaves the usage unknown, it never ends a relay."""
        self.events += 1
        try:
            self._observe(event)
        except (msgspec.DecodeError, TypeError, AttributeError):
            self.malformed += 1

    def _observe(self, event: SSEEvent) -> None:
        data = event.data
        if self.protocol == "anthropic":
            self._anthropic(event.event, data)
        elif data == "[DONE]":
            self.done = True
        else:
            if self.first_token is None and '"content":""' not in data:
                self.first_token = time.perf_counter()
            if data.startswith('{"error"'):
                self.error = True
            elif '"usage":{' in data:
                self.usage.update(_USAGE.decode(data).usage or {})

    def _anthropic(self, name: str, data: str) -> None:
        if name == "content_block_delta":
            if self.first_token is None:
                self.first_token = time.perf_counter()
        elif name == "message_start":
            self.usage.update(_ANTHROPIC_START.decode(data).message.usage or {})
        elif name == "message_delta":
            self.usage.update(_USAGE.decode(data).usage or {})
        elif name == "message_stop":
            self.done = True
        elif name == "error":
            self.error = True

    def log_fields(self) -> str:
        ttft = f"{(self.first_token - self.started) * 1000:.1f}" if self.first_token else "-"
        usage = ",".join(f"{k}={v}" for k, v in self.usage.items() if isinstance(v, int)) or "-"
        state = "error" if self.error else "truncated" if self.truncated else "done" if self.done else "eof"
        return f"events={self.events} ttft_ms={ttft} usage={usage} malformed={self.malformed} end={state}"


def scrub_key(body: bytes, key: str | None) -> bytes:
    """Blank the gateway's key out of an upstream error (a body or an event) that echoes it back."""
    if key:
        secret = key.encode()
        if secret in body:
            return body.replace(secret, b"***")
    return body


async def send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """One start and one final body: granian sends it as a single full response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


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


def _is_cut_event(tail: bytes) -> bool:
    """Whether the bytes left at EOF held a field line; a trailing comment loses nothing (WHATWG)."""
    return any(line and not line.startswith(b":") for line in tail.replace(b"\r", b"\n").split(b"\n"))


async def relay_stream(
    send: Send,
    headers: Headers,
    chunks: AsyncIterator[bytes],
    protocol: Protocol,
    observer: StreamObserver,
    key: str | None,
) -> None:
    """Forward complete events as they arrive; the splitter runs on the side for the observer.

    Only whole events go out, so a client never sees half an event when the provider breaks
    off. When chunks end on event boundaries (the usual case) each chunk goes out as is; when
    an event straddles chunks, its bytes are copied once, when its blank line arrives.
    """
    splitter = SSESplitter()
    held: list[bytes | memoryview] = []  # the start of an event still waiting for its blank line
    held_size = 0
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS + headers})
        async for chunk in chunks:
            events = splitter.feed(chunk)
            ready = held_size + len(chunk) - splitter.pending  # bytes that end on an event boundary
            if ready > held_size:
                take = ready - held_size
                if held:
                    out = b"".join([*held, memoryview(chunk)[:take]])
                    held.clear()
                else:
                    out = chunk if take == len(chunk) else chunk[:take]
                if take < len(chunk):
                    held.append(memoryview(chunk)[take:])
                held_size = len(chunk) - take
                await send({"type": "http.response.body", "body": scrub_key(out, key), "more_body": True})
            else:
                held.append(chunk)
                held_size += len(chunk)
            for event in events:
                observer.observe(event)
        if held and _is_cut_event(b"".join(held)):
            observer.truncated = True
            raise UpstreamUnreachable("the provider ended the stream in the middle of an event")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except (EventTooLarge, GatewayError) as exc:
        # NOTE: the 200 already went out, so the failure travels in-stream, as providers do it.
        observer.error = True
        failure = (
            exc
            if isinstance(exc, GatewayError)
            else UpstreamUnreachable(f"the provider sent an oversized event: {exc}")
        )
        await send({"type": "http.response.body", "body": stream_error_event(protocol, failure), "more_body": False})
