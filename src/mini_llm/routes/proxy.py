"""The shared forward path of every proxied endpoint: body, envelope, route, upstream, relay."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mini_llm import mock
from mini_llm.asgi import Headers
from mini_llm.context import Context, Request
from mini_llm.errors import ClientDisconnected, GatewayError
from mini_llm.hotpath import BodyBuffer, BodyTooLarge
from mini_llm.relay import DisconnectWatch, StreamObserver, relay_stream, scrub_key, send_whole
from mini_llm.rewrite import read_envelope, with_model
from mini_llm.routing import Target
from mini_llm.upstream import relayed_headers

JSON_HEADERS: Headers = [(b"content-type", b"application/json")]


async def read_body(req: Request, limit: int, stall_limit: float) -> memoryview:
    """Buffer the body, refusing by Content-Length before reading and again while reading.

    Each wait for the next body chunk is bounded, so a client that stalls mid-body gets a 408
    instead of holding a connection forever.
    """
    declared = req.headers.get(b"content-length")
    expected = -1
    if declared is not None:
        if not declared.isdigit():
            raise GatewayError(400, "Content-Length is not a number")
        expected = int(declared)
    try:
        buffer = BodyBuffer(limit, expected)
        more = True
        while more:
            async with asyncio.timeout(stall_limit):
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
        raise GatewayError(408, f"the request body stalled for {stall_limit:g}s (MINI_LLM_BODY_TIMEOUT)") from exc
    view: memoryview = buffer.view()
    return view


@dataclass(slots=True)
class _Outgoing:
    """The body to send upstream, handed over once so no frame keeps it alive during a stream.

    A long stream can outlive its request by minutes; holding a large prompt (or the envelope,
    whose raw values point into it) for that long would cost its size per open stream.
    """

    payload: bytes | memoryview | None

    def take(self) -> bytes | memoryview:
        payload, self.payload = self.payload, None
        assert payload is not None, "the payload is sent once"
        return payload


async def _read_and_route(ctx: Context, req: Request, model_required: bool) -> tuple[str, bool, Target, _Outgoing]:
    """Body, envelope and target; the body and envelope die with this frame."""
    body = await read_body(req, ctx.settings.max_body_bytes, ctx.settings.body_timeout)
    envelope = read_envelope(body, model_required=model_required)
    target = ctx.router.resolve(envelope.model, req.protocol, req.path)
    # NOTE: an unchanged model forwards the client's bytes untouched: no re-encode at all.
    payload = body if target.model == envelope.model else with_model(envelope, target.model)
    return envelope.model, envelope.stream, target, _Outgoing(payload)


async def forward(ctx: Context, req: Request, upstream_path: str, *, model_required: bool = True) -> None:
    """Resolve the model, rewrite it if it changed, send upstream and relay the answer."""
    began = time.perf_counter()
    model, stream, target, outgoing = await _read_and_route(ctx, req, model_required)
    observer = StreamObserver(req.protocol) if stream else None
    watch = DisconnectWatch(req.receive)
    try:
        if target.provider.protocol == "mock":
            await _answer_from_mock(ctx, req, target, upstream_path, outgoing, observer)
        else:
            await _answer_from_upstream(ctx, req, target, upstream_path, outgoing, observer)
    except asyncio.CancelledError:
        if not watch.absorb():
            raise
        req.status = req.status or 499  # nginx's "client closed request", for the log only
        req.client_gone = True
    finally:
        watch.close()
        if ctx.settings.log_requests:  # the access-log line is built only when it is written
            elapsed = (time.perf_counter() - began) * 1000
            req.note = f"model={model!r} target={target.provider.name}:{target.model!r} ms={elapsed:.1f}"
            if observer is not None:
                req.note += " " + observer.log_fields()
            if req.client_gone:
                req.note += " client_gone"


async def _answer_from_upstream(
    ctx: Context,
    req: Request,
    target: Target,
    path: str,
    outgoing: _Outgoing,
    observer: StreamObserver | None,
) -> None:
    response = await ctx.upstream.post(target, path, outgoing.take(), req.headers)
    try:
        headers = relayed_headers(response.raw_headers)
        req.status = response.status
        if observer is not None and response.status == 200 and response.content_type == "text/event-stream":
            req.started = True
            chunks = ctx.upstream.chunks(target, response)
            await relay_stream(req.send, headers, chunks, req.protocol, observer, target.key)
            return
        answer = await ctx.upstream.read(target, response)
        if response.status >= 400:
            answer = scrub_key(answer, target.key)
        req.started = True
        await send_whole(req.send, response.status, headers, answer)
    finally:
        # After a complete read this is a no-op; mid-stream it drops the upstream connection.
        response.close()


async def _answer_from_mock(
    ctx: Context,
    req: Request,
    target: Target,
    path: str,
    outgoing: _Outgoing,
    observer: StreamObserver | None,
) -> None:
    reply = mock.respond(path, outgoing.take(), target.model, ctx.settings.mock_token_delay)
    headers: Headers = [(b"content-type", reply.content_type)]
    req.status = reply.status
    req.started = True
    if reply.stream is not None and observer is not None:
        await relay_stream(req.send, headers, reply.stream, req.protocol, observer, None)
    else:
        await send_whole(req.send, reply.status, headers, reply.body)
