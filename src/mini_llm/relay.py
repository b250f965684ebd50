"""Relay an answer to the client: a small body at once, a large one as it arrives, an SSE stream event by event.

Every byte that goes out has passed the key scrub first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

from mini_llm.asgi import Headers, Send
from mini_llm.errors import GatewayError, Protocol, UpstreamUnreachable, stream_error_event
from mini_llm.hotpath import EventTooLarge, SSESplitter
from mini_llm.observer import StreamObserver
from mini_llm.open_streams import StreamHandle
from mini_llm.scrub import StreamScrubber, mask, secret_of

# A body up to this size with a known length is read whole and sent as one message (the usual
# answer); anything bigger, or of unknown length, is relayed piece by piece as it arrives.
WHOLE_BODY_BYTES: Final = 256 * 1024

# Added to the relayed headers (which carry the content type): no cache, no proxy buffering.
_STREAM_HEADERS: Headers = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """One start and one final body: granian sends it as a single full response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def scrubbed(chunks: AsyncIterator[bytes], key: str | None) -> AsyncIterator[bytes]:
    """The body with the key masked, a key cut across two chunks included."""
    scrubber = StreamScrubber(key)
    async for chunk in chunks:
        piece = scrubber.feed(chunk)
        if piece:
            yield piece
    tail = scrubber.flush()
    if tail:
        yield tail


async def relay_body(send: Send, status: int, headers: Headers, first: bytes, rest: AsyncIterator[bytes]) -> None:
    """Send the body piece by piece, one piece behind, so the last one carries the end.

    A body that came in one piece thus still goes out as one full response. Memory is a piece or
    two whatever the size: `await send` waits while the client is slow (granian's backpressure).
    If the provider fails midway the body is left unfinished, so the client sees a cut answer,
    never a short one that looks whole.
    """
    await send({"type": "http.response.start", "status": status, "headers": headers})
    piece = first
    async for following in rest:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        piece = following
    await send({"type": "http.response.body", "body": piece, "more_body": False})


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
    stream: StreamHandle,
) -> None:
    """Forward complete events as they arrive; end with an in-stream error event when anything fails.

    NOTE: the 200 goes out first, so a failure travels in-stream, as providers do it.
    """
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS + headers})
        await _relay_events(send, chunks, observer, secret_of(key), stream)
        return
    except asyncio.CancelledError:
        ended = stream.claim()  # the gateway ended it (budget, drain); otherwise the client left
        if ended is None:
            raise
        failure: GatewayError = ended
    except EventTooLarge as exc:
        failure = UpstreamUnreachable(f"the provider sent an oversized event: {exc}")
    except GatewayError as exc:
        # NOTE: without its traceback: that would keep the relay's held bytes alive while this is sent.
        failure = exc.with_traceback(None)
    observer.error = True
    await send({"type": "http.response.body", "body": stream_error_event(protocol, failure), "more_body": False})


async def _relay_events(
    send: Send, chunks: AsyncIterator[bytes], observer: StreamObserver, secret: bytes | None, stream: StreamHandle
) -> None:
    """Only whole events go out, so a client never sees half an event when the provider breaks off.

    When chunks end on event boundaries (the usual case) each chunk goes out as is; when an event
    straddles chunks, its bytes are held, counted against the worker's budget, and copied once,
    when its blank line arrives. An event is whole before it is scrubbed, so a key inside one is
    never cut in two.
    """
    splitter = SSESplitter()
    held: list[bytes | memoryview] = []  # the start of an event still waiting for its blank line
    held_size = 0
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
            if held_size or stream.held:
                stream.hold(held_size)
            await send({"type": "http.response.body", "body": mask(out, secret), "more_body": True})
        else:
            held.append(chunk)
            held_size += len(chunk)
            stream.hold(held_size)
        for event in events:
            observer.observe(event)
    if held and _is_cut_event(b"".join(held)):
        observer.truncated = True
        raise UpstreamUnreachable("the provider ended the stream in the middle of an event")
    await send({"type": "http.response.body", "body": b"", "more_body": False})
