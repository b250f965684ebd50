"""A scripted fake provider on real TCP (aiohttp.web in a thread) that records what it receives.

The upstream-visible model name picks the behaviour, so one server serves every test.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.e2e import responses_events
from tests.e2e.threaded_server import ThreadedServer

OPENAI_KEYS = ("sk-test-openai-key-AAAA", "sk-test-openai-key-BBBB")
ANTHROPIC_KEY = "sk-ant-test-key-CCCC"
LOCAL_KEY = "sk-local-test-key-DDDD"
ALL_KEYS = (*OPENAI_KEYS, ANTHROPIC_KEY, LOCAL_KEY)
# The large answers of the memory tests, generated on the fly in pieces of PIECE bytes.
HUGE_BYTES = 200 * 1024 * 1024
PIECE = 64 * 1024
# The incomplete event each `partial-hog` stream holds open.
HOG_BYTES = 6 * 1024 * 1024
HOG_FIRST_EVENT = b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
# How long the `late-start` model waits before it answers.
LATE_START = 1.0
# What `encoded-<name>` models label their answers with; none of them can be decoded by the gateway.
# The last two are no coding the gateway knows, the gateway's own key among them (a provider echoing it).
REFUSED_ENCODINGS = {
    "br": "br",
    "zstd": "zstd",
    "compress": "compress",
    "stacked": "gzip, gzip",
    "unknown": "x-snappy",
    "key": OPENAI_KEYS[0],
}
UNKNOWN_ENCODINGS = frozenset({"unknown", "key"})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()  # as they came on the wire, for byte-exact checks
    query: str = ""  # the query string as it came, undecoded


@dataclass
class FakeUpstream:
    port: int = 0
    # Not in the repr, nor in __init__ (hypothesis prints a dataclass by its init fields): the session's
    # upstream sees thousands of requests, and hypothesis reprs a test's fixtures with each example
    # (megabytes, and a HypothesisWarning, which the suite makes an error).
    seen: list[Seen] = field(default_factory=list, init=False, repr=False)
    disconnects: list[str] = field(default_factory=list, init=False, repr=False)
    _server: ThreadedServer | None = None
    # With a context it serves HTTPS. It listens on 127.0.0.1 whatever `host` is: the name `base`
    # gives, which a certificate can be issued for (`localhost`).
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"

    @property
    def base(self) -> str:
        return f"{'http' if self.tls is None else 'https'}://{self.host}:{self.port}"

    def last(self) -> Seen:
        return self.seen[-1]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # --- server side -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query = request.rel_url.raw_query_string
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body, request.raw_headers, query))
        try:
            payload: dict[str, Any] = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        model = str(payload.get("model", ""))
        anthropic = request.path.startswith("/v1/messages")
        if model.startswith("status-"):
            status = int(model.split("-")[1])
            return web.json_response(
                {"error": {"message": f"upstream says {status}", "type": "x", "param": None, "code": "upstream"}},
                status=status,
                headers={"retry-after": "7", "x-request-id": "req_fake_err"},
            )
        if model == "redirect":  # e.g. a base URL that moved: the gateway must relay it, not follow it
            return web.json_response(
                {"error": {"message": "moved", "type": "x"}},
                status=307,
                headers={"location": "https://moved.example/v1"},
            )
        if model == "echo-key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {key}"
            return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=401)
        if model == "hang":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.disconnects.append(model)
                raise
        if model == "slow-body-503":  # the status at once, its body LATE_START seconds later
            error = json.dumps({"error": {"message": "overloaded", "type": "x"}}).encode()
            slow = web.StreamResponse(status=503, headers={"content-type": "application/json"})
            slow.content_length = len(error)
            await slow.prepare(request)
            await asyncio.sleep(LATE_START)
            await slow.write(error)
            await slow.write_eof()
            return slow
        if model == "late-start":  # answers LATE_START seconds late, as a busy provider would
            await asyncio.sleep(LATE_START)
        scripted = self._scripted(model, bool(payload.get("stream")), anthropic)
        if scripted is not None:
            return await scripted(request, model)
        if request.path.startswith("/v1/responses"):
            return await _responses(request, model, bool(payload.get("stream")))
        if payload.get("stream"):
            return await self._stream(request, model, anthropic)
        if anthropic:
            answer: dict[str, Any] = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "fake anthropic answer"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 3},
            }
            if request.path.endswith("count_tokens"):
                answer = {"input_tokens": 42}
        elif request.path.endswith("/embeddings"):
            answer = {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.5]}],
                "model": model,
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        elif request.path.endswith("/images/generations"):
            answer = {"created": 1, "data": [{"url": "https://example.invalid/fake.png"}]}
        elif request.path.endswith("/chat/completions"):
            answer = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "fake openai answer"},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
            }
        else:
            answer = {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": 1,
                "model": model,
                "choices": [{"text": "fake completion", "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            }
        return web.json_response(
            answer,
            headers={
                "x-request-id": "req_fake_1",
                "request-id": "req_fake_1",
                "x-ratelimit-remaining-requests": "99",
                "anthropic-ratelimit-requests-remaining": "98",
                "openai-organization": "org-other-tenant",
                "set-cookie": "session=secret",
            },
        )

    async def _stream(self, request: web.Request, model: str, anthropic: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "x-request-id": "req_fake_s"})
        await response.prepare(request)
        if model == "endless":
            try:
                for i in range(600):
                    await response.write(f'data: {{"choices":[{{"delta":{{"content":"{i}"}}}}]}}\n\n'.encode())
                    await asyncio.sleep(0.05)
            except (ConnectionError, asyncio.CancelledError):
                # aiohttp cancels the handler when the peer closes (handler_cancellation=True).
                self.disconnects.append(model)
                raise
            return response
        if model == "cut":
            await response.write(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choi')
            assert request.transport is not None
            request.transport.close()
            return response
        if model == "malformed":
            await response.write(b'data: {"choices":[{"delta":{"content":"kept"}}]}\n\n')
            await response.write(b'data: {"usage":{"a":1}, broken\n\n')
            await response.write(b'event: message_start\ndata: {"type":"message_start"}\n\n')
            await response.write(b'data: {"choices":[{"delta":{"content":"after"}}]}\n\ndata: [DONE]\n\n')
            await response.write(b": bye\n")  # a trailing comment without its blank line loses nothing
            await response.write_eof()
            return response
        if model == "stream-echo-key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
            await response.write(b'data: {"error":{"message":"bad key ' + key[:9])
            await asyncio.sleep(0.05)
            await response.write(key[9:] + b'"}}\n\n')
            await response.write_eof()
            return response
        if model == "stall":
            await response.write(b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n')
            await asyncio.sleep(30)
        for frame in _anthropic_frames(model) if anthropic else _openai_frames(model):
            await response.write(frame)
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    # --- the response side: headers, encodings, sizes, broken events ----------------------------

    def _scripted(
        self, model: str, stream: bool, anthropic: bool
    ) -> Callable[[web.Request, str], Awaitable[web.StreamResponse]] | None:
        if model.startswith("encoded-"):
            return _refused_encoding
        if model == "deep-usage" and stream:
            return _deep_anthropic_usage if anthropic else _deep_openai_usage
        if model == "partial-hog":
            return self._partial_hog
        if model == "sse-unasked":
            return self._sse_unasked
        return _SCRIPTS.get(model)

    async def _sse_unasked(self, request: web.Request, model: str) -> web.StreamResponse:
        """An event stream whatever was asked: one event, then silence until the gateway lets go."""
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(b'data: {"choices":[{"delta":{"content":"one"}}]}\n\n')
            await asyncio.sleep(30)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects.append(model)
            raise
        return response

    async def _partial_hog(self, request: web.Request, model: str) -> web.StreamResponse:
        """A first event (the stream's commit point), then one that never ends: HOG_BYTES of it, then silence."""
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(HOG_FIRST_EVENT + b'data: {"choices":[{"delta":{"content":"')
            for _ in range(HOG_BYTES // PIECE):
                await response.write(b"h" * PIECE)
            await asyncio.sleep(60)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects.append(model)
            raise
        return response

    def start(self) -> None:
        self._server = ThreadedServer(self._handle, "fake-upstream", tls=self.tls, client_max_size=64 * 1024 * 1024)
        self._server.start()
        self.port = self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def openai_stream(model: str) -> bytes:
    """The exact bytes of the OpenAI event stream the fake sends for `model` by default."""
    return b"".join(_openai_frames(model))


def _openai_frames(model: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    frames = [chunk({"role": "assistant", "content": ""}, None)]
    frames += [chunk({"content": word}, None) for word in ("fake", " streamed", " café 😀")]
    frames.append(chunk({}, "stop"))
    usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    final = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": model}
    frames.append(b"data: " + json.dumps({**final, "choices": [], "usage": usage}).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


def _anthropic_frames(model: str) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    }
    frames = [
        event("message_start", {"type": "message_start", "message": message}),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        b": keep-alive comment\n\n",
        event("ping", {"type": "ping"}),
    ]
    for word in ("fake", " anthropic", " stream"):
        frames.append(
            event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
            )
        )
    frames += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return frames


# A response id the fake has no response for: its by-id routes answer 404, as OpenAI's do.
MISSING_RESPONSE = "resp_missing"


async def _responses(request: web.Request, model: str, stream: bool) -> web.StreamResponse:
    """The Responses API: create (whole or streamed), input_tokens, compact, and a stored response's by-id routes."""
    path = request.path.removeprefix("/v1/responses")
    headers = {"x-request-id": "req_fake_r"}
    if path == "":
        if stream:
            return await _frames(request, responses_events.stream_frames(model))
        return web.json_response(responses_events.response_object(model, "fake responses answer"), headers=headers)
    if path == "/input_tokens":
        return web.json_response({"object": "response.input_tokens", "input_tokens": 7}, headers=headers)
    if path == "/compact":
        compacted = {"id": "resp_compact", "created_at": 1, "object": "response.compaction", "output": []}
        return web.json_response({**compacted, "usage": responses_events.USAGE}, headers=headers)
    response_id, _, action = path.removeprefix("/").partition("/")
    if response_id == MISSING_RESPONSE:
        error = {"message": f"Response with id '{response_id}' not found.", "type": "invalid_request_error"}
        return web.json_response({"error": {**error, "param": None, "code": None}}, status=404, headers=headers)
    stored = responses_events.response_object("gpt-4o", "stored answer", response_id=response_id)
    answer: dict[str, Any]
    if request.method == "GET" and not action and request.query.get("stream") == "true":
        return await _frames(request, responses_events.stream_frames("gpt-4o"))  # a background response's events
    if request.method == "DELETE":
        answer = {"id": response_id, "object": "response.deleted", "deleted": True}
    elif action == "cancel":
        answer = {**stored, "status": "cancelled"}
    elif action == "input_items":
        content = [{"type": "input_text", "text": f"query={request.rel_url.raw_query_string}"}]
        item = {"id": "msg_in", "type": "message", "role": "user", "status": "completed", "content": content}
        answer = {"object": "list", "data": [item], "first_id": "msg_in", "last_id": "msg_in", "has_more": False}
    else:
        answer = stored
    return web.json_response(answer, headers=headers)


def sent_key(request: web.Request) -> str:
    """The provider key the gateway sent with this request."""
    return request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")


def _raw_answer(request: web.Request, head: bytes, body: bytes) -> web.StreamResponse:
    """Write a response aiohttp.web would refuse to make (a control character in a header) by hand."""
    assert request.transport is not None
    request.transport.write(b"HTTP/1.1 200 OK\r\n" + head + b"content-length: %d\r\n\r\n" % len(body) + body)
    request.transport.close()
    return web.Response()


async def _control_header(request: web.Request, model: str) -> web.StreamResponse:
    head = b"content-type: application/json\r\nx-request-id: req\x01bad\r\nx-ratelimit-remaining-requests: 41\r\n"
    return _raw_answer(request, head, b'{"id":"chatcmpl-ctl","object":"chat.completion","choices":[]}')


async def _headers_echo_key(request: web.Request, model: str) -> web.StreamResponse:
    key = sent_key(request)
    return web.json_response(
        {"id": "chatcmpl-hdr", "object": "chat.completion", "choices": []},
        headers={
            "x-request-id": f"Bearer {key}",
            "request-id": key,
            "x-ratelimit-limit-requests": f"{key}:100",
            "retry-after": key,
            "location": f"https://moved.example/v1?key={key}",
        },
    )


async def _ok_echo_key(request: web.Request, model: str) -> web.StreamResponse:
    """A 200 that echoes the Authorization it got, as some debugging proxies do."""
    return web.json_response({"id": "chatcmpl-echo", "echo": {"authorization": f"Bearer {sent_key(request)}"}})


async def _chunked_echo_key(request: web.Request, model: str) -> web.StreamResponse:
    """The key three times, each cut across two writes at a different place, with no Content-Length."""
    key = sent_key(request).encode()
    response = web.StreamResponse(headers={"content-type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"echo":[')
    for cut in (1, len(key) // 2, len(key) - 1):
        await response.write(b'"' + key[:cut])
        await asyncio.sleep(0.02)  # separate reads on the gateway's side
        await response.write(key[cut:] + b'",')
    await response.write(b'"end"]}')
    await response.write_eof()
    return response


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


async def _gzip_echo_key(request: web.Request, model: str) -> web.StreamResponse:
    """A 401 compressed although the gateway asked for identity, echoing the key it got."""
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {sent_key(request)}", "type": "x"}})
    return web.Response(
        body=_gzip(body.encode()), status=401, content_type="application/json", headers={"content-encoding": "gzip"}
    )


async def _deflate(request: web.Request, model: str) -> web.StreamResponse:
    """deflate as RFC 9110 means it (zlib-wrapped) or as some servers send it (raw)."""
    body = json.dumps({"id": "chatcmpl-deflate", "object": "chat.completion", "key": sent_key(request)}).encode()
    packer = zlib.compressobj(wbits=zlib.MAX_WBITS if model == "deflate-zlib" else -zlib.MAX_WBITS)
    return web.Response(
        body=packer.compress(body) + packer.flush(),
        content_type="application/json",
        headers={"content-encoding": "deflate"},
    )


async def _gzip_stream(request: web.Request, model: str) -> web.StreamResponse:
    """An SSE stream gzip-encoded anyway, flushed per event as a compressing proxy would."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "content-encoding": "gzip"})
    await response.prepare(request)
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    key_frame = b'data: {"choices":[{"index":0,"delta":{"content":" key=' + sent_key(request).encode() + b'"}}]}\n\n'
    frames = _openai_frames(model)
    for frame in [*frames[:-2], key_frame, *frames[-2:]]:
        await response.write(packer.compress(frame) + packer.flush(zlib.Z_SYNC_FLUSH))
        await asyncio.sleep(0)
    await response.write(packer.flush())
    await response.write_eof()
    return response


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    """32 MiB of zeros in 32 KiB of gzip (a thousandfold, as real bombs are), made once and quickly."""
    if not _BOMB:
        packer = zlib.compressobj(9, wbits=16 + zlib.MAX_WBITS)
        zeros = bytes(1024 * 1024)
        _BOMB.append(b"".join(packer.compress(zeros) for _ in range(32)) + packer.flush())
    return _BOMB[0]


async def _gzip_bomb(request: web.Request, model: str) -> web.StreamResponse:
    return web.Response(body=_bomb(), content_type="application/json", headers={"content-encoding": "gzip"})


async def _refused_encoding(request: web.Request, model: str) -> web.StreamResponse:
    coding = REFUSED_ENCODINGS[model.removeprefix("encoded-")]
    return web.Response(
        body=b"\x28\xb5\x2f\xfd opaque", content_type="application/json", headers={"content-encoding": coding}
    )


async def _huge(request: web.Request, model: str) -> web.StreamResponse:
    """HUGE_BYTES made on the fly, the key cut across two writes in the middle.

    `huge-length` declares its length, `huge-chunked` does not, `huge-sse` answers a non-stream
    request with an event stream, `huge-cut` declares its length and breaks off after a few MiB.
    """
    key = sent_key(request).encode()
    sse = model == "huge-sse"
    response = web.StreamResponse(headers={"content-type": "text/event-stream" if sse else "application/json"})
    if model in ("huge-length", "huge-cut"):
        response.content_length = HUGE_BYTES
    await response.prepare(request)
    head, tail = (b'data: {"filler":"', b'"}\n\n') if sse else (b'{"filler":"', b'"}')
    pieces = HUGE_BYTES // PIECE
    middle = pieces // 2
    await response.write(head + b"a" * (PIECE - len(head)))
    for index in range(1, pieces - 1):
        if index == middle:
            await response.write(b"a" * (PIECE - 10) + key[:10])
            await response.write(key[10:] + b"a" * (PIECE - len(key) + 10))
            continue
        if index == middle + 1:
            continue
        if model == "huge-cut" and index == 64:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write(b"a" * PIECE)
    await response.write(b"a" * (PIECE - len(tail)) + tail)
    await response.write_eof()
    return response


async def _deep_openai_usage(request: web.Request, model: str) -> web.StreamResponse:
    """A usage object nested 5,000 deep in the middle of an otherwise good stream."""
    deep = b"[" * 5000 + b"]" * 5000
    frames = _openai_frames(model)
    frames.insert(2, b'data: {"choices":[],"usage":{"prompt_tokens":' + deep + b"}}\n\n")
    return await _frames(request, frames)


async def _deep_anthropic_usage(request: web.Request, model: str) -> web.StreamResponse:
    deep = "[" * 5000 + "]" * 5000
    frames = _anthropic_frames(model)
    frames[0] = (
        'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":' + deep + "}}}\n\n"
    ).encode()
    return await _frames(request, frames)


async def _frames(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for frame in frames:
        await response.write(frame)
    await response.write_eof()
    return response


_SCRIPTS: dict[str, Callable[[web.Request, str], Awaitable[web.StreamResponse]]] = {
    "control-header": _control_header,
    "headers-echo-key": _headers_echo_key,
    "ok-echo-key": _ok_echo_key,
    "chunked-echo-key": _chunked_echo_key,
    "gzip-echo-key": _gzip_echo_key,
    "deflate-zlib": _deflate,
    "deflate-raw": _deflate,
    "gzip-stream": _gzip_stream,
    "gzip-bomb": _gzip_bomb,
    "huge-length": _huge,
    "huge-chunked": _huge,
    "huge-sse": _huge,
    "huge-cut": _huge,
}
