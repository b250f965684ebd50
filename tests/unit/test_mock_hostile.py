"""Whatever a client puts in the fields the mock reads, it answers or refuses with a 400: it never crashes."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_llm.errors import GatewayError
from mini_llm.upstream import mock_provider as mock
from mini_llm.upstream.mock_schema import minimal_instance

# The words the mock compares values with, so that generated requests reach every branch.
WORDS = st.sampled_from(
    ["function", "json_schema", "json_object", "tool", "none", "auto", "any", "user", "assistant",
     "function_call_output", "tool_result", "object", "array", "string", "integer", "number", "null", "#",
     "#/$defs/a", "#/properties/a", "date-time"]
)  # fmt: skip
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6) | WORDS


def objects(*keys: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of these keys (the ones the mock reads), each holding anything JSON."""
    return st.dictionaries(st.sampled_from(keys), ANY, max_size=len(keys))


SCHEMA_KEYS = (
    "type", "properties", "required", "items", "prefixItems", "minItems", "enum", "const", "anyOf", "oneOf",
    "allOf", "$ref", "$defs", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "format", "nullable", "additionalProperties", "a",
)  # fmt: skip
REQUEST_KEYS = (
    "type", "name", "function", "parameters", "input_schema", "strict", "json_schema", "schema", "format",
    "role", "content",
)  # fmt: skip
ANY: st.SearchStrategy[Any] = st.deferred(
    lambda: st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(SCHEMA_KEYS + REQUEST_KEYS), inner, max_size=4)
        ),
        max_leaves=25,
    )
)
SCHEMAS = st.deferred(lambda: objects(*SCHEMA_KEYS) | ANY)


def mostly(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The expected shape two times in three, anything JSON otherwise."""
    return st.one_of(shaped, shaped, ANY)


FIELDS = st.fixed_dictionaries(
    {
        "tools": mostly(st.lists(objects(*REQUEST_KEYS), max_size=3)),
        "tool_choice": mostly(objects("type", "name", "function")),
        "response_format": mostly(objects("type", "json_schema")),
        "text": mostly(objects("format")),
        "input": mostly(st.lists(objects("type", "role", "content"), max_size=3)),
        "messages": mostly(st.lists(objects("role", "content"), max_size=3)),
    },
    optional={"stream": st.booleans()},
)


@settings(max_examples=400, deadline=None)
@given(schema=SCHEMAS, every_property=st.booleans())
def test_any_schema_gives_a_value_or_a_400(schema: Any, every_property: bool) -> None:
    try:
        minimal_instance(schema, "p", text="mock", every_property=every_property)
    except GatewayError as exc:
        assert exc.status == 400


@pytest.mark.parametrize("path", ["/chat/completions", "/responses", "/v1/messages"])
@settings(max_examples=400, deadline=None)
@given(fields=FIELDS)
def test_any_request_gets_an_answer_or_a_400(path: str, fields: dict[str, Any]) -> None:
    try:
        reply = mock.respond(path, msgspec.json.encode(fields), "mock", 0.0)
    except GatewayError as exc:
        assert exc.status == 400
        return
    assert reply.status == 200
    if reply.stream is not None:
        stream = reply.stream

        async def drain() -> list[bytes]:
            return [frame async for frame in stream]

        assert asyncio.run(drain())
