"""A scripted fake provider on real TCP (aiohttp.web in a thread) that records what it receives.

The upstream-visible model name picks the behaviour, so one server serves every test.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

OPENAI_KEYS = ("sk-test-openai-key-AAAA", "sk-test-openai-key-BBBB")
ANTHROPIC_KEY = "sk-ant-test-key-CCCC"
LOCAL_KEY = "sk-local-test-key-DDDD"
ALL_KEYS = (*OPENAI_KEYS, ANTHROPIC_KEY, LOCAL_KEY)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeUpstream:
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread = field(default_factory=threading.Thread)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
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

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-upstream")
        self._thread.start()
        assert ready.wait(10), "fake upstream did not start"

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()


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
