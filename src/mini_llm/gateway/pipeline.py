"""The shared forward path of every proxied endpoint: body, envelope, route, upstream, relay."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator

from mini_llm.asgi import Headers
from mini_llm.errors import ClientDisconnected, GatewayError, UpstreamUnreachable, clip
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.decoding import decoded, decoder_for
from mini_llm.gateway.disconnect import DisconnectWatch
from mini_llm.gateway.failover import FailoverRun
from mini_llm.gateway.observer import EventFormat, StreamObserver
from mini_llm.gateway.relay import EventRelay, relay_stream
from mini_llm.gateway.response_headers import NO_ATTEMPTS, relayed_headers, routing_headers
from mini_llm.gateway.rewrite import Envelope, read_envelope, with_model
from mini_llm.gateway.scrub import mask, scrubbed
from mini_llm.gateway.sending import WHOLE_BODY_BYTES, relay_body, send_whole
from mini_llm.gateway.usage import body_tokens
from mini_llm.hotpath import BodyBuffer, BodyTooLarge, EventTooLarge
from mini_llm.providers import Hop, Target
from mini_llm.upstream import Body, UpstreamResponse, header_values

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]


async def read_body(req: Request, limit: int, stall_limit: float, whole_limit: float) -> memoryview:
    """Buffer the body, refusing by Content-Length before reading and again while reading.

    Each wait for the next body chunk is bounded, and so is the whole body: a client that stalls
    mid-body, or trickles a byte just inside each pause, gets a 408 instead of holding a
    connection for as long as it likes.
    """
    declared = req.headers.get(b"content-length")
    expected = -1
    if declared is not None:
        # granian refuses a malformed Content-Length itself (a bare 400) before the app runs; this
        # keeps int() from raising should another server pass one on.
        if not declared.isdigit():
            raise GatewayError(400, "Content-Length is not a number")
        expected = int(declared)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + whole_limit
    try:
        buffer = BodyBuffer(limit, expected)
        more = True
        while more:
            async with asyncio.timeout_at(min(loop.time() + stall_limit, give_up)):
                message = await req.receive()
            if message["type"] == "http.disconnect":
                # A real disconnect, or a body granian could not parse (bad chunk framing).
                raise ClientDisconnected
            buffer.append(message.get("body", b""))
            # granian ends every body with an empty message; with a Content-Length, the body is whole
            # once that many bytes are in, so the end marker is left to the disconnect watch.
            more = message.get("more_body", False) and len(buffer) != expected
    except BodyTooLarge as exc:
        raise GatewayError(
            413, f"request body is larger than the gateway's limit of {limit} bytes (MINI_LLM_MAX_BODY_BYTES)"
        ) from exc
    except TimeoutError as exc:
        if loop.time() >= give_up:
            raise GatewayError(
                408, f"the request body took longer than {whole_limit:g}s to arrive (MINI_LLM_BODY_DEADLINE)"
            ) from exc
        raise GatewayError(408, f"the request body stalled for {stall_limit:g}s (MINI_LLM_BODY_TIMEOUT)") from exc
    view: memoryview = buffer.view()
    return view


class _Payloads:
    """The client's body as sent to each model of the plan, kept for retries and let go at the commit.

    A long stream can outlive its request by minutes; holding a large prompt (or the envelope,
    whose raw values point into it) for that long would cost its size per open stream.
    """

    __slots__ = ("_body", "_envelope")

    def __init__(self, body: memoryview, envelope: Envelope | None) -> None:
        self._body: memoryview | None = body
        self._envelope = envelope  # None for a route that carries no model: the body goes as it came

    def for_model(self, model: str) -> Body:
        body, envelope = self._body, self._envelope
        assert body is not None, "payloads are not used after the commit"
        # NOTE: an unchanged model forwards the client's bytes untouched: no re-encode at all.
        return (body,) if envelope is None or model == envelope.model else with_model(body, envelope, model)

    def release(self) -> None:
        self._body = self._envelope = None


class _Attempt:
    """One attempt's answer (implements failover.Answer); a stream's is read up to its first event.

    Plain attributes, not properties: the failover loop reads them on every request.
    """

    __slots__ = ("body", "error_event", "first", "headers", "relay", "req", "response", "source", "status", "target")

    def __init__(
        self,
        response: UpstreamResponse,
        target: Target,
        req: Request,
        relay: EventRelay | None = None,
        source: AsyncIterator[bytes] | None = None,
        first: bytes = b"",
    ) -> None:
        self.response = response
        self.req = req  # whose provider wait a detached body's read adds to
        self.status = response.status
        self.headers = response.headers
        self.target = target
        self.relay = relay
        self.error_event = relay is not None and relay.observer.opened_with_error
        self.source = source
        self.first = first
        self.body: bytes | None = None  # read by detach()

    def discard(self) -> None:
        if self.relay is not None:
            self.relay.stream.release()
        self.response.close()

    async def detach(self) -> GatewayError | None:
        """A failed answer waits for the next attempt without holding its provider's connection.

        A stream keeps only its opening (the error event: what the client gets should it be the last);
        a body up to WHOLE_BODY_BYTES, not encoded, is read whole. A bigger one stays attached.
        """
        response = self.response
        if self.relay is not None:
            self.relay.stream.release()  # closes the provider's connection
            self.source = _nothing()
            return None
        length = response.content_length
        if length is None or length > WHOLE_BODY_BYTES or header_values(response.headers, b"content-encoding"):
            return None
        began = time.perf_counter()
        try:
            self.body = await response.read()
        except GatewayError as exc:
            response.close()
            return exc.with_traceback(None)
        except BaseException:  # cancelled (the client left): nothing keeps this answer, so close it here
            response.close()
            raise
        finally:
            self.req.upstream_wait += time.perf_counter() - began
        return None


async def _nothing() -> AsyncIterator[bytes]:
    """The rest of a stream that was cut after its opening."""
    nothing: tuple[bytes, ...] = ()
    for piece in nothing:
        yield piece


async def _read_and_plan(
    ctx: Context, req: Request, model_required: bool, provider: str | None, stream: bool
) -> tuple[str | None, bool, tuple[Hop, ...], _Payloads]:
    """Body, envelope and the targets to try; the payloads hold the body until the commit.

    A route with a fixed `provider` (the Responses API's by-id routes) carries no model: its body, if
    any, is not read as an envelope and goes upstream as it came; `stream` says whether it asked for a stream.
    """
    settings = ctx.settings
    body = await read_body(req, settings.max_body_bytes, settings.body_timeout, settings.body_deadline)
    if provider is not None:
        if len(body) and req.scope["method"] == "POST":
            read_envelope(body, model_required=False)  # it goes labelled application/json: it must be an object
        return None, stream, ctx.router.fixed(provider), _Payloads(body, None)
    envelope = read_envelope(body, model_required=model_required)
    hops = ctx.router.plan(envelope.model, req.protocol, req.path)
    return envelope.model, envelope.stream, hops, _Payloads(body, envelope)


async def forward(
    ctx: Context,
    req: Request,
    upstream_path: str,
    *,
    model_required: bool = True,
    events: EventFormat | None = None,
    provider: str | None = None,
    stream: bool = False,
) -> None:
    """Resolve the model, send to the first target that answers (rewriting the model per target), relay the answer.

    `events` is the stream's event vocabulary when it is not the route's protocol's (the Responses API);
    `provider` fixes the provider for a route without a model, which is then sent with the request's method,
    and `stream` says whether such a route asked for an event stream (a route with a model says it in its body).
    """
    try:
        model, stream, hops, payloads = await _read_and_plan(ctx, req, model_required, provider, stream)
    except (GatewayError, ClientDisconnected):
        req.routing_headers = NO_ATTEMPTS
        raise
    req.model = model
    run = FailoverRun()
    answer: _Attempt | None = None
    watch = DisconnectWatch(req.receive)
    try:
        try:
            method = "POST" if provider is None else req.scope["method"]
            send = functools.partial(_send, ctx, req, upstream_path, payloads, stream, events or req.protocol, method)
            answer = await ctx.failover.run(hops, send, run)
        finally:
            payloads.release()
            req.upstream_wait += run.waited
            routing = routing_headers(run.answered_by, len(run.records))
            if run.retry_after is not None:
                routing.append((b"retry-after", str(run.retry_after).encode()))
            req.routing_headers = routing
        await _relay(ctx, req, answer)
    except asyncio.CancelledError:
        if not watch.absorb():
            raise
        req.status = req.status or 499  # nginx's "client closed request", for the log only
        req.client_gone = True
    finally:
        watch.close()
        _note_facts(req, run, answer)
        if ctx.settings.log_requests:  # the text access line's fields are built only when it is written
            req.note = _log_note(req, run, answer)


def _note_facts(req: Request, run: FailoverRun, answer: _Attempt | None) -> None:
    """What the metrics and the access log read once the request is over."""
    req.target = run.answered_by
    req.attempts = run.records
    req.cooldowns = run.cooled
    if req.stream_outcome is not None and answer is not None and answer.relay is not None:
        observer = answer.relay.observer
        req.events = observer.events
        if req.model is not None:  # a by-id route replays a stored response: its usage was counted when it was made
            if observer.first_token is not None:
                req.ttft = observer.first_token - req.began
            req.input_tokens, req.output_tokens = observer.tokens()


def _log_note(req: Request, run: FailoverRun, answer: _Attempt | None) -> str:
    by = run.answered_by
    target = f" target={by.provider.name}:{clip(by.model)}" if by is not None else ""
    elapsed = (time.perf_counter() - req.began) * 1000
    note = f"model={clip(req.model or '')}{target} ms={elapsed:.1f} {run.log_fields()}"
    if answer is not None and answer.relay is not None:
        note += " " + answer.relay.observer.log_fields()
    if req.client_gone:
        note += " client_gone"
    return note


async def _send(
    ctx: Context,
    req: Request,
    path: str,
    payloads: _Payloads,
    stream: bool,
    events: EventFormat,
    method: str,
    target: Target,
) -> _Attempt:
    """One attempt: send to `target`; a stream is read up to its first complete event (the commit point).

    The time waiting on the provider, for its answer and its first event, is what overhead excludes.
    """
    body = payloads.for_model(target.model)
    upstream = ctx.upstreams.by_provider[target.provider.name]
    began = time.perf_counter()
    try:
        response = await upstream.send(target, path, body, req.headers, method=method)
    finally:
        req.upstream_wait += time.perf_counter() - began
    del body
    if not stream or response.status != 200 or not response.is_event_stream:
        return _Attempt(response, target, req)
    try:
        decoder = decoder_for(header_values(response.headers, b"content-encoding"), target.provider.name, 200)
        chunks = response.chunks()
        source = decoded(chunks, decoder) if decoder is not None else chunks
        # The relay closes the response itself before its last event, which a stalled client may hold up.
        handle = ctx.streams.open(response.close)
    except BaseException:
        response.close()
        raise
    relay = EventRelay(StreamObserver(events), target.secret, handle)
    began = time.perf_counter()
    try:
        first = await relay.first(source)
    except asyncio.CancelledError:
        ended = handle.claim()  # the gateway ended it (budget, drain): not retried; otherwise the client left
        handle.release()
        if ended is None:
            raise
        raise ended.with_traceback(None) from None
    except EventTooLarge as exc:
        handle.release()
        raise UpstreamUnreachable(f"the provider sent an oversized event: {exc}", "oversized-event") from None
    except BaseException:
        handle.release()
        raise
    finally:
        req.upstream_wait += time.perf_counter() - began
    if relay.observer.opened_with_error:
        # A failed attempt: it may wait for the next one, so no budget may pick it; its bytes are one event.
        ctx.streams.drop(handle)
    return _Attempt(response, target, req, relay, source, first)


async def _relay(ctx: Context, req: Request, answer: _Attempt) -> None:
    """Relay the provider's status as it is, and every byte of its answer decoded and scrubbed."""
    response, target = answer.response, answer.target
    try:
        status = req.status = response.status
        relayed = relayed_headers(response.headers, target.secret)
        relay = answer.relay
        if relay is not None and answer.source is not None:
            headers = [*relayed, *req.gateway_headers(relayed, whole=False)]
            first, answer.first = answer.first, b""  # the relay lets go of it once sent: no reference here
            req.started = True
            ctx.metrics.stream_opened()
            req.stream_outcome = "client_gone"  # until the relay returns: only a client that left ends it early
            try:
                with relay.stream:
                    await relay_stream(req.send, headers, answer.source, relay, first)
            finally:  # a client that left: the provider's waits until then are still not the gateway's time
                req.upstream_wait += relay.waited
            req.stream_outcome = relay.outcome()
            if relay.failure is not None:
                req.error = relay.failure.message
            return
        if answer.body is not None:  # a failed answer read whole while the next attempts ran
            req.started = True
            headers = [*relayed, *req.gateway_headers(relayed)]
            await send_whole(req.send, status, headers, mask(answer.body, target.secret))
            return
        decoder = decoder_for(header_values(response.headers, b"content-encoding"), target.provider.name, status)
        length = response.content_length
        if decoder is None and length is not None and length <= WHOLE_BODY_BYTES:
            began = time.perf_counter()
            try:
                whole = await response.read()
            finally:
                req.upstream_wait += time.perf_counter() - began
            if 200 <= status < 300 and req.model is not None and (ctx.metrics.enabled or ctx.settings.log_requests):
                # Only for a reader (the metrics, the access log); not on a by-id route: a stored response's usage
                # was counted when it was made.
                req.input_tokens, req.output_tokens = body_tokens(whole)
            body = mask(whole, target.secret)
            del whole
            req.started = True
            await send_whole(req.send, status, [*relayed, *req.gateway_headers(relayed)], body)
            return
        # Big, of unknown length, or encoded: as it arrives. The first piece is in before the
        # status goes out, so a provider that fails at once still gets a clean 502.
        chunks = _waited(response.chunks(), req)
        pieces = scrubbed(decoded(chunks, decoder) if decoder is not None else chunks, target.secret)
        first = await anext(pieces, b"")
        req.started = True
        headers = [*relayed, *req.gateway_headers(relayed)]
        # An event stream goes out as it arrives, even to a request that did not ask for one.
        await relay_body(req.send, status, headers, first, pieces, live=response.is_event_stream)
    finally:
        # After a complete read this is a no-op; mid-stream it drops the upstream connection.
        response.close()


async def _waited(chunks: AsyncIterator[bytes], req: Request) -> AsyncIterator[bytes]:
    """`chunks`, with the time spent waiting for each added to the request's provider wait."""
    clock = time.perf_counter
    while True:
        began = clock()
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        finally:
            req.upstream_wait += clock() - began
        yield chunk
        del chunk
