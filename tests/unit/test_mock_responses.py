"""The mock's Responses API: objects and events validated against the openai SDK's own models."""

from __future__ import annotations

import json
import time
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from mini_llm.errors import GatewayError
from mini_llm.upstream import mock_provider as mock
from tests.unit.test_mock import TEXT, answer, encode, events, frames, payloads, text_of

PATH = "/responses"
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}


def untimed(value: Any) -> Any:
    """The mock stamps `created_at` and `completed_at` with the clock; the rest is a function of the request."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in ("created_at", "completed_at")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def response(request: dict[str, Any], model: str = "mock") -> Response:
    return Response.model_validate(answer(PATH, request, model))


def stream(request: dict[str, Any], model: str = "mock") -> list[Any]:
    """The stream's events, each validated as the SDK's event model (named line == `type`)."""
    parsed = events(frames(PATH, request, model))
    data = payloads(parsed)
    assert [event.event for event in parsed] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    return [EVENTS.validate_python(d) for d in data]


class TestText:
    def test_answer(self) -> None:
        body = answer(PATH, {"input": "Say hello"}, "gpt-4.1")
        assert body["id"].startswith("resp_")
        assert (body["object"], body["status"], body["model"]) == ("response", "completed", "gpt-4.1")
        assert abs(body["created_at"] - time.time()) < 60
        parsed = Response.model_validate(body)
        assert parsed.output_text == TEXT
        [item] = parsed.output
        assert item.type == "message"
        assert item.id.startswith("msg_")
        assert (item.role, item.status) == ("assistant", "completed")
        usage = parsed.usage
        assert usage is not None
        assert usage.output_tokens == 7
        assert usage.input_tokens >= 1
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
        assert usage.input_tokens_details.cached_tokens == 0
        assert usage.output_tokens_details.reasoning_tokens == 0

    @pytest.mark.parametrize(("limit", "count"), [(3, 3), (10, 10), (0, 1), (10**9, 4096)])
    def test_max_output_tokens(self, limit: int, count: int) -> None:
        parsed = response({"input": "x", "max_output_tokens": limit})
        assert parsed.output_text == text_of(count)
        assert parsed.max_output_tokens == limit

    def test_echoes_the_request_settings(self) -> None:
        request = {"input": "x", "instructions": "Be brief.", "metadata": {"k": "v"}, "parallel_tool_calls": False}
        parsed = response(request)
        assert (parsed.instructions, parsed.metadata, parsed.parallel_tool_calls) == ("Be brief.", {"k": "v"}, False)
        assert (parsed.tools, parsed.tool_choice) == ([], "auto")
        assert answer(PATH, request)["store"] is False  # the mock keeps nothing to fetch by id

    def test_message_list_input(self) -> None:
        request = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
        assert response(request).output_text == TEXT

    def test_stream_event_order(self) -> None:
        got = stream({"input": "Say hello", "max_output_tokens": 3}, "gpt-4.1")
        assert [e.type for e in got] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            *["response.output_text.delta"] * 3,
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        created, completed = got[0].response, got[-1].response
        assert created.id == completed.id
        assert created.id.startswith("resp_")
        assert (created.status, created.output, created.usage) == ("in_progress", [], None)
        assert completed.status == "completed"
        assert completed.output_text == "Hello from the"
        item_id = got[2].item.id
        assert got[2].item.status == "in_progress"
        assert got[2].item.content == []
        assert {e.item_id for e in got[3:-2]} == {item_id}
        assert [e.delta for e in got[4:7]] == ["Hello", " from", " the"]
        assert got[7].text == got[8].part.text == "Hello from the"
        assert got[9].item == completed.output[0]
        assert completed.usage is not None
        assert completed.usage.output_tokens == 3

    def test_stream_matches_non_stream(self) -> None:
        request = {"input": "Say hello", "max_output_tokens": 5}
        whole = answer(PATH, request)
        final = payloads(events(frames(PATH, request)))[-1]["response"]
        # The ids hash the request, `stream` included, as the chat mock's do.
        final["output"][0]["id"] = whole["output"][0]["id"]
        assert untimed({**final, "id": whole["id"]}) == untimed(whole)

    def test_paced_stream_has_the_same_frames(self) -> None:
        request = {"input": "x", "max_output_tokens": 2}
        paced = payloads(events(frames(PATH, request, delay=0.001)))
        assert untimed(paced) == untimed(payloads(events(frames(PATH, request))))

    def test_deterministic(self) -> None:
        request = {"input": "Say hello"}
        assert untimed(answer(PATH, request)) == untimed(answer(PATH, request))
        assert answer(PATH, request)["id"] != answer(PATH, {"input": "Say hellO"})["id"]


class TestFunctionCalls:
    def test_a_function_tool_is_called(self) -> None:
        parsed = response({"input": "Weather in Paris?", "tools": [WEATHER]})
        [call] = parsed.output
        assert call.type == "function_call"
        assert call.name == "get_weather"
        assert call.call_id.startswith("call_")
        assert call.id is not None
        assert call.id.startswith("fc_")
        # strict is the API's default: every parameter is set, free strings "mock".
        assert json.loads(call.arguments) == {"city": "mock", "days": 0}
        assert parsed.output_text == ""

    def test_not_strict_sets_only_required_parameters(self) -> None:
        [call] = response({"input": "x", "tools": [{**WEATHER, "strict": False}]}).output
        assert call.type == "function_call"
        assert json.loads(call.arguments) == {"city": "mock"}

    def test_tool_choice_names_the_tool(self) -> None:
        other = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
        request = {"input": "x", "tools": [WEATHER, other], "tool_choice": {"type": "function", "name": "get_time"}}
        [call] = response(request).output
        assert call.type == "function_call"
        assert (call.name, call.arguments) == ("get_time", "{}")

    @pytest.mark.parametrize(
        "fields",
        [
            {"tool_choice": "none", "tools": [WEATHER]},
            {"tools": [{"type": "web_search"}]},
            {"tools": [{"type": "function"}]},
            {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "absent"}},
        ],
        ids=["tool-choice-none", "no-function-tool", "nameless-function", "unknown-named-tool"],
    )
    def test_text_when_no_call_is_due(self, fields: dict[str, Any]) -> None:
        # Raw, as a nameless function tool is no valid Tool for the SDK's model.
        [item] = answer(PATH, {"input": "x", **fields})["output"]
        assert item["type"] == "message"
        assert item["content"][0]["text"] == TEXT

    def test_the_function_call_output_is_answered_with_text(self) -> None:
        [call] = answer(PATH, {"input": "Weather in Paris?", "tools": [WEATHER]})["output"]
        turn = [
            {"role": "user", "content": "Weather in Paris?"},
            call,
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        ]
        parsed = response({"input": turn, "tools": [WEATHER]})
        assert parsed.output_text == TEXT

    def test_stream(self) -> None:
        got = stream({"input": "Weather in Paris?", "tools": [WEATHER]})
        kinds = [e.type for e in got]
        deltas = kinds.count("response.function_call_arguments.delta")
        assert kinds == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            *["response.function_call_arguments.delta"] * deltas,
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert deltas > 1
        added, done, completed = got[2].item, got[-2].item, got[-1].response
        assert (added.status, added.arguments, added.name) == ("in_progress", "", "get_weather")
        arguments = "".join(e.delta for e in got[3 : 3 + deltas])
        assert arguments == got[3 + deltas].arguments == done.arguments
        assert json.loads(arguments) == {"city": "mock", "days": 0}
        assert completed.output == [done]
        assert completed.usage is not None
        assert completed.usage.output_tokens == deltas

    def test_a_hostile_parameters_schema_is_a_400(self) -> None:
        tool = {**WEATHER, "parameters": {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}}
        with pytest.raises(GatewayError) as info:
            mock.respond(PATH, encode({"input": "x", "tools": [tool]}), "mock", 0.0)
        assert (info.value.status, info.value.param) == (400, "tools.parameters")


class TestTextFormat:
    def test_json_schema(self) -> None:
        fmt = {"type": "json_schema", "name": "weather", "schema": ANSWER_SCHEMA, "strict": True}
        parsed = response({"input": "x", "text": {"format": fmt}})
        assert json.loads(parsed.output_text) == {"city": "", "temperature": 0}
        assert parsed.text is not None
        assert parsed.text.format is not None
        assert parsed.text.format.type == "json_schema"

    def test_json_schema_streams_in_pieces(self) -> None:
        fmt = {"type": "json_schema", "name": "weather", "schema": ANSWER_SCHEMA}
        got = stream({"input": "x", "text": {"format": fmt}})
        deltas = [e.delta for e in got if e.type == "response.output_text.delta"]
        assert len(deltas) > 1
        assert json.loads("".join(deltas)) == {"city": "", "temperature": 0}
        assert got[-1].response.usage.output_tokens == len(deltas)

    def test_json_object(self) -> None:
        assert response({"input": "x", "text": {"format": {"type": "json_object"}}}).output_text == "{}"

    def test_a_bad_schema_is_a_400(self) -> None:
        fmt = {"type": "json_schema", "name": "w", "schema": {"type": "array", "minItems": 10**9}}
        with pytest.raises(GatewayError) as info:
            mock.respond(PATH, encode({"input": "x", "text": {"format": fmt}}), "mock", 0.0)
        assert (info.value.status, info.value.param) == (400, "text.format.schema")


class TestInputTokens:
    PATH = "/responses/input_tokens"

    def test_answer(self) -> None:
        body = answer(self.PATH, {"model": "gpt-4.1", "input": "Say hello"})
        assert body == {"object": "response.input_tokens", "input_tokens": body["input_tokens"]}
        assert body["input_tokens"] >= 1

    def test_matches_the_response_usage(self) -> None:
        request = {"input": [{"role": "user", "content": "word " * 200}]}
        counted = answer(self.PATH, request)["input_tokens"]
        assert counted == answer(PATH, request)["usage"]["input_tokens"]
        assert counted > answer(self.PATH, {"input": "hi"})["input_tokens"]
