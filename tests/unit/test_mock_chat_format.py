"""The mock's chat answers to response_format and tool_choice, validated with the openai SDK's models."""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic
import pytest
from openai.types.chat import ChatCompletion

from mini_llm.errors import GatewayError
from mini_llm.upstream import mock_provider as mock
from tests.unit.test_mock import MESSAGES, TEXT, WEATHER_TOOL, answer, encode, events, frames, payloads

PATH = "/chat/completions"


class Step(pydantic.BaseModel):
    explanation: str
    output: int


class Reasoning(pydantic.BaseModel):
    steps: list[Step] = pydantic.Field(min_length=1)
    verdict: Literal["yes", "no"]
    final: Step | None


def json_schema(model: type[pydantic.BaseModel], strict: bool = True) -> dict[str, Any]:
    spec = {"name": model.__name__, "schema": model.model_json_schema(), "strict": strict}
    return {"type": "json_schema", "json_schema": spec}


def content(request: dict[str, Any]) -> str:
    reply = ChatCompletion.model_validate(answer(PATH, {"messages": MESSAGES, **request}))
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content is not None
    return choice.message.content


@pytest.mark.parametrize("strict", [True, False])
def test_json_schema_answers_a_valid_instance(strict: bool) -> None:
    parsed = Reasoning.model_validate_json(content({"response_format": json_schema(Reasoning, strict)}))
    assert parsed.steps == [Step(explanation="", output=0)]
    assert parsed.verdict == "yes"
    assert parsed.final is None


def test_token_limits_never_cut_a_json_answer() -> None:
    answer_text = content({"response_format": json_schema(Reasoning), "max_tokens": 1})
    Reasoning.model_validate_json(answer_text)


def test_json_schema_streams_in_pieces() -> None:
    request = {
        "messages": MESSAGES,
        "response_format": json_schema(Reasoning),
        "stream_options": {"include_usage": True},
    }
    chunks = payloads(events(frames(PATH, request)))
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]]
    assert len(pieces) > 1
    assert "".join(pieces) == content({"response_format": json_schema(Reasoning)})
    assert chunks[-1]["usage"]["completion_tokens"] == len(pieces)


def test_json_object_answers_an_empty_object() -> None:
    assert content({"response_format": {"type": "json_object"}}) == "{}"


@pytest.mark.parametrize("response_format", [{"type": "text"}, "json", None], ids=["text", "a-string", "null"])
def test_other_formats_answer_text(response_format: object) -> None:
    assert content({"response_format": response_format}) == TEXT


def test_a_due_tool_call_comes_before_the_format() -> None:
    body = answer(PATH, {"messages": MESSAGES, "tools": [WEATHER_TOOL], "response_format": json_schema(Reasoning)})
    assert body["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}, "deeper than"),
        ({"type": "array", "minItems": 10**9}, "larger than"),
        ({"$ref": "#/$defs/Gone"}, "points to nothing"),
    ],
    ids=["endless-ref", "huge", "dangling-ref"],
)
def test_an_unsatisfiable_schema_is_a_400(schema: dict[str, Any], fragment: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with pytest.raises(GatewayError) as info:
        mock.respond(PATH, encode({"messages": MESSAGES, "response_format": fmt}), "mock", 0.0)
    assert (info.value.status, info.value.param) == (400, "response_format.json_schema.schema")
    assert fragment in info.value.message


def test_tool_choice_names_the_function() -> None:
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    choice = {"type": "function", "function": {"name": "get_time"}}
    body = answer(PATH, {"messages": MESSAGES, "tools": [WEATHER_TOOL, clock], "tool_choice": choice})
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == ("get_time", {})


@pytest.mark.parametrize(("strict", "arguments"), [(True, {"city": "mock", "note": "mock"}), (False, {"city": "mock"})])
def test_strict_tools_get_every_parameter(strict: bool, arguments: dict[str, str]) -> None:
    properties = {"city": {"type": "string"}, "note": {"type": "string"}}
    function = {
        "name": "f",
        "strict": strict,
        "parameters": {"type": "object", "properties": properties, "required": ["city"]},
    }
    body = answer(PATH, {"messages": MESSAGES, "tools": [{"type": "function", "function": function}]})
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == arguments
