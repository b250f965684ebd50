"""Relay an answer to the client: a whole body at once, or an SSE stream event by event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from mini_llm.asgi import Headers, Receive, Send
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
        "client_gone",
        "done",
        "error",
        "events",
        "first_token",
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
        self.client_gone = False

    def observe(self, event: SSEEvent) -> None:
        self.events += 1
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
        state = (
            "client_gone"
            if self.client_gone
            else "error"
            if self.error
            else "truncated"
            if self.truncated
            else ("done" if self.done else "eof")
        )
        return f"events={self.events} ttft_ms={ttft} usage={usage} end={state}"


async def send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """One start and one final body: granian sends it as a single full response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def relay_stream(
    receive: Receive,
    send: Send,
    headers: Headers,
    chunks: AsyncIterator[bytes],
    protocol: Protocol,
    observer: StreamObserver,
) -> None:
    """Forward each chunk as it came and feed the splitter on the side.

    granian's send() does not raise when the client goes away (ASGI 2.3), so a watcher on
    receive() cancels the relay at once; the caller then closes the upstream connection.
    """
    relaying = asyncio.current_task()
    assert relaying is not None
    client_gone = False

    async def watch_disconnect() -> None:
        nonlocal client_gone
        while (await receive())["type"] != "http.disconnect":
            pass
        client_gone = True
        relaying.cancel()

    watcher = asyncio.create_task(watch_disconnect())
    splitter = SSESplitter()
    held = b""  # the start of an event whose blank line has not arrived yet
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS + headers})
        async for chunk in chunks:
            for event in splitter.feed(chunk):
                observer.observe(event)
            # Forward whole events only, so a client never sees half an event if upstream breaks
            # off; in the usual case (chunks end on event boundaries) this sends the chunk as is.
            out = held + chunk if held else chunk
            cut = len(out) - splitter.pending
            held = out[cut:] if cut < len(out) else b""
            if cut:
                await send({"type": "http.response.body", "body": out[:cut] if held else out, "more_body": True})
        if splitter.pending:
            observer.truncated = True
            raise UpstreamUnreachable("the provider ended the stream in the middle of an event")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not client_gone:
            raise
        relaying.uncancel()
        observer.client_gone = True
    except EventTooLarge as exc:
        observer.error = True
        failure = UpstreamUnreachable(f"the provider sent an oversized event: {exc}")
        await send({"type": "http.response.body", "body": stream_error_event(protocol, failure), "more_body": False})
    except GatewayError as exc:
        # NOTE: the 200 already went out, so the failure travels in-stream, as providers do it.
        observer.error = True
        await send({"type": "http.response.body", "body": stream_error_event(protocol, exc), "more_body": False})
    finally:
        watcher.cancel()
