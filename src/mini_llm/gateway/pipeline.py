"""The shared forward path of every proxied endpoint: body, envelope, route, upstream, relay."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mini_llm.asgi import Headers
from mini_llm.errors import ClientDisconnected, GatewayError, clip
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.decoding import decoded, decoder_for
from mini_llm.gateway.disconnect import DisconnectWatch
from mini_llm.gateway.observer import StreamObserver
from mini_llm.gateway.relay import relay_stream
from mini_llm.gateway.response_headers import relayed_headers
from mini_llm.gateway.rewrite import read_envelope, with_model
from mini_llm.gateway.scrub import mask, scrubbed
from mini_llm.gateway.sending import WHOLE_BODY_BYTES, relay_body, send_whole
from mini_llm.hotpath import BodyBuffer, BodyTooLarge
from mini_llm.providers import Target
from mini_llm.upstream import Body, header_values

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


@dataclass(slots=True)
class _Outgoing:
    """The body to send upstream, handed over once so no frame keeps it alive during a stream.

    A long stream can outlive its request by minutes; holding a large prompt (or the envelope,
    whose raw values point into it) for that long would cost its size per open stream.
    """

    payload: Body | None

    def take(self) -> Body:
        payload, self.payload = self.payload, None
        assert payload is not None, "the payload is sent once"
        return payload


async def _read_and_route(ctx: Context, req: Request, model_required: bool) -> tuple[str, bool, Target, _Outgoing]:
    """Body, envelope and target; the body and envelope die with this frame."""
    settings = ctx.settings
    body = await read_body(req, settings.max_body_bytes, settings.body_timeout, settings.body_deadline)
    envelope = read_envelope(body, model_required=model_required)
    target = ctx.router.resolve(envelope.model, req.protocol, req.path)
    # NOTE: an unchanged model forwards the client's bytes untouched: no re-encode at all.
    payload: Body = (body,) if target.model == envelope.model else with_model(body, envelope, target.model)
    return envelope.model, envelope.stream, target, _Outgoing(payload)


async def forward(ctx: Context, req: Request, upstream_path: str, *, model_required: bool = True) -> None:
    """Resolve the model, rewrite it if it changed, send upstream and relay the answer."""
    began = time.perf_counter()
    model, stream, target, outgoing = await _read_and_route(ctx, req, model_required)
    observer = StreamObserver(req.protocol) if stream else None
    watch = DisconnectWatch(req.receive)
    try:
        await _answer(ctx, req, target, upstream_path, outgoing, observer)
    except asyncio.CancelledError:
        if not watch.absorb():
            raise
        req.status = req.status or 499  # nginx's "client closed request", for the log only
        req.client_gone = True
    finally:
        watch.close()
        if ctx.settings.log_requests:  # the access-log line is built only when it is written
            elapsed = (time.perf_counter() - began) * 1000
            req.note = f"model={clip(model)} target={target.provider.name}:{clip(target.model)} ms={elapsed:.1f}"
            if observer is not None:
                req.note += " " + observer.log_fields()
            if req.client_gone:
                req.note += " client_gone"


async def _answer(
    ctx: Context,
    req: Request,
    target: Target,
    path: str,
    outgoing: _Outgoing,
    observer: StreamObserver | None,
) -> None:
    """Relay the provider's status as it is, and every byte of its answer decoded and scrubbed."""
    response = await ctx.upstreams.by_provider[target.provider.name].send(target, path, outgoing.take(), req.headers)
    try:
        status = req.status = response.status
        headers = relayed_headers(response.headers, target.secret)
        decoder = decoder_for(header_values(response.headers, b"content-encoding"), target.provider.name, status)
        events = response.is_event_stream
        if observer is not None and status == 200 and events:
            chunks = response.chunks()
            req.started = True
            source = decoded(chunks, decoder) if decoder is not None else chunks
            # The relay closes the response itself before its last event, which a stalled client may hold up.
            with ctx.streams.open(response.close) as stream:
                await relay_stream(req.send, headers, source, req.protocol, observer, target.secret, stream)
            return
        length = response.content_length
        if decoder is None and length is not None and length <= WHOLE_BODY_BYTES:
            answer = mask(await response.read(), target.secret)
            req.started = True
            await send_whole(req.send, status, headers, answer)
            return
        # Big, of unknown length, or encoded: as it arrives. The first piece is in before the
        # status goes out, so a provider that fails at once still gets a clean 502.
        chunks = response.chunks()
        pieces = scrubbed(decoded(chunks, decoder) if decoder is not None else chunks, target.secret)
        first = await anext(pieces, b"")
        req.started = True
        # An event stream goes out as it arrives, even to a request that did not ask for one.
        await relay_body(req.send, status, headers, first, pieces, live=events)
    finally:
        # After a complete read this is a no-op; mid-stream it drops the upstream connection.
        response.close()
