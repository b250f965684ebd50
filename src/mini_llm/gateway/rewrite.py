"""Zero-copy model rewrite: decode only the top level (values stay raw), swap `model`, re-emit."""

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


@dataclass(slots=True)
class Envelope:
    """The request's top-level fields as raw JSON, plus the two the gateway reads."""

    fields: dict[str, msgspec.Raw]
    model: str
    stream: bool


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
    # member beyond `fields`, so only other bodies need the walk.
    compact_size = 1 + 4 * len(fields) + len("".join(fields)) + sum(map(len, fields.values()))
    if len(body) != compact_size and fields and _repeats_a_name(memoryview(body), fields):
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
    return Envelope(fields, model, stream)


def _repeats_a_name(body: memoryview, fields: dict[str, msgspec.Raw]) -> bool:
    """Whether the object has more members than `fields`, which kept only the last of repeated names.

    Walks the top level only (the cost is per member, not per byte): member j of the body must hold
    exactly the bytes of the j-th Raw in `fields` (a dict keeps a name at its first position). The
    walk cannot drift off the real members: a name token ends at its real closing quote, and bytes
    from a value's start that equal another complete JSON value are that value, or a prefix of a
    number, which the next separator check refuses. So a repeated name shows as a value that
    differs from the kept one, or as a member left over at the end.
    """
    member = _FIRST_MEMBER.match(body)
    end = 0
    for raw in fields.values():
        if member is None:
            return True
        start = member.end()
        end = start + len(raw)
        if msgspec.Raw(body[start:end]) != raw:
            return True
        member = _NEXT_MEMBER.match(body, end)
    return _OBJECT_END.fullmatch(body, end) is None


def with_model(envelope: Envelope, model: str) -> bytes:
    """Re-emit the body with `model` swapped; every other value goes out byte for byte."""
    envelope.fields["model"] = msgspec.Raw(_ENCODER.encode(model))
    return _ENCODER.encode(envelope.fields)
