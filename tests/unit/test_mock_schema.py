"""The mock's minimal JSON Schema instances: valid (pydantic validates them), small, and bounded on hostile input."""

from __future__ import annotations

import datetime
import decimal
import enum
import ipaddress
import uuid
from typing import Annotated, Any, Literal

import msgspec
import pydantic
import pytest

from mini_llm.errors import GatewayError
from mini_llm.upstream.mock_schema import MAX_DEPTH, json_answer, minimal_instance, tool_arguments


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Cat(pydantic.BaseModel):
    kind: Literal["cat"]
    lives: int = pydantic.Field(ge=1, le=9)


class Dog(pydantic.BaseModel):
    kind: Literal["dog"]
    name: str = pydantic.Field(min_length=3, max_length=10)


class Node(pydantic.BaseModel):
    """Recursive: a minimal instance must stop at the empty list and the null parent."""

    value: int
    children: list[Node]
    parent: Node | None = None


class Address(pydantic.BaseModel):
    street: str
    number: int = pydantic.Field(gt=0)
    unit: str | None = None


class Person(pydantic.BaseModel):
    name: str
    age: int
    height: float = pydantic.Field(gt=0.5, lt=1.0)
    score: int = pydantic.Field(ge=7, multiple_of=5)
    active: bool
    nickname: str | None
    address: Address
    previous: list[Address] = pydantic.Field(min_length=2)
    color: Color
    level: Level
    pet: Annotated[Cat | Dog, pydantic.Field(discriminator="kind")]
    either: int | str
    grade: Literal["a", "b"]
    born: datetime.date
    seen: datetime.datetime
    wake: datetime.time
    nap: datetime.timedelta
    id: uuid.UUID
    ip: ipaddress.IPv4Address
    url: pydantic.HttpUrl
    price: decimal.Decimal
    pair: tuple[int, str]
    scores: dict[str, int]
    tags: set[int]
    node: Node


MODELS = [Cat, Dog, Node, Address, Person]


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
@pytest.mark.parametrize("every_property", [False, True], ids=["required", "every-property"])
def test_pydantic_models_validate_the_minimal_instance(model: type[pydantic.BaseModel], every_property: bool) -> None:
    schema = model.model_json_schema()
    instance = minimal_instance(schema, "response_format", every_property=every_property)
    # Over the wire as JSON, the way a client's parse() reads it.
    model.model_validate_json(msgspec.json.encode(instance))


def test_only_required_properties_unless_every_property() -> None:
    schema = Address.model_json_schema()
    assert minimal_instance(schema, "p") == {"street": "", "number": 1}
    assert minimal_instance(schema, "p", every_property=True) == {"street": "", "number": 1, "unit": None}


def test_the_instance_is_minimal() -> None:
    person = minimal_instance(Person.model_json_schema(), "p")
    assert person["previous"] == [{"street": "", "number": 1}] * 2
    assert (person["color"], person["level"], person["grade"]) == ("red", 1, "a")
    assert person["pet"] == {"kind": "cat", "lives": 1}
    assert (person["height"], person["score"], person["either"], person["nickname"]) == (0.75, 10, 0, None)
    assert person["node"] == {"value": 0, "children": []}
    assert (person["pair"], person["scores"], person["tags"]) == ([0, ""], {}, [])


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        pytest.param({}, None, id="anything"),
        pytest.param(True, None, id="true"),
        pytest.param({"type": "string"}, "", id="string"),
        pytest.param({"type": "integer"}, 0, id="integer"),
        pytest.param({"type": "number"}, 0, id="number"),
        pytest.param({"type": "boolean"}, False, id="boolean"),
        pytest.param({"type": "null"}, None, id="null"),
        pytest.param({"type": "array"}, [], id="array"),
        pytest.param({"type": "object"}, {}, id="object"),
        pytest.param({"type": ["integer", "string"]}, 0, id="type-list-first"),
        pytest.param({"type": ["string", "null"]}, None, id="type-list-nullable"),
        pytest.param({"type": "string", "nullable": True}, None, id="openapi-nullable"),
        pytest.param({"const": {"a": [1]}}, {"a": [1]}, id="const"),
        pytest.param({"type": "string", "enum": ["x", "y"]}, "x", id="enum"),
        pytest.param({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 0, id="anyOf-first"),
        pytest.param({"oneOf": [{"type": "string"}, {"type": "null"}]}, None, id="oneOf-null-branch"),
        pytest.param({"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"a": 0}, id="implied-object"),
        pytest.param({"items": {"type": "integer"}, "minItems": 2}, [0, 0], id="implied-array"),
        pytest.param({"type": "string", "minLength": 3}, "xxx", id="minLength"),
        pytest.param({"type": "string", "format": "date-time", "maxLength": 4}, "1970", id="maxLength-cuts"),
        pytest.param({"type": "string", "format": "email"}, "mock@example.com", id="format-email"),
        pytest.param({"type": "string", "format": "no-such"}, "", id="format-unknown"),
        pytest.param({"type": "integer", "minimum": 3}, 3, id="minimum"),
        pytest.param({"type": "integer", "minimum": 2.5}, 3, id="minimum-fraction"),
        pytest.param({"type": "integer", "maximum": -2}, -2, id="maximum"),
        pytest.param({"type": "integer", "exclusiveMinimum": 0}, 1, id="exclusiveMinimum"),
        pytest.param({"type": "integer", "exclusiveMaximum": 0}, -1, id="exclusiveMaximum"),
        pytest.param({"type": "number", "exclusiveMinimum": 0, "maximum": 0.5}, 0.25, id="number-between"),
        pytest.param({"type": "number", "minimum": 1.5}, 1.5, id="number-minimum"),
        pytest.param({"type": "integer", "minimum": 4, "multipleOf": 3}, 6, id="multipleOf"),
        pytest.param({"type": "integer", "minimum": True}, 0, id="boolean-bound-ignored"),
        pytest.param(
            {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "minItems": 3},
            ["", False, None],
            id="prefixItems",
        ),
        pytest.param(
            {"type": "object", "required": ["a", "a"], "additionalProperties": {"type": "integer"}},
            {"a": 0},
            id="required-without-property",
        ),
        pytest.param({"$defs": {"X": {"type": "integer", "minimum": 5}}, "$ref": "#/$defs/X"}, 5, id="ref-defs"),
        pytest.param(
            {"definitions": {"X": {"type": "boolean"}}, "$ref": "#/definitions/X"}, False, id="ref-definitions"
        ),
        pytest.param({"$defs": {"a/b~c": {"const": 1}}, "$ref": "#/$defs/a~1b~0c"}, 1, id="ref-pointer-escapes"),
        pytest.param({"items": [{"const": 7}], "$ref": "#/items/0"}, 7, id="ref-into-list"),
        pytest.param(
            {
                "$defs": {"A": {"properties": {"a": {"type": "string"}}, "required": ["a"]}},
                "allOf": [{"$ref": "#/$defs/A"}, {"properties": {"b": {"type": "integer"}}, "required": ["b"]}, True],
            },
            {"a": "", "b": 0},
            id="allOf-merged",
        ),
    ],
)
def test_hand_written_schemas(schema: Any, instance: Any) -> None:
    assert minimal_instance(schema, "response_format") == instance


def test_free_strings_take_the_given_text_within_their_bounds() -> None:
    assert minimal_instance({"type": "string"}, "p", text="mock") == "mock"
    assert minimal_instance({"type": "string", "maxLength": 2}, "p", text="mock") == "mo"
    assert minimal_instance({"type": "string", "minLength": 6}, "p", text="mock") == "mockxx"
    assert minimal_instance({"type": "string", "format": "uuid"}, "p", text="mock") == str(uuid.UUID(int=0))


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def test_nesting_up_to_the_cap_is_fine() -> None:
    instance = minimal_instance(_nested(MAX_DEPTH), "p")
    for _ in range(MAX_DEPTH):
        instance = instance["a"]
    assert instance == 0


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        pytest.param(False, "no value satisfies", id="false"),
        pytest.param([1, 2], "no value satisfies", id="not-a-schema"),
        pytest.param({"type": "object", "properties": {"a": False}, "required": ["a"]}, "no value", id="false-prop"),
        pytest.param(
            {"type": "object", "required": ["a"], "additionalProperties": False}, "no value", id="closed-object"
        ),
        pytest.param({"allOf": [False]}, "allOf", id="allOf-false"),
        pytest.param({"type": "decimal"}, "unknown type 'decimal'", id="unknown-type"),
        pytest.param(_nested(MAX_DEPTH + 1), "deeper than", id="too-deep"),
        pytest.param({"properties": {"a": {"$ref": "#"}}, "required": ["a"]}, "deeper than", id="endless-ref"),
        pytest.param({"$ref": "https://example.com/schema.json"}, "no pointer", id="remote-ref"),
        pytest.param({"$defs": {"a": {"$anchor": "a"}}, "$ref": "#a"}, "no pointer", id="anchor-ref"),
        pytest.param({"$ref": "#/$defs/Missing"}, "points to nothing", id="dangling-ref"),
        pytest.param({"type": "array", "minItems": 10**9}, "larger than", id="huge-minItems"),
        pytest.param({"type": "string", "minLength": 10**9}, "larger than", id="huge-minLength"),
        pytest.param(
            {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}},
            "larger than",
            id="wide-nesting",
        ),
    ],
)
def test_unsatisfiable_or_hostile_schemas_are_a_400(schema: Any, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        minimal_instance(schema, "response_format.json_schema.schema")
    assert info.value.status == 400
    assert info.value.param == "response_format.json_schema.schema"
    assert info.value.message.startswith("the mock provider cannot build a value for response_format")
    assert fragment in info.value.message


def test_exponential_ref_fan_out_is_cut_by_the_size_budget() -> None:
    # Each level refers four times to the one below: 4**10 values if walked out, within the depth cap.
    level = {"type": "array", "minItems": 4}
    defs: dict[str, Any] = {f"L{i}": {**level, "items": {"$ref": f"#/$defs/L{i + 1}"}} for i in range(10)}
    defs["L10"] = {"type": "integer"}
    with pytest.raises(GatewayError) as info:
        minimal_instance({"$defs": defs, "$ref": "#/$defs/L0"}, "p")
    assert "larger than" in info.value.message


class TestJsonAnswer:
    def test_json_object_is_an_empty_object(self) -> None:
        assert json_answer("json_object", None, "response_format") == "{}"

    @pytest.mark.parametrize("kind", ["text", None, 3])
    def test_other_formats_are_free_text(self, kind: object) -> None:
        assert json_answer(kind, {"schema": {"type": "object"}}, "response_format") is None

    def test_json_schema_is_the_minimal_instance_as_json(self) -> None:
        spec = {"name": "a", "schema": Address.model_json_schema()}
        assert json_answer("json_schema", spec, "text.format") == '{"street":"","number":1}'

    def test_strict_sets_every_property(self) -> None:
        spec = {"name": "a", "strict": True, "schema": Address.model_json_schema()}
        assert json_answer("json_schema", spec, "text.format") == '{"street":"","number":1,"unit":null}'

    def test_the_error_names_the_schema(self) -> None:
        with pytest.raises(GatewayError) as info:
            json_answer("json_schema", {"schema": False}, "text.format")
        assert info.value.param == "text.format.schema"


class TestToolArguments:
    def test_strings_are_mock(self) -> None:
        schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        assert tool_arguments(schema, "tools", every_property=False) == {"city": "mock"}

    @pytest.mark.parametrize("schema", [None, {}])
    def test_no_parameters_is_an_empty_object(self, schema: object) -> None:
        assert tool_arguments(schema, "tools", every_property=False) == {}

    def test_a_schema_that_is_not_an_object_is_a_400(self) -> None:
        with pytest.raises(GatewayError) as info:
            tool_arguments({"type": "string"}, "tools.input_schema", every_property=False)
        assert (info.value.status, info.value.param) == (400, "tools.input_schema")
        assert "must describe an object" in info.value.message
