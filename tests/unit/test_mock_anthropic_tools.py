"""The mock's Anthropic tool use: a tool_use block, whole and streamed, validated with the anthropic SDK's models."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent, ToolUseBlock

from mini_llm.errors import GatewayError
from mini_llm.upstream import mock_provider as mock
from tests.unit.test_mock import TEXT, answer, encode, events, frames, payloads

PATH = "/v1/messages"
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1},
            "detail": {"type": "boolean"},
        },
        "required": ["city", "unit", "days"],
    },
}
CLOCK = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
ASK = {"role": "user", "content": "Weather in Paris?"}
INPUT = {"city": "mock", "unit": "celsius", "days": 1}


def message(request: dict[str, Any]) -> Message:
    # max_tokens as the default answer's length: a text answer is then TEXT.
    body = answer(PATH, {"max_tokens": mock.DEFAULT_TOKENS, **request}, "claude-sonnet-4-5")
    return Message.model_validate(body)


def tool_use(request: dict[str, Any]) -> ToolUseBlock:
    reply = message(request)
    assert reply.stop_reason == "tool_use"
    [block] = reply.content
    assert isinstance(block, ToolUseBlock)
    return block


def test_a_tools_request_gets_a_tool_use_block() -> None:
    reply = message({"messages": [ASK], "tools": [WEATHER]})
    assert (reply.stop_reason, reply.stop_sequence) == ("tool_use", None)
    [block] = reply.content
    assert isinstance(block, ToolUseBlock)
    assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    # The smallest valid input: required properties only, free strings "mock".
    assert block.input == INPUT
    assert reply.usage.output_tokens >= 1


@pytest.mark.parametrize(
    "choice",
    [{"type": "tool", "name": "get_time"}, {"type": "any"}, {"type": "auto"}],
    ids=["named", "any", "auto"],
)
def test_tool_choice(choice: dict[str, str]) -> None:
    block = tool_use({"messages": [ASK], "tools": [WEATHER, CLOCK], "tool_choice": choice})
    assert block.name == ("get_time" if choice["type"] == "tool" else "get_weather")
    assert block.input == ({} if choice["type"] == "tool" else INPUT)


def test_server_tools_are_skipped_for_the_first_client_tool() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    assert tool_use({"messages": [ASK], "tools": [web, CLOCK]}).name == "get_time"


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER], "tool_choice": {"type": "none"}},
        {"tools": []},
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "absent"}},
        {
            "tools": [WEATHER],
            "messages": [
                ASK,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": INPUT}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
            ],
        },
    ],
    ids=["tool-choice-none", "no-tools", "server-tool-only", "unknown-named-tool", "after-tool-result"],
)
def test_text_when_no_tool_use_is_due(fields: dict[str, Any]) -> None:
    reply = message({"messages": [ASK], **fields})
    assert reply.stop_reason == "end_turn"
    assert [block.type for block in reply.content] == ["text"]
    assert reply.content[0].text == TEXT  # type: ignore[union-attr]


def test_a_user_text_turn_after_a_tool_result_calls_again() -> None:
    turns = [
        ASK,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": INPUT}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]
    assert tool_use({"messages": turns, "tools": [WEATHER]}).name == "get_weather"


def test_stream() -> None:
    parsed = events(frames(PATH, {"max_tokens": 100, "messages": [ASK], "tools": [WEATHER]}, "claude-sonnet-4-5"))
    data = payloads(parsed)
    assert [event.event for event in parsed] == [d["type"] for d in data]
    count = len(data) - 6
    assert [d["type"] for d in data] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * count,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert count > 1
    # ping is in the documented stream but not in the SDK's union of events.
    got = [EVENTS.validate_python(d) for d in data if d["type"] != "ping"]
    block = got[1].content_block
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {})
    assert block.id.startswith("toolu_")
    assert {e.delta.type for e in got[2 : 2 + count]} == {"input_json_delta"}
    assert json.loads("".join(e.delta.partial_json for e in got[2 : 2 + count])) == INPUT
    assert got[-2].delta.stop_reason == "tool_use"
    assert got[-2].usage.output_tokens == count


def test_a_hostile_input_schema_is_a_400() -> None:
    tool = {"name": "deep", "input_schema": {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}}
    with pytest.raises(GatewayError) as info:
        mock.respond(PATH, encode({"messages": [ASK], "tools": [tool]}), "mock", 0.0)
    assert info.value.status == 400
    assert "tools.input_schema" in info.value.message
