"""The built-in mock provider: deterministic answers in both protocols, streamed with a set delay."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from mini_llm.errors import GatewayError
from mini_llm.providers import Target
from mini_llm.upstream import Body, joined

WORDS: Final = ("Hello", " from", " the", " mini-llm", " mock", " provider", ".")
DEFAULT_TOKENS: Final = len(WORDS)
MOCK_MODEL: Final = "mock"
MAX_TOKENS: Final = 4096
SSE: Final = b"text/event-stream"
JSON: Final = b"application/json"
# A 1x1 transparent PNG, so image answers are real images.
_PNG: Final = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e5270de20000000049454e44ae426082"
    )
).decode()

_encode = msgspec.json.encode
_OBJECT = msgspec.json.Decoder(dict[str, Any])


@dataclass(slots=True)
class MockReply:
    """What the mock answers: a whole JSON body, or an SSE stream of chunks."""

    status: int
    content_type: bytes
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def _int_field(request: dict[str, Any], name: str, default: int, high: int) -> int:
    value = request.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return max(1, min(value, high))


def _tokens(request: dict[str, Any]) -> list[str]:
    name = "max_completion_tokens" if "max_completion_tokens" in request else "max_tokens"
    count = _int_field(request, name, DEFAULT_TOKENS, MAX_TOKENS)
    return [WORDS[i % len(WORDS)] for i in range(count)]


def _prompt_tokens(request: dict[str, Any]) -> int:
    """A stable stand-in for a tokenizer: about four bytes a token."""
    return max(1, len(_encode(request.get("messages") or request.get("prompt") or request.get("input"))) // 4)


def _request_id(request: dict[str, Any]) -> str:
    return hashlib.blake2s(_encode(request), digest_size=8).hexdigest()


def _sse(data: Any, event: str | None = None) -> bytes:
    frame = b"data: " + _encode(data) + b"\n\n"
    return b"event: " + event.encode() + b"\n" + frame if event else frame


async def _paced(frames: list[bytes], delay: float) -> AsyncIterator[bytes]:
    """The first frame at once, as providers send their opening event, then one per `delay`."""
    for index, frame in enumerate(frames):
        if delay and index:
            await asyncio.sleep(delay)
        yield frame


def _tool_call(request: dict[str, Any], rid: str) -> dict[str, Any] | None:
    """A call of the first offered function, while no tool result is in yet (non-stream only).

    Every required string parameter gets the value "mock", so a client can run its tool and
    send the result back; the next turn (last message from the tool) is answered with text.
    """
    tools, messages = request.get("tools"), request.get("messages")
    if not tools or not isinstance(tools, list) or request.get("tool_choice") == "none":
        return None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if isinstance(last, dict) and last.get("role") == "tool":
        return None
    function = tools[0].get("function") if isinstance(tools[0], dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        return None
    schema: Any = function.get("parameters")
    properties: Any = schema.get("properties") if isinstance(schema, dict) else None
    required: Any = schema.get("required") if isinstance(schema, dict) else None
    arguments = {
        name: "mock"
        for name in (required if isinstance(required, list) else [])
        if isinstance(properties, dict)
        and isinstance(properties.get(name), dict)
        and properties[name].get("type") == "string"
    }
    return {
        "id": f"call_{rid[-12:]}",
        "type": "function",
        "function": {"name": function["name"], "arguments": _encode(arguments).decode()},
    }


def _chat(request: dict[str, Any], model: str, delay: float) -> MockReply:
    tokens = _tokens(request)
    rid, created = f"chatcmpl-mock-{_request_id(request)}", int(time.time())
    usage = {
        "prompt_tokens": _prompt_tokens(request),
        "completion_tokens": len(tokens),
        "total_tokens": _prompt_tokens(request) + len(tokens),
    }
    if not request.get("stream"):
        call = _tool_call(request, rid)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(tokens), "refusal": None}
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
        return MockReply(200, JSON, _encode(body))
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    frames = [chunk({"role": "assistant", "content": ""}, None)]
    frames += [chunk({"content": token}, None) for token in tokens]
    frames.append(chunk({}, "stop"))
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        frames.append(_sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return MockReply(200, SSE, stream=_paced(frames, delay))


def _completion(request: dict[str, Any], model: str, delay: float) -> MockReply:
    tokens = _tokens(request)
    rid, created = f"cmpl-mock-{_request_id(request)}", int(time.time())
    base = {"id": rid, "object": "text_completion", "created": created, "model": model}
    if not request.get("stream"):
        choice = {"text": "".join(tokens), "index": 0, "logprobs": None, "finish_reason": "stop"}
        usage = {
            "prompt_tokens": _prompt_tokens(request),
            "completion_tokens": len(tokens),
            "total_tokens": _prompt_tokens(request) + len(tokens),
        }
        return MockReply(200, JSON, _encode({**base, "choices": [choice], "usage": usage}))
    frames = [
        _sse({**base, "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}]}) for t in tokens
    ]
    frames.append(_sse({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]}))
    frames.append(b"data: [DONE]\n\n")
    return MockReply(200, SSE, stream=_paced(frames, delay))


def _embeddings(request: dict[str, Any], model: str) -> MockReply:
    inputs = request.get("input")
    items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
    dims = _int_field(request, "dimensions", 8, 4096)
    data = []
    for index, item in enumerate(items):
        digest = hashlib.sha256(_encode(item)).digest()
        vector = [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dims)]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    usage = {"prompt_tokens": _prompt_tokens(request), "total_tokens": _prompt_tokens(request)}
    return MockReply(200, JSON, _encode({"object": "list", "data": data, "model": model, "usage": usage}))


def _images(request: dict[str, Any]) -> MockReply:
    count = _int_field(request, "n", 1, 10)
    data = [{"b64_json": _PNG, "revised_prompt": request.get("prompt")} for _ in range(count)]
    return MockReply(200, JSON, _encode({"created": int(time.time()), "data": data}))


def _messages(request: dict[str, Any], model: str, delay: float) -> MockReply:
    tokens = _tokens(request)
    mid = f"msg_mock_{_request_id(request)}"
    input_tokens = _prompt_tokens(request)
    if not request.get("stream"):
        body = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": "".join(tokens)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": len(tokens)},
        }
        return MockReply(200, JSON, _encode(body))
    start: dict[str, Any] = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    frames = [
        _sse({"type": "message_start", "message": start}, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        _sse({"type": "ping"}, "ping"),
    ]
    frames += [
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}},
            "content_block_delta",
        )
        for token in tokens
    ]
    frames += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(tokens)},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return MockReply(200, SSE, stream=_paced(frames, delay))


def _count_tokens(request: dict[str, Any]) -> MockReply:
    return MockReply(200, JSON, _encode({"input_tokens": _prompt_tokens(request)}))


def request_model(body: bytes | memoryview) -> str:
    """The model a raw request names (the mock upstream answers with the model it was asked for)."""
    try:
        model = _OBJECT.decode(body).get("model")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return MOCK_MODEL
    return model if isinstance(model, str) else MOCK_MODEL


def respond(path: str, body: bytes | memoryview, model: str, delay: float) -> MockReply:
    """Answer `path` (relative to the provider base: `/chat/completions`, `/v1/messages`, ...)."""
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
    if path == "/v1/messages":
        return _messages(request, model, delay)
    if path == "/v1/messages/count_tokens":
        return _count_tokens(request)
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

    async def send(self, target: Target, path: str, body: Body, client: Mapping[bytes, bytes]) -> MockResponse:
        whole = joined(body)
        return MockResponse(respond(path, whole, target.model, self._delay))
