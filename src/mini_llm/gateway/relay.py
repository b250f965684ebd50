"""Relay a provider's event stream to the client event by event, each event scrubbed of the key.

Only whole events go out, and a stream that fails ends with an in-stream error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Final, Literal

from mini_llm.asgi import Headers, Send
from mini_llm.errors import GatewayError, UpstreamUnreachable, stream_error_event
from mini_llm.gateway.observer import StreamObserver
from mini_llm.gateway.open_streams import StreamHandle
from mini_llm.gateway.scrub import mask
from mini_llm.gateway.sending import VARY_ORIGIN
from mini_llm.hotpath import EventTooLarge, SSESplitter

# Added to the relayed headers (which carry the content type): no cache, no proxy buffering.
_STREAM_HEADERS: Headers = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    VARY_ORIGIN,
]


StreamOutcome = Literal["complete", "client_gone", "upstream_error", "cut"]

# The most a stream's opening may hold in comments before its first event: past it, the stream commits.
FIRST_READ_BYTES: Final = 64 * 1024


def _is_cut_event(tail: bytearray) -> bool:
    """Whether the bytes left at EOF held a field line; a trailing comment loses nothing (WHATWG)."""
    return any(line and not line.startswith(b":") for line in tail.replace(b"\r", b"\n").split(b"\n"))


async def relay_stream(
    send: Send,
    headers: Headers,
    chunks: AsyncIterator[bytes],
    relay: EventRelay,
    first: bytes = b"",
) -> None:
    """Send `first` (what `EventRelay.first` read before the commit), then complete events as they arrive.

    NOTE: the 200 goes out first, so a failure travels in-stream, as providers do it, and the stream
    still ends properly: never a silent truncation that looks complete.
    """
    failure: GatewayError
    stream = relay.stream
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [*_STREAM_HEADERS, *headers]})
        if stream.ended is None:
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
                del first
            await _relay_events(send, chunks, relay)
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
    stream.release()  # before the send, which a stalled client can hold up: see StreamHandle.release
    relay.observer.error = True
    relay.failure = failure
    event = stream_error_event(relay.observer.protocol, failure, relay.observer.events)
    await send({"type": "http.response.body", "body": event, "more_body": False})


async def _relay_events(send: Send, chunks: AsyncIterator[bytes], relay: EventRelay) -> None:
    """Only whole events go out, so a client never sees half an event when the provider breaks off."""
    feed, clock = relay.feed, time.perf_counter
    waited = 0.0
    try:
        while True:
            began = clock()
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            finally:
                waited += clock() - began
            out = feed(chunk)
            # NOTE: let go before waiting for the next read: a silent provider's stream then keeps only
            # the partial event it counts, not the read it came in (up to all aiohttp had buffered).
            del chunk
            if out is not None:
                await send({"type": "http.response.body", "body": out, "more_body": True})
                del out
    finally:
        relay.waited += waited
    relay.end()
    relay.stream.release()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class EventRelay:
    """Picks the bytes of whole events; holds, copies and counts the start of an event that straddles reads.

    When chunks end on event boundaries (the usual case) each chunk goes out as is. An event that
    straddles chunks is copied into one buffer, so what the worker's budget counts is what stays in
    memory, however the provider cut it: that buffer and the splitter's own copy of the same bytes.
    An event is whole before it is scrubbed, so a key inside one is never cut in two.
    """

    __slots__ = ("_held", "_secret", "_splitter", "failure", "observer", "stream", "waited")

    def __init__(self, observer: StreamObserver, secret: bytes | None, stream: StreamHandle) -> None:
        self.observer = observer
        self._secret = secret
        self.stream = stream
        self._splitter = SSESplitter()
        self._held = bytearray()  # the start of an event still waiting for its blank line
        self.failure: GatewayError | None = None  # what cut the stream after its commit, if anything did
        self.waited = 0.0  # seconds spent waiting for the provider's reads after the commit

    def outcome(self) -> StreamOutcome:
        """How the relayed stream ended: the metrics' and the log's stream outcome (client_gone is the caller's).

        `cut` is a stream the gateway had to end with an error event, or one the provider ended between two
        events without its protocol's end ([DONE], message_stop, response.completed): its answer is not whole.
        """
        observer = self.observer
        if self.failure is not None:
            return "cut"
        if observer.error:
            return "upstream_error"
        return "complete" if observer.done else "cut"

    async def first(self, chunks: AsyncIterator[bytes]) -> bytes:
        """Read up to the first complete event (or the end) and return the bytes to send first, scrubbed.

        This is the stream's commit point: until it returns, nothing went to the client, so a
        failure here, or an error as the first event (`observer.opened_with_error`), can still be retried.
        A Responses stream's opening state events (response.created, response.in_progress) do not commit it:
        an error or a response.failed right after them is its first event.
        """
        observer = self.observer
        out: list[bytes] = []
        size = 0
        async for chunk in chunks:
            piece = self.feed(chunk)
            del chunk
            if piece is not None:
                out.append(piece)
                size += len(piece)
            # Comments alone (keep-alives before the first token) commit the stream once they add up: the
            # provider is evidently streaming, and what waits here is in no budget.
            if observer.committed or size > FIRST_READ_BYTES:
                break
        else:
            # The provider ended before a single event: nothing went out yet, so this can be retried.
            raise UpstreamUnreachable("the provider ended the stream before its first event", "cut")
        return b"".join(out)

    def feed(self, chunk: bytes) -> bytes | None:
        """What `chunk` completes, scrubbed, to send; None while it only extends a partial event.

        Its locals (the chunk, its events) end with the call. The budget counts each held byte
        twice: once here and once in the splitter.
        """
        splitter, held, stream = self._splitter, self._held, self.stream
        events = splitter.feed(chunk)
        take = len(chunk) - splitter.pending  # the bytes of this chunk up to its last event boundary
        out: bytes | None = None
        if take > 0:
            if held:
                out = b"".join((held, memoryview(chunk)[:take]))
                held.clear()
            else:
                out = chunk if take == len(chunk) else chunk[:take]
            if take < len(chunk):
                held += memoryview(chunk)[take:]
            if held or stream.held:
                stream.hold(2 * len(held))
            out = mask(out, self._secret)
        else:
            held += chunk
            stream.hold(2 * len(held))
        observe = self.observer.observe
        for event in events:
            observe(event)
        return out

    def end(self) -> None:
        """At the provider's end: a partial event left over, or no event at all, means the stream was cut."""
        if self._held and _is_cut_event(self._held):
            self.observer.truncated = True
            raise UpstreamUnreachable("the provider ended the stream in the middle of an event")
        if not self.observer.events:
            self.observer.truncated = True
            raise UpstreamUnreachable("the provider ended the stream without sending an event")
