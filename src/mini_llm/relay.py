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
    failure: GatewayError
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS + headers})
        if stream.ended is None:
            await _relay_events(send, chunks, observer, secret_of(key), stream)
            return
        failure = stream.ended  # opened after the gateway ended all its streams (the drain timeout)
    except asyncio.CancelledError:
        ended = stream.claim()  # the gateway ended it (budget, drain); otherwise the client left
        if ended is None:
            raise
        failure = ended
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
    """Only whole events go out, so a client never sees half an event when the provider breaks off."""
    relay = _EventRelay(send, observer, secret, stream)
    async for chunk in chunks:
        await relay.feed(chunk)
        # NOTE: let go before waiting for the next read: a silent provider's stream then keeps only
        # the partial event it counts, not the read it came in (up to all aiohttp had buffered).
        del chunk
    relay.end()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class _EventRelay:
    """Sends the bytes of whole events; holds, copies and counts the start of an event that straddles reads.

    When chunks end on event boundaries (the usual case) each chunk goes out as is. An event that
    straddles chunks is copied into one buffer, so what the worker's budget counts is what stays in
    memory (besides the splitter's own copy), however the provider cut it. An event is whole before
    it is scrubbed, so a key inside one is never cut in two.
    """

    __slots__ = ("_held", "_observer", "_secret", "_send", "_splitter", "_stream")

    def __init__(self, send: Send, observer: StreamObserver, secret: bytes | None, stream: StreamHandle) -> None:
        self._send = send
        self._observer = observer
        self._secret = secret
        self._stream = stream
        self._splitter = SSESplitter()
        self._held = bytearray()  # the start of an event still waiting for its blank line

    async def feed(self, chunk: bytes) -> None:
        """Relay what `chunk` completes; its locals (the chunk, what went out, its events) end with the call."""
        splitter, held, stream = self._splitter, self._held, self._stream
        events = splitter.feed(chunk)
        take = len(chunk) - splitter.pending  # the bytes of this chunk up to its last event boundary
        if take > 0:
            if held:
                out = b"".join((held, memoryview(chunk)[:take]))
                held.clear()
            else:
                out = chunk if take == len(chunk) else chunk[:take]
            if take < len(chunk):
                held += memoryview(chunk)[take:]
            if held or stream.held:
                stream.hold(len(held))
            await self._send({"type": "http.response.body", "body": mask(out, self._secret), "more_body": True})
        else:
            held += chunk
            stream.hold(len(held))
        observe = self._observer.observe
        for event in events:
            observe(event)

    def end(self) -> None:
        """At the provider's end: a partial event left over means the stream was cut."""
        if self._held and _is_cut_event(bytes(self._held)):
            self._observer.truncated = True
            raise UpstreamUnreachable("the provider ended the stream in the middle of an event")
