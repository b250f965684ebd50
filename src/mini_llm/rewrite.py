"""Zero-copy model rewrite: decode only the top level (values stay raw), swap `model`, re-emit."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from mini_llm.errors import GatewayError

_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])
_STRING = msgspec.json.Decoder(str)
_OPTIONAL_BOOL = msgspec.json.Decoder(bool | None)
_ENCODER = msgspec.json.Encoder()


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
        except UnicodeDecodeError as exc:
            raise GatewayError(400, "request body is not valid JSON: 'model' is not UTF-8", param="model") from exc
        if not model:
            raise GatewayError(400, "'model' must not be empty", param="model")
    raw_stream = fields.get("stream")
    try:
        stream = bool(_OPTIONAL_BOOL.decode(raw_stream)) if raw_stream is not None else False
    except msgspec.ValidationError as exc:
        raise GatewayError(400, "'stream' must be a boolean", param="stream") from exc
    return Envelope(fields, model, stream)


def with_model(envelope: Envelope, model: str) -> bytes:
    """Re-emit the body with `model` swapped; every other value goes out byte for byte."""
    envelope.fields["model"] = msgspec.Raw(_ENCODER.encode(model))
    return _ENCODER.encode(envelope.fields)
