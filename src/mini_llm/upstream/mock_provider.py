"""The built-in mock provider: deterministic answers in both protocols, streamed with a set delay.

This module answers OpenAI's chat, completions, embeddings and images endpoints and routes each path
to its answer; the Responses API and Anthropic's Messages API have modules of their own beside it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import msgspec

from mini_llm.errors import GatewayError
from mini_llm.providers import Target
from mini_llm.upstream import Body, joined
from mini_llm.upstream.mock_anthropic import count_tokens, messages
from mini_llm.upstream.mock_frames import (
    DEFAULT_TOKENS,
    JSON,
    SSE,
    WORDS,
    MockReply,
    encode,
    int_field,
    named_tool,
    paced,
    pieces,
    prompt_tokens,
    request_id,
    sse,
    tokens,
)
from mini_llm.upstream.mock_responses import input_tokens, responses
from mini_llm.upstream.mock_schema import json_answer, tool_arguments

__all__ = ["DEFAULT_TOKENS", "MOCK_MODEL", "WORDS", "MockProvider", "MockResponse", "request_model", "respond"]

MOCK_MODEL: Final = "mock"
# A 1x1 transparent PNG, so image answers are real images.
_PNG: Final = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e5270de20000000049454e44ae426082"
    )
).decode()

_OBJECT = msgspec.json.Decoder(dict[str, Any])
# The fields that set an OpenAI answer's length, the first one a request sets counting.
_LIMITS: Final = ("max_completion_tokens", "max_tokens")


def _tool_call(request: dict[str, Any], rid: str) -> dict[str, Any] | None:
    """A call of the first function (or the one tool_choice names), while no tool result is in yet
    (non-stream only).

    Its arguments are the smallest ones valid for the function's parameters, free strings "mock", so a
    client can run its tool and send the result back; the next turn (last message from the tool) gets text.
    """
    tools, choice, turns = request.get("tools"), request.get("tool_choice"), request.get("messages")
    if not isinstance(tools, list) or choice == "none":
        return None
    last = turns[-1] if isinstance(turns, list) and turns else None
    if isinstance(last, dict) and last.get("role") == "tool":
        return None
    wanted = choice.get("function") if isinstance(choice, dict) else None
    named = wanted.get("name") if isinstance(wanted, dict) else None
    function = named_tool((tool.get("function") for tool in tools if isinstance(tool, dict)), named)
    if function is None:
        return None
    strict = function.get("strict") is True
    arguments = tool_arguments(function.get("parameters"), "tools.function.parameters", every_property=strict)
    return {
        "id": f"call_{rid[-12:]}",
        "type": "function",
        "function": {"name": function["name"], "arguments": encode(arguments).decode()},
    }


def _chat(request: dict[str, Any], model: str, delay: float) -> MockReply:
    rid, created = f"chatcmpl-mock-{request_id(request)}", int(time.time())
    call = None if request.get("stream") else _tool_call(request, rid)
    response_format = request.get("response_format")
    structured = (
        json_answer(response_format.get("type"), response_format.get("json_schema"), "response_format.json_schema")
        if isinstance(response_format, dict) and call is None
        else None
    )
    parts = tokens(request, *_LIMITS) if structured is None else pieces(structured)
    usage = {
        "prompt_tokens": prompt_tokens(request),
        "completion_tokens": len(parts),
        "total_tokens": prompt_tokens(request) + len(parts),
    }
    if not request.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": "".join(parts), "refusal": None}
        if call is not None:
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        finish = "stop" if call is None else "tool_calls"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        body = {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        return MockReply(200, JSON, encode(body))
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    frames = [chunk({"role": "assistant", "content": ""}, None)]
    frames += [chunk({"content": part}, None) for part in parts]
    frames.append(chunk({}, "stop"))
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        frames.append(sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return MockReply(200, SSE, stream=paced(frames, delay))


def _completion(request: dict[str, Any], model: str, delay: float) -> MockReply:
    words = tokens(request, *_LIMITS)
    rid, created = f"cmpl-mock-{request_id(request)}", int(time.time())
    base = {"id": rid, "object": "text_completion", "created": created, "model": model}
    if not request.get("stream"):
        choice = {"text": "".join(words), "index": 0, "logprobs": None, "finish_reason": "stop"}
        usage = {
            "prompt_tokens": prompt_tokens(request),
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens(request) + len(words),
        }
        return MockReply(200, JSON, encode({**base, "choices": [choice], "usage": usage}))
    frames = [
        sse({**base, "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}]}) for t in words
    ]
    frames.append(sse({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]}))
    frames.append(b"data: [DONE]\n\n")
    return MockReply(200, SSE, stream=paced(frames, delay))


def _embeddings(request: dict[str, Any], model: str) -> MockReply:
    inputs = request.get("input")
    items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
    dims = int_field(request, "dimensions", 8, 4096)
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(encode(item)).digest()
        vector = [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dims)]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    usage = {"prompt_tokens": prompt_tokens(request), "total_tokens": prompt_tokens(request)}
    return MockReply(200, JSON, encode({"object": "list", "data": data, "model": model, "usage": usage}))


def _images(request: dict[str, Any]) -> MockReply:
    count = int_field(request, "n", 1, 10)
    data = [{"b64_json": _PNG, "revised_prompt": request.get("prompt")} for _ in range(count)]
    return MockReply(200, JSON, encode({"created": int(time.time()), "data": data}))


def request_model(body: bytes | memoryview) -> str:
    """The model a raw request names (the mock upstream answers with the model it was asked for)."""
    try:
        model = _OBJECT.decode(body).get("model")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return MOCK_MODEL
    return model if isinstance(model, str) else MOCK_MODEL


def respond(path: str, body: bytes | memoryview, model: str, delay: float) -> MockReply:
    """Answer `path` (relative to the provider base: `/chat/completions`, `/responses`, `/v1/messages`, ...)."""
    try:
        return _respond(path, body, model, delay)
    except RecursionError as exc:
        # msgspec's depth limit is Python's recursion limit, which the call stack shares: a body the
        # envelope read a few frames higher up can still be too deep to decode or encode down here.
        raise GatewayError(400, "request body nests arrays and objects too deeply for the mock provider") from exc


def _respond(path: str, body: bytes | memoryview, model: str, delay: float) -> MockReply:
    try:
        request = _OBJECT.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise GatewayError(400, f"request body is not a JSON object: {exc}") from exc
    if path == "/chat/completions":
        return _chat(request, model, delay)
    if path == "/completions":
        return _completion(request, model, delay)
    if path == "/embeddings":
        return _embeddings(request, model)
    if path == "/images/generations":
        return _images(request)
    if path == "/responses":
        return responses(request, model, delay)
    if path == "/responses/input_tokens":
        return input_tokens(request)
    if path == "/v1/messages":
        return messages(request, model, delay)
    if path == "/v1/messages/count_tokens":
        return count_tokens(request)
    raise GatewayError(404, f"the mock provider has no endpoint {path}")


class MockResponse:
    """A mock answer behind the same interface as a provider's: nothing is on a wire, so nothing fails."""

    __slots__ = ("_reply", "content_length", "headers", "status")

    def __init__(self, reply: MockReply) -> None:
        self._reply = reply
        self.status = reply.status
        self.headers = [(b"content-type", reply.content_type)]
        self.content_length = None if reply.stream is not None else len(reply.body)

    @property
    def is_event_stream(self) -> bool:
        return self._reply.stream is not None

    async def read(self) -> bytes:
        return self._reply.body

    def chunks(self) -> AsyncIterator[bytes]:
        return self._reply.stream if self._reply.stream is not None else _once(self._reply.body)

    def close(self) -> None:
        """Nothing to release: an unfinished stream is a generator that is simply dropped."""


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


class MockProvider:
    """The built-in mock as an `Upstream`: answers in the worker, paced by MINI_LLM_MOCK_TOKEN_DELAY."""

    __slots__ = ("_delay",)

    def __init__(self, token_delay: float) -> None:
        self._delay = token_delay

    async def open(self) -> None:
        """Nothing to open: the mock holds no connections."""

    async def close(self) -> None:
        """Nothing to close."""

    async def send(
        self, target: Target, path: str, body: Body, client: Mapping[bytes, bytes], *, method: str = "POST"
    ) -> MockResponse:
        whole = joined(body)
        return MockResponse(respond(path, whole, target.model, self._delay))
