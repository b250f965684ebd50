"""The built-in mock provider: every endpoint, stream and non-stream, checked through the SSE splitter."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import msgspec
import pytest

from mini_llm.errors import GatewayError
from mini_llm.hotpath import SSEEvent, SSESplitter
from mini_llm.upstream import mock_provider as mock

WORDS = ("Hello", " from", " the", " mini-llm", " mock", " provider", ".")
TEXT = "Hello from the mini-llm mock provider."
MESSAGES = [{"role": "user", "content": "Say hello, café 😀"}]


def text_of(count: int) -> str:
    return "".join(WORDS[i % len(WORDS)] for i in range(count))


def encode(request: dict[str, Any]) -> bytes:
    return msgspec.json.encode(request)


def answer(path: str, request: dict[str, Any], model: str = "mock") -> dict[str, Any]:
    reply = mock.respond(path, encode(request), model, 0.0)
    assert reply.status == 200
    assert reply.content_type == b"application/json"
    assert reply.stream is None
    body: dict[str, Any] = json.loads(reply.body)
    return body


def frames(path: str, request: dict[str, Any], model: str = "mock", delay: float = 0.0) -> list[bytes]:
    reply = mock.respond(path, encode({**request, "stream": True}), model, delay)
    assert reply.status == 200
    assert reply.content_type == b"text/event-stream"
    assert reply.body == b""
    assert reply.stream is not None
    stream = reply.stream

    async def drain() -> list[bytes]:
        return [frame async for frame in stream]

    return asyncio.run(drain())


def events(raw_frames: list[bytes]) -> list[SSEEvent]:
    """Parse the frames as a client would, and check one frame is exactly one event."""
    splitter = SSESplitter()
    parsed: list[SSEEvent] = []
    for frame in raw_frames:
        got = splitter.feed(frame)
        assert len(got) == 1
        assert got[0].raw == frame
        parsed += got
    assert splitter.pending == 0
    assert SSESplitter().feed(b"".join(raw_frames)) == parsed
    return parsed


def payloads(parsed: list[SSEEvent]) -> list[Any]:
    return [json.loads(event.data) for event in parsed if event.data != "[DONE]"]


def without_created(value: Any) -> Any:
    """The mock stamps `created` with the clock; everything else must be a pure function of the request."""
    if isinstance(value, dict):
        return {k: without_created(v) for k, v in value.items() if k != "created"}
    if isinstance(value, list):
        return [without_created(v) for v in value]
    return value


TOKEN_CASES = [
    pytest.param({}, 7, id="default"),
    pytest.param({"max_tokens": 3}, 3, id="max_tokens-3"),
    pytest.param({"max_tokens": 10}, 10, id="max_tokens-wraps"),
    pytest.param({"max_tokens": 0}, 1, id="max_tokens-0"),
    pytest.param({"max_tokens": -5}, 1, id="max_tokens-negative"),
    pytest.param({"max_tokens": 10**9}, 4096, id="max_tokens-capped"),
    pytest.param({"max_tokens": True}, 7, id="max_tokens-bool"),
    pytest.param({"max_tokens": "5"}, 7, id="max_tokens-string"),
    pytest.param({"max_tokens": 2.5}, 7, id="max_tokens-float"),
    pytest.param({"max_completion_tokens": 2}, 2, id="max_completion_tokens"),
    pytest.param({"max_completion_tokens": 2, "max_tokens": 9}, 2, id="max_completion_tokens-wins"),
]


class TestChat:
    PATH = "/chat/completions"

    def test_answer(self) -> None:
        body = answer(self.PATH, {"messages": MESSAGES}, "gpt-4o")
        assert body["id"].startswith("chatcmpl-mock-")
        assert body["object"] == "chat.completion"
        assert isinstance(body["created"], int)
        assert body["model"] == "gpt-4o"
        assert body["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ]
        usage = body["usage"]
        assert usage["completion_tokens"] == 7
        assert usage["prompt_tokens"] >= 1
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    def test_prompt_tokens_grow_with_the_prompt(self) -> None:
        short = answer(self.PATH, {"messages": MESSAGES})["usage"]["prompt_tokens"]
        long = answer(self.PATH, {"messages": [{"role": "user", "content": "x" * 4000}]})["usage"]["prompt_tokens"]
        assert long > short + 900

    @pytest.mark.parametrize(("fields", "count"), TOKEN_CASES)
    def test_token_count(self, fields: dict[str, Any], count: int) -> None:
        body = answer(self.PATH, {"messages": MESSAGES, **fields})
        assert body["choices"][0]["message"]["content"] == text_of(count)
        assert body["usage"]["completion_tokens"] == count

    @pytest.mark.parametrize(("fields", "count"), TOKEN_CASES[:6])
    def test_stream_token_count(self, fields: dict[str, Any], count: int) -> None:
        chunks = payloads(events(frames(self.PATH, {"messages": MESSAGES, **fields})))
        contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
        assert contents == [WORDS[i % len(WORDS)] for i in range(count)]

    def test_stream(self) -> None:
        raw = frames(self.PATH, {"messages": MESSAGES, "max_tokens": 3}, "gpt-4o")
        parsed = events(raw)
        assert [event.event for event in parsed] == ["message"] * len(parsed)
        assert raw[-1] == b"data: [DONE]\n\n"
        assert parsed[-1].data == "[DONE]"
        chunks = payloads(parsed)
        assert len(chunks) == 1 + 3 + 1
        assert {c["id"] for c in chunks} == {chunks[0]["id"]}
        assert chunks[0]["id"].startswith("chatcmpl-mock-")
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert {c["model"] for c in chunks} == {"gpt-4o"}
        assert len({c["created"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello from the"
        assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
        assert chunks[-1]["choices"][0]["delta"] == {}
        assert all("usage" not in c for c in chunks)

    def test_stream_include_usage(self) -> None:
        request = {"messages": MESSAGES, "max_tokens": 4, "stream_options": {"include_usage": True}}
        chunks = payloads(events(frames(self.PATH, request)))
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        usage_chunk = chunks[-1]
        assert usage_chunk["choices"] == []
        assert usage_chunk["id"] == chunks[0]["id"]
        usage = usage_chunk["usage"]
        assert usage["completion_tokens"] == 4
        assert usage["total_tokens"] == usage["prompt_tokens"] + 4
        assert usage == answer(self.PATH, {"messages": MESSAGES, "max_tokens": 4})["usage"]

    @pytest.mark.parametrize("options", [{"include_usage": False}, {}, None, "yes"])
    def test_stream_without_usage(self, options: object) -> None:
        chunks = payloads(events(frames(self.PATH, {"messages": MESSAGES, "stream_options": options})))
        assert all(c["choices"] for c in chunks)

    def test_deterministic(self) -> None:
        request = {"messages": MESSAGES, "max_tokens": 5}
        first, second = answer(self.PATH, request), answer(self.PATH, request)
        assert without_created(first) == without_created(second)
        assert first["id"] != answer(self.PATH, {"messages": MESSAGES, "max_tokens": 6})["id"]
        stream_a = payloads(events(frames(self.PATH, request)))
        stream_b = payloads(events(frames(self.PATH, request)))
        assert without_created(stream_a) == without_created(stream_b)

    def test_paced_stream(self) -> None:
        # A delay only spaces the frames out; the bytes are the same as without it.
        request = {"messages": MESSAGES, "max_tokens": 3}
        paced = frames(self.PATH, request, delay=0.001)
        assert without_created(payloads(events(paced))) == without_created(payloads(events(frames(self.PATH, request))))


class TestCompletions:
    PATH = "/completions"

    def test_answer(self) -> None:
        body = answer(self.PATH, {"prompt": "Say hello", "max_tokens": 2}, "gpt-3.5-turbo-instruct")
        assert body["id"].startswith("cmpl-mock-")
        assert body["object"] == "text_completion"
        assert body["model"] == "gpt-3.5-turbo-instruct"
        assert body["choices"] == [{"text": "Hello from", "index": 0, "logprobs": None, "finish_reason": "stop"}]
        assert body["usage"]["completion_tokens"] == 2
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 2

    def test_stream(self) -> None:
        raw = frames(self.PATH, {"prompt": "Say hello", "max_tokens": 9})
        assert raw[-1] == b"data: [DONE]\n\n"
        chunks = payloads(events(raw))
        assert len(chunks) == 9 + 1
        assert "".join(c["choices"][0]["text"] for c in chunks) == text_of(9)
        assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 9 + ["stop"]
        assert {c["object"] for c in chunks} == {"text_completion"}

    def test_deterministic(self) -> None:
        request = {"prompt": "Say hello"}
        assert without_created(answer(self.PATH, request)) == without_created(answer(self.PATH, request))


class TestEmbeddings:
    PATH = "/embeddings"

    def vectors(self, request: dict[str, Any]) -> list[list[float]]:
        body = answer(self.PATH, request, "text-embedding-3-small")
        assert body["object"] == "list"
        assert body["model"] == "text-embedding-3-small"
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] >= 1
        assert [item["index"] for item in body["data"]] == list(range(len(body["data"])))
        assert {item["object"] for item in body["data"]} == {"embedding"}
        return [item["embedding"] for item in body["data"]]

    def test_one_string(self) -> None:
        [vector] = self.vectors({"input": "hello"})
        assert len(vector) == 8
        assert all(-1.0 <= x <= 1.0 for x in vector)

    def test_list_of_strings(self) -> None:
        vectors = self.vectors({"input": ["a", "b", "a"]})
        assert len(vectors) == 3
        assert vectors[0] == vectors[2] != vectors[1]

    def test_token_array_is_one_input(self) -> None:
        assert len(self.vectors({"input": [15339, 1917]})) == 1

    @pytest.mark.parametrize(("dimensions", "length"), [(16, 16), (1, 1), (0, 1), (10**6, 4096), ("16", 8)])
    def test_dimensions(self, dimensions: object, length: int) -> None:
        [vector] = self.vectors({"input": "hello", "dimensions": dimensions})
        assert len(vector) == length

    def test_deterministic(self) -> None:
        assert self.vectors({"input": "hello"}) == self.vectors({"input": "hello"})
        assert self.vectors({"input": "hello"}) != self.vectors({"input": "hellO"})


class TestImages:
    PATH = "/images/generations"

    def test_one_png(self) -> None:
        body = answer(self.PATH, {"prompt": "a red square"})
        assert isinstance(body["created"], int)
        [image] = body["data"]
        assert image["revised_prompt"] == "a red square"
        png = base64.b64decode(image["b64_json"], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert png.endswith(b"IEND\xaeB`\x82")

    @pytest.mark.parametrize(("n", "count"), [(3, 3), (10, 10), (50, 10), (0, 1), ("2", 1)])
    def test_count(self, n: object, count: int) -> None:
        assert len(answer(self.PATH, {"prompt": "x", "n": n})["data"]) == count


class TestMessages:
    PATH = "/v1/messages"

    def test_answer(self) -> None:
        body = answer(self.PATH, {"messages": MESSAGES, "max_tokens": 4}, "claude-sonnet-4-5")
        assert body["id"].startswith("msg_mock_")
        assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "claude-sonnet-4-5")
        assert body["content"] == [{"type": "text", "text": text_of(4)}]
        assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
        assert body["usage"]["output_tokens"] == 4
        assert body["usage"]["input_tokens"] >= 1

    @pytest.mark.parametrize(("fields", "count"), TOKEN_CASES[:6])
    def test_token_count(self, fields: dict[str, Any], count: int) -> None:
        body = answer(self.PATH, {"messages": MESSAGES, **fields})
        assert body["content"][0]["text"] == text_of(count)
        assert body["usage"]["output_tokens"] == count

    @pytest.mark.parametrize("count", [1, 3, 7, 20])
    def test_stream_event_order(self, count: int) -> None:
        parsed = events(frames(self.PATH, {"messages": MESSAGES, "max_tokens": count}, "claude-sonnet-4-5"))
        names = [event.event for event in parsed]
        assert names == [
            "message_start",
            "content_block_start",
            "ping",
            *["content_block_delta"] * count,
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        data = payloads(parsed)
        # Every event's name equals the `type` of its data (https://docs.anthropic.com/en/api/messages-streaming).
        assert [d["type"] for d in data] == names
        message = data[0]["message"]
        assert message["id"].startswith("msg_mock_")
        assert (message["model"], message["content"], message["stop_reason"]) == ("claude-sonnet-4-5", [], None)
        assert data[1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        deltas = data[3 : 3 + count]
        assert {d["index"] for d in deltas} == {0}
        assert {d["delta"]["type"] for d in deltas} == {"text_delta"}
        assert "".join(d["delta"]["text"] for d in deltas) == text_of(count)
        assert data[-3] == {"type": "content_block_stop", "index": 0}
        assert data[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
        assert data[-2]["usage"] == {"output_tokens": count}
        assert data[-1] == {"type": "message_stop"}

    def test_stream_has_no_done_marker(self) -> None:
        raw = frames(self.PATH, {"messages": MESSAGES})
        assert raw[-1] == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        assert all(b"[DONE]" not in frame for frame in raw)

    def test_stream_matches_non_stream(self) -> None:
        request = {"messages": MESSAGES, "max_tokens": 5}
        whole = answer(self.PATH, request)
        data = payloads(events(frames(self.PATH, request)))
        assert (
            "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
            == whole["content"][0]["text"]
        )
        assert data[0]["message"]["usage"]["input_tokens"] == whole["usage"]["input_tokens"]

    def test_deterministic(self) -> None:
        request = {"messages": MESSAGES}
        assert answer(self.PATH, request) == answer(self.PATH, request)
        assert frames(self.PATH, request) == frames(self.PATH, request)


class TestCountTokens:
    PATH = "/v1/messages/count_tokens"

    def test_answer(self) -> None:
        body = answer(self.PATH, {"model": "claude-sonnet-4-5", "messages": MESSAGES})
        assert list(body) == ["input_tokens"]
        assert body["input_tokens"] >= 1
        assert body == answer(self.PATH, {"model": "claude-sonnet-4-5", "messages": MESSAGES})

    def test_matches_messages_usage(self) -> None:
        counted = answer(self.PATH, {"messages": MESSAGES})["input_tokens"]
        assert counted == answer("/v1/messages", {"messages": MESSAGES})["usage"]["input_tokens"]

    def test_grows_with_the_prompt(self) -> None:
        small = answer(self.PATH, {"messages": MESSAGES})["input_tokens"]
        large = answer(self.PATH, {"messages": [{"role": "user", "content": "word " * 1000}]})["input_tokens"]
        assert large > small


class TestErrors:
    @pytest.mark.parametrize(
        "path", ["/v1/chat/completions", "/v1/responses", "/responses/resp_1", "/models", "", "/v1/messages/batches"]
    )
    def test_unknown_path_is_404(self, path: str) -> None:
        with pytest.raises(GatewayError) as info:
            mock.respond(path, b'{"model": "mock"}', "mock", 0.0)
        assert info.value.status == 404
        assert f"no endpoint {path}" in info.value.message

    @pytest.mark.parametrize("body", [b"", b"{", b"not json", b"[]", b'"text"', b"null"])
    def test_bad_json_is_400(self, body: bytes) -> None:
        with pytest.raises(GatewayError) as info:
            mock.respond("/chat/completions", body, "mock", 0.0)
        assert info.value.status == 400
        assert info.value.message.startswith("request body is not a JSON object")

    def test_bad_json_is_400_before_the_path_check(self) -> None:
        with pytest.raises(GatewayError) as info:
            mock.respond("/nowhere", b"{", "mock", 0.0)
        assert info.value.status == 400

    def test_invalid_utf8_is_400(self) -> None:
        # read_envelope only decodes the top level, so bad bytes inside `messages` do reach the mock.
        body = b'{"model": "mock", "messages": [{"role": "user", "content": "\xff"}]}'
        with pytest.raises(GatewayError) as info:
            mock.respond("/chat/completions", body, "mock", 0.0)
        assert info.value.status == 400


class TestRequestModel:
    @pytest.mark.parametrize(
        ("body", "model"),
        [
            (b'{"model": "gpt-4o"}', "gpt-4o"),
            (b'{"messages": []}', "mock"),
            (b'{"model": 3}', "mock"),
            (b"{", "mock"),
            (b"[]", "mock"),
            (memoryview(b'{"model": "claude-x"}'), "claude-x"),
        ],
    )
    def test_request_model(self, body: bytes | memoryview, model: str) -> None:
        assert mock.request_model(body) == model


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
ASK = {"role": "user", "content": "Weather in Paris?"}


def test_chat_with_tools_calls_the_first_tool_with_arguments_valid_for_its_parameters() -> None:
    body = answer("/chat/completions", {"messages": [ASK], "tools": [WEATHER_TOOL]})
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    # Every required parameter is there (strings "mock"), so the client's tool can run on them.
    assert json.loads(call["function"]["arguments"]) == {"city": "mock", "days": 0}


@pytest.mark.parametrize(
    "request_fields",
    [
        {"messages": [ASK, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}], "tools": [WEATHER_TOOL]},
        {"messages": [ASK], "tools": [WEATHER_TOOL], "tool_choice": "none"},
        {"messages": [ASK], "tools": []},
        {"messages": [ASK], "tools": [{"type": "function"}]},
    ],
    ids=["after-tool-result", "tool-choice-none", "no-tools", "nameless-tool"],
)
def test_chat_answers_in_text_when_no_tool_call_is_due(request_fields: dict[str, Any]) -> None:
    choice = answer("/chat/completions", request_fields)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert choice["message"]["content"] == text_of(mock.DEFAULT_TOKENS)
