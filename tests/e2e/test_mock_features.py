"""The built-in mock behind a real gateway (the embedded default, no providers), driven by the official SDKs
over real TCP: the Responses API, Anthropic tool use and structured outputs work as against a provider.
The same answers come from `mini-llm mock-upstream` as the gateway's openai and anthropic providers."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pydantic
import pytest
from anthropic.types import ToolUseBlock

from mini_llm.sdk import MockUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

TEXT = "Hello from the mini-llm mock provider."
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
JSON = {"Content-Type": "application/json"}


class Kind(enum.Enum):
    HOME = "home"
    WORK = "work"


class Address(pydantic.BaseModel):
    street: str
    kind: Kind
    floor: int | None


class Contact(pydantic.BaseModel):
    name: str
    age: int
    addresses: list[Address]
    primary: Address
    tags: list[str]
    verified: bool


@pytest.fixture(scope="module")
def mock_gateway() -> Iterator[GatewayProcess]:
    """`mini-llm serve` with nothing configured: the built-in mock answers model "mock"."""
    process = GatewayProcess({}).start()
    yield process
    process.stop()


@pytest.fixture
def client(mock_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=mock_gateway.url + "/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def claude(mock_gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock_gateway.url, api_key="x", max_retries=0) as sdk:
        yield sdk


class TestResponses:
    def test_create(self, client: openai.OpenAI) -> None:
        answer = client.responses.create(model="mock", input="Say hello")
        assert answer.id.startswith("resp_")
        assert (answer.object, answer.status, answer.model) == ("response", "completed", "mock")
        assert answer.output_text == TEXT
        assert answer.usage is not None
        assert answer.usage.output_tokens == 7
        assert answer.usage.total_tokens == answer.usage.input_tokens + 7

    def test_create_stream(self, client: openai.OpenAI) -> None:
        got = list(client.responses.create(model="mock", input="Say hello", max_output_tokens=4, stream=True))
        assert [e.sequence_number for e in got] == list(range(len(got)))
        assert got[0].type == "response.created"
        assert got[-1].type == "response.completed"
        deltas = [e.delta for e in got if e.type == "response.output_text.delta"]
        assert deltas == ["Hello", " from", " the", " mini-llm"]
        assert got[-1].response.output_text == "".join(deltas)

    def test_stream_helper(self, client: openai.OpenAI) -> None:
        with client.responses.stream(model="mock", input="Say hello") as stream:
            deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == final.output_text == TEXT
        assert final.usage is not None
        assert final.usage.output_tokens == len(deltas)

    def test_input_tokens(self, client: openai.OpenAI) -> None:
        counted = client.responses.input_tokens.count(model="mock", input="word " * 100)
        assert counted.object == "response.input_tokens"
        answer = client.responses.create(model="mock", input="word " * 100)
        assert answer.usage is not None
        assert counted.input_tokens == answer.usage.input_tokens

    def test_function_call_round_trip(self, client: openai.OpenAI) -> None:
        tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMETERS, "strict": True}]
        first = client.responses.create(model="mock", input="Weather in Paris?", tools=tools)
        [call] = first.output
        assert call.type == "function_call"
        assert call.name == "get_weather"
        arguments = json.loads(call.arguments)
        assert arguments == {"city": "mock", "days": 1}
        turn: Any = [
            {"role": "user", "content": "Weather in Paris?"},
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": f"sunny in {arguments['city']}"},
        ]
        second = client.responses.create(model="mock", input=turn, tools=tools)
        assert second.output_text == TEXT

    def test_function_call_stream(self, client: openai.OpenAI) -> None:
        tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMETERS, "strict": True}]
        with client.responses.stream(model="mock", input="Weather?", tools=tools) as stream:
            deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
            final = stream.get_final_response()
        [call] = final.output
        assert call.type == "function_call"
        assert "".join(deltas) == call.arguments
        assert json.loads(call.arguments) == {"city": "mock", "days": 1}

    def test_parse_a_pydantic_model(self, client: openai.OpenAI) -> None:
        answer = client.responses.parse(model="mock", input="A contact, please", text_format=Contact)
        contact = answer.output_parsed
        assert isinstance(contact, Contact)
        assert contact.primary.kind is Kind.HOME
        assert (contact.addresses, contact.primary.floor) == ([], None)

    def test_stream_a_pydantic_model(self, client: openai.OpenAI) -> None:
        with client.responses.stream(model="mock", input="A contact, please", text_format=Contact) as stream:
            for _ in stream:
                pass
            final = stream.get_final_response()
        assert isinstance(final.output_parsed, Contact)


class TestStructuredChat:
    def test_parse_a_pydantic_model(self, client: openai.OpenAI) -> None:
        completion = client.chat.completions.parse(
            model="mock", messages=[{"role": "user", "content": "A contact, please"}], response_format=Contact
        )
        contact = completion.choices[0].message.parsed
        assert isinstance(contact, Contact)
        assert contact == Contact(
            name="",
            age=0,
            addresses=[],
            primary=Address(street="", kind=Kind.HOME, floor=None),
            tags=[],
            verified=False,
        )

    def test_beta_parse(self, client: openai.OpenAI) -> None:
        completion = client.beta.chat.completions.parse(
            model="mock", messages=[{"role": "user", "content": "An address"}], response_format=Address
        )
        assert completion.choices[0].message.parsed == Address(street="", kind=Kind.HOME, floor=None)

    def test_json_object(self, client: openai.OpenAI) -> None:
        completion = client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "{}"}], response_format={"type": "json_object"}
        )
        assert completion.choices[0].message.content == "{}"

    def test_an_unsatisfiable_schema_is_a_400_in_openai_shape(self, mock_gateway: GatewayProcess) -> None:
        schema = {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}
        body = {
            "model": "mock",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "loop", "schema": schema}},
        }
        answer = request(mock_gateway.url, "POST", "/v1/chat/completions", json.dumps(body).encode(), JSON)
        assert answer.status == 400
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "response_format.json_schema.schema"
        assert "deeper than" in error["message"]
        # The gateway is still up and answering.
        assert request(mock_gateway.url, "GET", "/health").status == 200


WEATHER_TOOL: Any = {"name": "get_weather", "description": "The weather", "input_schema": WEATHER_PARAMETERS}


class TestAnthropicToolUse:
    def test_round_trip(self, claude: anthropic.Anthropic) -> None:
        ask: Any = {"role": "user", "content": "Weather in Paris?"}
        first = claude.messages.create(model="mock", max_tokens=7, messages=[ask], tools=[WEATHER_TOOL])
        assert first.stop_reason == "tool_use"
        [block] = first.content
        assert isinstance(block, ToolUseBlock)
        assert block.id.startswith("toolu_")
        assert (block.name, block.input) == ("get_weather", {"city": "mock", "days": 1})
        result: Any = {"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}
        turns: Any = [ask, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
        second = claude.messages.create(model="mock", max_tokens=7, messages=turns, tools=[WEATHER_TOOL])
        assert second.stop_reason == "end_turn"
        assert [b.type for b in second.content] == ["text"]
        assert second.content[0].text == TEXT  # type: ignore[union-attr]

    def test_stream(self, claude: anthropic.Anthropic) -> None:
        ask: Any = {"role": "user", "content": "Weather in Paris?"}
        with claude.messages.stream(model="mock", max_tokens=7, messages=[ask], tools=[WEATHER_TOOL]) as stream:
            partial = [e.partial_json for e in stream if e.type == "input_json"]
            final = stream.get_final_message()
        assert final.stop_reason == "tool_use"
        [block] = final.content
        assert isinstance(block, ToolUseBlock)
        assert block.input == {"city": "mock", "days": 1}
        assert len(partial) > 1
        assert json.loads("".join(partial)) == block.input

    def test_a_bad_input_schema_is_a_400_in_anthropic_shape(self, mock_gateway: GatewayProcess) -> None:
        body = {
            "model": "mock",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "t", "input_schema": {"type": "array", "minItems": 10**9}}],
        }
        answer = request(mock_gateway.url, "POST", "/v1/messages", json.dumps(body).encode(), JSON)
        assert answer.status == 400
        assert answer.json()["type"] == "error"
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "tools.input_schema" in error["message"]


@pytest.fixture(scope="module")
def networked_gateway() -> Iterator[GatewayProcess]:
    """A gateway whose openai and anthropic providers are `mini-llm mock-upstream`, over HTTP."""
    with MockUpstream() as upstream:
        process = GatewayProcess(upstream.provider_env()).start()
        yield process
        process.stop()


class TestMockUpstreamServer:
    def test_responses(self, networked_gateway: GatewayProcess) -> None:
        with openai.OpenAI(base_url=networked_gateway.url + "/v1", api_key="x", max_retries=0) as sdk:
            with sdk.responses.stream(model="gpt-4o", input="Say hello", text_format=Address) as stream:
                for _ in stream:
                    pass
                final = stream.get_final_response()
            assert final.model == "gpt-4o"
            assert final.output_parsed == Address(street="", kind=Kind.HOME, floor=None)
            counted = sdk.responses.input_tokens.count(model="gpt-4o", input="Say hello")
            assert counted.input_tokens >= 1

    def test_anthropic_tool_use(self, networked_gateway: GatewayProcess) -> None:
        ask: Any = {"role": "user", "content": "Weather in Paris?"}
        sdk = anthropic.Anthropic(base_url=networked_gateway.url, api_key="x", max_retries=0)
        with sdk, sdk.messages.stream(model="claude-x", max_tokens=7, messages=[ask], tools=[WEATHER_TOOL]) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[0].input == {"city": "mock", "days": 1}  # type: ignore[union-attr]
