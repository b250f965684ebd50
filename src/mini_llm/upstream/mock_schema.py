"""A minimal instance of a JSON Schema, so the mock's structured answers and tool arguments validate.

It covers what OpenAI's structured outputs accept and pydantic emits (JSON Schema 2020-12, Validation
sections 6.1-6.5): `type` (one or a list), `properties`/`required`, `additionalProperties`, `items`,
`prefixItems`, `minItems`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`, `$ref` into `$defs`/`definitions`,
string lengths and formats, number bounds, and OpenAPI's `nullable`; not `pattern`, `uniqueItems`,
`not`, `if`/`then` or `contains`. A schema is client input: the walk is bounded in depth and in the size
of what it builds, and whatever it cannot satisfy is a clear 400.
"""

from __future__ import annotations

import math
from typing import Any, Final

import msgspec

from mini_llm.errors import GatewayError, clip

# Schema levels followed, $ref hops included: pydantic's nested models stay far below.
MAX_DEPTH: Final = 32
# Values built plus string characters: a cap on the work and on the size of the answer.
MAX_SIZE: Final = 100_000
# Values for the string formats of JSON Schema 2020-12 Validation 7.3 that parsers check.
_FORMATS: Final = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "duration": "PT0S",
    "email": "mock@example.com",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
}


class _Unsatisfiable(Exception):
    """The schema asks for something the mock cannot build (the message says what)."""


def minimal_instance(schema: Any, param: str, *, text: str = "", every_property: bool = False) -> Any:
    """The smallest value valid for `schema`: `text` for free strings, only required properties
    unless `every_property` (OpenAI's strict mode). A schema it cannot satisfy is a 400 naming `param`."""
    try:
        return _Builder(schema, text, every_property).build(schema, 0)
    except _Unsatisfiable as exc:
        raise GatewayError(400, f"the mock provider cannot build a value for {param}: {exc}", param=param) from exc


class _Builder:
    __slots__ = ("_every_property", "_root", "_size", "_text")

    def __init__(self, root: Any, text: str, every_property: bool) -> None:
        self._root = root
        self._text = text
        self._every_property = every_property
        self._size = 0

    def build(self, schema: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Unsatisfiable(f"the schema nests deeper than {MAX_DEPTH} levels")
        self._spend(1)
        if schema is True:
            return None
        if not isinstance(schema, dict):
            raise _Unsatisfiable("a schema that no value satisfies (false, or neither an object nor a boolean)")
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.build(self._resolve(ref), depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        if schema.get("nullable") is True:
            return None
        for union in ("anyOf", "oneOf"):
            branches = schema.get(union)
            if isinstance(branches, list) and branches:
                null = next((b for b in branches if isinstance(b, dict) and b.get("type") == "null"), None)
                return self.build(branches[0] if null is None else null, depth + 1)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            return self.build(self._merged(schema, parts), depth + 1)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer")
        if kind == "boolean":
            return False
        if kind is None or kind == "null":
            return None
        raise _Unsatisfiable(f"unknown type {clip(kind)}")

    def _spend(self, amount: int) -> None:
        self._size += amount
        if self._size > MAX_SIZE:
            raise _Unsatisfiable(f"its smallest value is larger than {MAX_SIZE} values and characters")

    def _resolve(self, ref: str) -> Any:
        """A JSON Pointer (RFC 6901) in this document's fragment (RFC 3986 3.5): `#`, `#/$defs/Name`."""
        if ref != "#" and not ref.startswith("#/"):
            raise _Unsatisfiable(f"$ref {clip(ref)} is no pointer into this schema")
        tokens = ref[1:].split("/")[1:]
        self._spend(len(tokens))
        node: Any = self._root
        for token in tokens:
            key = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise _Unsatisfiable(f"$ref {clip(ref)} points to nothing")
        return node

    def _merged(self, schema: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
        """allOf as one schema: properties and required lists united, other keywords the first one set."""
        merged = {key: value for key, value in schema.items() if key != "allOf"}
        for given in parts:
            ref = given.get("$ref") if isinstance(given, dict) else None
            part = self._resolve(ref) if isinstance(ref, str) else given
            if part is True:
                continue
            if not isinstance(part, dict):
                raise _Unsatisfiable("an allOf part that no value satisfies")
            self._spend(len(part))
            for key, value in part.items():
                known = merged.get(key)
                if key == "properties" and isinstance(value, dict) and isinstance(known, dict):
                    merged[key] = {**known, **value}
                elif key == "required" and isinstance(value, list) and isinstance(known, list):
                    merged[key] = [*known, *value]
                else:
                    merged.setdefault(key, value)
        return merged

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        required = schema.get("required")
        if self._every_property:
            names = list(properties)
        else:
            names = [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
        # A required name without a schema of its own takes additionalProperties' (false: unsatisfiable).
        other = schema.get("additionalProperties", True)
        return {name: self.build(properties.get(name, other), depth + 1) for name in dict.fromkeys(names)}

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        count = _natural(schema.get("minItems"))
        self._spend(count)  # before building: minItems 10**9 fails at once
        found = schema.get("prefixItems")
        prefix: list[Any] = found if isinstance(found, list) else []
        items = schema.get("items", True)
        return [self.build(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)]

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        value = _FORMATS.get(fmt, self._text) if isinstance(fmt, str) else self._text
        shortest = _natural(schema.get("minLength"))
        self._spend(max(shortest, len(value)))  # before padding: minLength 10**9 fails at once
        value = value.ljust(shortest, "x")
        longest = schema.get("maxLength")
        if isinstance(longest, int) and not isinstance(longest, bool) and 0 <= longest < len(value):
            value = value[:longest]
        return value


def _kind(schema: dict[str, Any]) -> str | None:
    """The type to build: a list's "null" if it has one, else its first; else what the keywords imply."""
    declared = schema.get("type")
    if isinstance(declared, list):
        names = [name for name in declared if isinstance(name, str)]
        return "null" if "null" in names else (names[0] if names else None)
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _natural(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _finite(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _number(schema: dict[str, Any], integral: bool) -> int | float:
    """0, or the nearest value the bounds allow (exclusive bounds are numbers, as since draft 6)."""
    value: int | float = 0
    low, low_open = _finite(schema.get("minimum")), _finite(schema.get("exclusiveMinimum"))
    high, high_open = _finite(schema.get("maximum")), _finite(schema.get("exclusiveMaximum"))
    if low is not None and value < low:
        value = math.ceil(low) if integral else low
    if low_open is not None and value <= low_open:
        value = math.floor(low_open) + 1 if integral else _above(low_open, high, high_open)
    if high is not None and value > high:
        value = math.floor(high) if integral else high
    if high_open is not None and value >= high_open:
        value = math.ceil(high_open) - 1 if integral else high_open - 1
    step = _finite(schema.get("multipleOf"))
    if step is not None and step > 0 and value % step:
        value = math.ceil(value / step) * step
    return int(value) if integral else value


def _above(bound: float | int, high: float | int | None, high_open: float | int | None) -> float | int:
    """A number above an exclusive minimum, halfway to the upper bound if there is one."""
    ceiling = min((b for b in (high, high_open) if b is not None), default=None)
    return bound + 1 if ceiling is None or ceiling > bound + 1 else (bound + ceiling) / 2


def json_answer(format_type: Any, spec: Any, param: str) -> str | None:
    """The text a response format asks for, None for free text: `{}` for json_object, and for
    json_schema the smallest instance of `spec["schema"]` (every property when `spec["strict"]`)."""
    if format_type == "json_object":
        return "{}"
    if format_type != "json_schema" or not isinstance(spec, dict):
        return None
    every_property = spec.get("strict") is True
    instance = minimal_instance(spec.get("schema", True), f"{param}.schema", every_property=every_property)
    return msgspec.json.encode(instance).decode()


def tool_arguments(schema: Any, param: str, *, every_property: bool) -> dict[str, Any]:
    """A tool call's arguments: the smallest object valid for the tool's schema, free strings "mock"
    so a client's tool has something to run on. No schema or an empty one means no parameters."""
    arguments = minimal_instance(schema or {"type": "object"}, param, text="mock", every_property=every_property)
    if not isinstance(arguments, dict):
        raise GatewayError(400, f"{param} must describe an object: a tool takes named arguments", param=param)
    return arguments
