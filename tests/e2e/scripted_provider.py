"""A fake provider scripted per attempt, on real TCP (aiohttp.web in a thread), for the failover tests.

A test registers a script per upstream model name: an ordered list of steps, one consumed per
request for that model. Once the script is down to its last step, that step answers every
further request (so `script(m, rate_limited("1"))` is a provider that always says 429). A model
with no script gets a 400 that names it, which no gateway retries: a forgotten script fails fast.

Every request is recorded as it arrives (`Seen`: monotonic time, path, model, key, body), so a
test asserts what the provider received: how many requests, with which key, how far apart.
Both wire formats are spoken: the path picks OpenAI (`/v1/chat/completions`) or Anthropic
(`/v1/messages`) bodies, errors and event streams.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol

from aiohttp import web

from tests.e2e.threaded_server import ThreadedServer

Wire = Literal["openai", "anthropic"]

# The error types each protocol's docs give per status (OpenAI error codes, Anthropic "Errors").
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the provider received it; `at` is time.monotonic() when its head arrived."""

    at: float
    path: str
    model: str
    key: str
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


class Step(Protocol):
    """One scripted answer: what the provider does with one request."""

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse: ...


def wire_of(path: str) -> Wire:
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def answer_text(model: str) -> str:
    """The text every success carries: which upstream model answered, for the client to see."""
    return f"ok from {model}"


def error_body(wire: Wire, status: int, message: str) -> dict[str, Any]:
    """A provider error in the protocol's own shape."""
    if wire == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_scripted"}
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def success_body(wire: Wire, model: str) -> dict[str, Any]:
    if wire == "anthropic":
        return {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer_text(model)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 3},
        }
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer_text(model)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
    }


def stream_frames(wire: Wire, model: str) -> list[bytes]:
    """The events of a good stream, one frame each, as the provider's real SSE format has them."""
    words = ("ok", " from ", model)
    if wire == "anthropic":
        return _anthropic_frames(model, words)
    return _openai_frames(model, words)


def stream_bytes(wire: Wire, model: str) -> bytes:
    """The exact bytes of a good stream, for a test to compare what the client got."""
    return b"".join(stream_frames(wire, model))


def error_event(wire: Wire, kind: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    """An in-stream error: Anthropic's `event: error`, or an OpenAI chunk carrying `error`."""
    if wire == "anthropic":
        return _event("error", {"type": "error", "error": {"type": kind, "message": message}})
    return b"data: " + _json({"error": {"message": message, "type": kind, "param": None, "code": None}}) + b"\n\n"


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _json(data) + b"\n\n"


def _text_delta(wire: Wire, model: str, text: str) -> bytes:
    """One more piece of text, as a frame of the protocol's stream."""
    return _anthropic_frames(model, (text,))[3] if wire == "anthropic" else _openai_frames(model, (text,))[1]


def _openai_frames(model: str, words: tuple[str, ...]) -> list[bytes]:
    def chunk(delta: dict[str, str], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        body = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1, "model": model}
        return b"data: " + _json({**body, "choices": [choice]}) + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""}, None)]
    frames += [chunk({"content": word}, None) for word in words]
    frames += [chunk({}, "stop"), b"data: [DONE]\n\n"]
    return frames


def _anthropic_frames(model: str, words: tuple[str, ...]) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    block = {"type": "text", "text": ""}
    frames = [
        _event("message_start", {"type": "message_start", "message": message}),
        _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        _event("ping", {"type": "ping"}),
    ]
    for word in words:
        delta = {"type": "text_delta", "text": word}
        frames.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    frames += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 3}}),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return frames


async def _open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "x-request-id": "req_scripted"})
    await response.prepare(request)
    return response


def _transport(request: web.Request) -> asyncio.Transport:
    transport = request.transport
    assert isinstance(transport, asyncio.Transport), "aiohttp.web serves over a transport"
    return transport


# --- the steps -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole answer: `status`, a JSON body (by default an error in the route's shape), headers."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        wire = wire_of(seen.path)
        body = self.body if self.body is not None else error_body(wire, self.status, f"scripted {self.status}")
        return web.json_response(dict(body), status=self.status, headers=dict(self.headers))


@dataclass(frozen=True, slots=True)
class Ok:
    """A success in the route's shape, after `delay` seconds: JSON, or an event stream when asked."""

    delay: float = 0.0

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        if self.delay:
            await server.until_cancelled(seen, asyncio.sleep(self.delay))
        wire = wire_of(seen.path)
        if not seen.stream:
            return web.json_response(success_body(wire, seen.model), headers={"x-request-id": "req_scripted"})
        response = await _open_stream(request)
        for frame in stream_frames(wire, seen.model):
            await response.write(frame)
        await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class Reset:
    """The connection is reset (RST) before any byte of an answer: no status line at all."""

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        transport = _transport(request)
        sock = transport.get_extra_info("socket")
        # SO_LINGER on with a zero timeout makes close() send RST instead of FIN (socket(7)).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return web.Response()  # never written: the connection is gone


@dataclass(frozen=True, slots=True)
class Hang:
    """Nothing at all for `seconds` (no status line), then a success if the gateway still waits."""

    seconds: float

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        await server.until_cancelled(seen, asyncio.sleep(self.seconds))
        return await Ok().answer(request, seen, server)


@dataclass(frozen=True, slots=True)
class StreamError:
    """A 200 event stream whose first `good` events are fine, then an in-stream error, properly ended.

    With `good=0` the error is the first event: the provider failed before the answer began. The
    events go out in one write, so the gateway reads them together: the commit point is the first
    event, not the first read. With a `pause`, they go out in two halves that far apart instead,
    so the gateway has read only part of the first event when it must not commit yet.
    """

    good: int = 0
    kind: str = "overloaded_error"
    pause: float = 0.0

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        wire = wire_of(seen.path)
        response = await _open_stream(request)
        data = b"".join(stream_frames(wire, seen.model)[: self.good]) + error_event(wire, self.kind)
        if self.pause:
            await response.write(data[: len(data) // 2])
            await server.until_cancelled(seen, asyncio.sleep(self.pause))
            data = data[len(data) // 2 :]
        await response.write(data)
        await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class StreamCut:
    """A 200 event stream cut after `good` events (sent in one write): the connection closes without the chunked end."""

    good: int

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        response = await _open_stream(request)
        await response.write(b"".join(stream_frames(wire_of(seen.path), seen.model)[: self.good]))
        _transport(request).close()  # close() sends what is buffered first, then FIN
        return response


@dataclass(frozen=True, slots=True)
class Frames:
    """A 200 event stream of exactly these frames in one write (any API's events), ended, or `cut` without its end."""

    frames: tuple[bytes, ...]
    cut: bool = False
    pause: float = 0.0  # > 0: each frame its own write, this many seconds apart (so each its own read)

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        response = await _open_stream(request)
        if self.pause:
            for frame in self.frames:
                await response.write(frame)
                await asyncio.sleep(self.pause)
        else:
            await response.write(b"".join(self.frames))
        if self.cut:
            _transport(request).close()  # close() sends what is buffered first, then FIN
        else:
            await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class EmptyStream:
    """A 200 event stream that ends properly (the chunked terminator) before a single event."""

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        response = await _open_stream(request)
        await response.write_eof()
        return response


@dataclass(frozen=True, slots=True)
class SlowStream:
    """A good stream's first two events, then one more every `interval` seconds until the gateway leaves."""

    interval: float

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        wire = wire_of(seen.path)
        response = await _open_stream(request)

        async def trickle() -> None:
            for frame in stream_frames(wire, seen.model)[:2]:
                await response.write(frame)
            while True:
                await asyncio.sleep(self.interval)
                await response.write(_text_delta(wire, seen.model, "."))

        await server.until_cancelled(seen, trickle())
        return response


@dataclass(frozen=True, slots=True)
class ByKey:
    """A different step per provider key, for a provider configured with several keys."""

    steps: Mapping[str, Step]

    async def answer(self, request: web.Request, seen: Seen, server: ScriptedProvider) -> web.StreamResponse:
        step = self.steps.get(seen.key)
        if step is None:  # a 400, which no gateway retries, so the test fails at once and says why
            body = error_body(wire_of(seen.path), 400, "scripted provider: no step for the key it got")
            return await Reply(400, body).answer(request, seen, server)
        return await step.answer(request, seen, server)


def reply(status: int, body: Mapping[str, Any] | None = None, **headers: str) -> Reply:
    """`reply(503)`, `reply(400, {"error": ...})`, `reply(429, retry_after="1")` (underscores become dashes)."""
    return Reply(status, body, {name.replace("_", "-"): value for name, value in headers.items()})


def rate_limited(retry_after: str | None = None) -> Reply:
    return reply(429) if retry_after is None else reply(429, retry_after=retry_after)


def overloaded() -> Reply:
    """Anthropic's 529 `overloaded_error` (its shape on either route)."""
    return Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


def ok(delay: float = 0.0) -> Ok:
    return Ok(delay)


def reset() -> Reset:
    return Reset()


def hang(seconds: float) -> Hang:
    return Hang(seconds)


def first_event_error(kind: str = "overloaded_error", pause: float = 0.0) -> StreamError:
    return StreamError(0, kind, pause)


def error_after(good: int, kind: str = "overloaded_error") -> StreamError:
    return StreamError(good, kind)


def cut_after(good: int) -> StreamCut:
    return StreamCut(good)


def frames(*sent: bytes, cut: bool = False, pause: float = 0.0) -> Frames:
    return Frames(sent, cut, pause)


def empty_stream() -> EmptyStream:
    return EmptyStream()


def slow_stream(interval: float) -> SlowStream:
    return SlowStream(interval)


def by_key(steps: Mapping[str, Step]) -> ByKey:
    return ByKey(steps)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a provider there refuses every connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the server ----------------------------------------------------------------------------------


@dataclass
class ScriptedProvider:
    """The server: `script()` what it does, `seen()` what it got, `disconnects` whose answer was abandoned."""

    port: int = 0
    # Not in the repr: a module's server sees many requests (see FakeUpstream).
    disconnects: list[str] = field(default_factory=list, init=False, repr=False)
    _scripts: dict[str, list[Step]] = field(default_factory=dict, init=False, repr=False)
    _seen: list[Seen] = field(default_factory=list, init=False, repr=False)
    _server: ThreadedServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, *steps: Step) -> None:
        """What the next requests for `model` get, in order; the last step repeats."""
        assert steps, "a script needs at least one step"
        self._scripts[model] = list(steps)

    def seen(self, model: str) -> list[Seen]:
        return [seen for seen in self._seen if seen.model == model]

    def keys(self, model: str) -> list[str]:
        return [seen.key for seen in self.seen(model)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        return predicate()

    async def until_cancelled(self, seen: Seen, work: Awaitable[object]) -> None:
        """Run `work`; if the gateway drops the connection meanwhile, note it in `disconnects`."""
        try:
            await work
        except (ConnectionError, asyncio.CancelledError):
            # aiohttp cancels the handler when the peer closes (handler_cancellation=True).
            self.disconnects.append(seen.model)
            raise

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        key = request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        seen = Seen(at, request.path, str(body.get("model", "")), key, body)
        self._seen.append(seen)
        steps = self._scripts.get(seen.model)
        if steps is None:
            message = f"scripted provider: no script for model {seen.model!r}"
            return web.json_response(error_body(wire_of(seen.path), 400, message), status=400)
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        return await step.answer(request, seen, self)

    def start(self) -> ScriptedProvider:
        self._server = ThreadedServer(self._handle, "scripted-provider")
        self._server.start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> ScriptedProvider:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
