"""The model rewrite as a splice: upstream gets the client's bytes with only the `model` value replaced.

msgspec decodes the top level only, each value a Raw view of the body, and checks the grammar and
nesting depth of every value on the way, the UTF-8 of the names and of `model` (a string skipped
inside a Raw value is not decoded, so its bytes go on as sent), so `messages` is never parsed in
Python. The byte span of the `model` value comes from the member walk that refuses repeated names,
or, for a compact body (which skips that walk), from adding up the member lengths: Python work per
member, never per byte. The gateway then sends `body[:start]`, the new value and `body[end:]` as
three buffers: nothing is re-encoded and nothing of the body is copied.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Final

import msgspec

from mini_llm.errors import GatewayError

_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])
_STRING = msgspec.json.Decoder(str)
_OPTIONAL_BOOL = msgspec.json.Decoder(bool | None)
_ENCODER = msgspec.json.Encoder()

# The bytes around each top-level value, RFC 8259 grammar: whitespace is space, tab, LF and CR only.
_WS: Final = rb"[ \t\n\r]*"
_NAME: Final = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_FIRST_MEMBER: Final = re.compile(_WS + rb"\{" + _WS + _NAME + _WS + rb":" + _WS, re.DOTALL)
_NEXT_MEMBER: Final = re.compile(_WS + rb"," + _WS + _NAME + _WS + rb":" + _WS, re.DOTALL)
_OBJECT_END: Final = re.compile(_WS + rb"\}" + _WS)
_OBJECT_START: Final = re.compile(_WS + rb"\{" + _WS)
# What precedes a compact body's `model` value: the name, two quotes and the colon.
_COMPACT_MODEL_NAME: Final = len('"model":')


@dataclass(slots=True)
class Envelope:
    """The request's top-level fields as raw JSON, plus the two the gateway reads."""

    fields: dict[str, msgspec.Raw]
    model: str
    stream: bool
    # The bytes a new model replaces: the `model` value, or the empty span after the last member when
    # the body has none. None when the member walk did not run; with_model works it out then.
    span: tuple[int, int] | None = None


def read_envelope(body: bytes | memoryview, *, model_required: bool = True) -> Envelope:
    """Read `model` and `stream` without touching `messages`; bad input becomes a 400."""
    if not len(body):
        raise GatewayError(400, "request body is empty: send a JSON object")
    try:
        fields = _TOP_LEVEL.decode(body)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, "request body must be a JSON object") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise GatewayError(400, f"request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # msgspec bounds nesting with the interpreter's recursion limit, which the call stack shares.
        raise GatewayError(
            400,
            "request body nests arrays and objects too deeply: the gateway's JSON decoder stops at "
            f"about {sys.getrecursionlimit()} levels (Python's recursion limit)",
        ) from exc
    # Each member takes at least its name's characters, two quotes, a colon, one separator (a comma or
    # a brace) and its value: a body of exactly this size (compact JSON, as the SDKs send) has no
    # member beyond `fields`, so only other bodies need the walk (which also finds the model's span; for a
    # compact body, with_model adds it up from the lengths, and only when the model is renamed).
    compact_size = 1 + 4 * len(fields) + len("".join(fields)) + sum(map(len, fields.values()))
    span = None
    if len(body) != compact_size and fields:
        span = _walk_members(memoryview(body), fields)
        if span is None:
            # RFC 8259 4: with repeated names, readers disagree on the value; a provider that keeps the
            # first `model` would serve another model than the one the gateway routed, logged and billed.
            raise GatewayError(
                400, "request body repeats a top-level field: each field (model, stream, ...) may appear once"
            )
    raw_model = fields.get("model")
    if raw_model is None:
        if model_required:
            raise GatewayError(400, "missing required field 'model'", param="model")
        model = ""
    else:
        try:
            model = _STRING.decode(raw_model)
        except msgspec.ValidationError as exc:
            raise GatewayError(400, "'model' must be a string", param="model") from exc
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            # msgspec 0.23 raises DecodeError for invalid UTF-8 in a string, older ones UnicodeDecodeError.
            raise GatewayError(400, "request body is not valid JSON: 'model' is not UTF-8", param="model") from exc
        if not model:
            raise GatewayError(400, "'model' must not be empty", param="model")
    raw_stream = fields.get("stream")
    try:
        stream = bool(_OPTIONAL_BOOL.decode(raw_stream)) if raw_stream is not None else False
    except msgspec.ValidationError as exc:
        raise GatewayError(400, "'stream' must be a boolean", param="stream") from exc
    return Envelope(fields, model, stream, span)


def _walk_members(body: memoryview, fields: dict[str, msgspec.Raw]) -> tuple[int, int] | None:
    """The span a new model replaces, or None if the object has more members than `fields`.

    `fields` kept only the last of repeated names, so more members means a repeated name. Walks the
    top level only (the cost is per member, not per byte): member j of the body must hold exactly
    the bytes of the j-th Raw in `fields` (a dict keeps a name at its first position). The walk
    cannot drift off the real members: a name token ends at its real closing quote, and bytes from
    a value's start that equal another complete JSON value are that value, or a prefix of a number,
    which the next separator check refuses. So a repeated name shows as a value that differs from
    the kept one, or as a member left over at the end; and once no name repeats, the position the
    walk found for `model` is the real one.
    """
    member = _FIRST_MEMBER.match(body)
    end = 0
    span = None
    for name, raw in fields.items():
        if member is None:
            return None
        start = member.end()
        end = start + len(raw)
        if msgspec.Raw(body[start:end]) != raw:
            return None
        if name == "model":
            span = (start, end)
        member = _NEXT_MEMBER.match(body, end)
    if _OBJECT_END.fullmatch(body, end) is None:
        return None
    return span or (end, end)


def _compact_span(fields: dict[str, msgspec.Raw]) -> tuple[int, int]:
    """The span in a compact body, from lengths alone: `{`, then `"name":value` and a separator each.

    read_envelope calls a body compact when its size is exactly that sum, which holds only with no
    whitespace, no repeated name and every name in plain ASCII without escapes.
    """
    start = 1
    for name, raw in fields.items():
        if name == "model":
            start += _COMPACT_MODEL_NAME
            return start, start + len(raw)
        start += len(name) + 4 + len(raw)
    return start - 1, start - 1  # after the last value, before the closing brace


def with_model(body: memoryview, envelope: Envelope, model: str) -> tuple[memoryview, bytes, memoryview]:
    """`body`, read into `envelope`, with `model` as its model: the bytes before, the new value, the bytes after.

    Written in that order (the upstream clients take a sequence of buffers), they are the client's
    body with only the model value replaced, and the body is never copied. A body without `model`
    (allowed where it is optional) gets it as a new last member.
    """
    value = _ENCODER.encode(model)
    fields = envelope.fields
    if envelope.span is not None:
        start, end = envelope.span
    elif fields:
        start, end = _compact_span(fields)
    else:
        opened = _OBJECT_START.match(body)
        assert opened is not None, "read_envelope decoded this body as an object"
        start = end = opened.end()
    if "model" not in fields:
        value = (b',"model":' if fields else b'"model":') + value
    return body[:start], value, body[end:]
