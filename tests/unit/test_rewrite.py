"""read_envelope and with_model: top-level-only decoding, 400s for bad bodies, the model rewrite as a splice."""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_llm.errors import GatewayError
from mini_llm.gateway.rewrite import Envelope, read_envelope, with_model

_RAW_TOP_LEVEL = msgspec.json.Decoder(dict[str, msgspec.Raw])


def rewrite(body: bytes, model: str) -> bytes:
    """What goes upstream: the three buffers with_model returns, written in order."""
    view = memoryview(body)
    return b"".join(with_model(view, read_envelope(view), model))


def top_level_raw(body: bytes) -> dict[str, bytes]:
    return {key: bytes(raw) for key, raw in _RAW_TOP_LEVEL.decode(body).items()}


def rejected(body: bytes | memoryview, *, model_required: bool = True) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        read_envelope(body, model_required=model_required)
    assert info.value.status == 400
    return info.value


class TestReadEnvelope:
    def test_bytes(self) -> None:
        envelope = read_envelope(b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}')
        assert isinstance(envelope, Envelope)
        assert (envelope.model, envelope.stream) == ("gpt-4o", False)
        assert list(envelope.fields) == ["model", "messages"]
        assert bytes(envelope.fields["messages"]) == b'[{"role": "user", "content": "hi"}]'

    def test_memoryview(self) -> None:
        buffer = bytearray(b'xx{"stream": true, "model": "claude-sonnet-4-5"}yy')
        envelope = read_envelope(memoryview(buffer)[2:-2])
        assert (envelope.model, envelope.stream) == ("claude-sonnet-4-5", True)

    def test_model_is_unescaped(self) -> None:
        assert read_envelope(b'{"model": "caf\\u00e9 \\"x\\""}').model == 'café "x"'

    @pytest.mark.parametrize(
        ("raw", "stream"),
        [("true", True), ("false", False), ("null", False), (None, False), (" true ", True)],
    )
    def test_stream(self, raw: str | None, stream: bool) -> None:
        body = '{"model": "m"' + (f', "stream":{raw}' if raw is not None else "") + "}"
        assert read_envelope(body.encode()).stream is stream

    @pytest.mark.parametrize(
        ("body", "message", "param"),
        [
            (b"", "request body is empty", None),
            (b"{", "request body is not valid JSON", None),
            (b"{'model': 'gpt-4o'}", "request body is not valid JSON", None),
            (b'{"model": "gpt-4o"} trailing', "request body is not valid JSON", None),
            (b'{"model": "gpt-4o",}', "request body is not valid JSON", None),
            (b"[]", "request body must be a JSON object", None),
            (b'"gpt-4o"', "request body must be a JSON object", None),
            (b"null", "request body must be a JSON object", None),
            (b"42", "request body must be a JSON object", None),
            (b"{}", "missing required field 'model'", "model"),
            (b'{"messages": [{"model": "decoy"}]}', "missing required field 'model'", "model"),
            (b'{"model": 4}', "'model' must be a string", "model"),
            (b'{"model": null}', "'model' must be a string", "model"),
            (b'{"model": ["gpt-4o"]}', "'model' must be a string", "model"),
            (b'{"model": {"id": "gpt-4o"}}', "'model' must be a string", "model"),
            (b'{"model": ""}', "'model' must not be empty", "model"),
            (b'{"model": "m", "stream": "true"}', "'stream' must be a boolean", "stream"),
            (b'{"model": "m", "stream": 1}', "'stream' must be a boolean", "stream"),
            (b'{"model": "m", "stream": {}}', "'stream' must be a boolean", "stream"),
        ],
    )
    def test_bad_body_is_400(self, body: bytes, message: str, param: str | None) -> None:
        error = rejected(body)
        assert error.message.startswith(message)
        assert error.param == param

    def test_empty_memoryview(self) -> None:
        assert rejected(memoryview(b"")).message.startswith("request body is empty")

    def test_decode_error_keeps_msgspec_detail(self) -> None:
        assert "byte" in rejected(b'{"model": "m" x}').message

    @pytest.mark.parametrize(
        "body",
        [b'{"model": "\xff"}', b'{"model": "gpt-4o\xc3"}', b'{"\xff": 1, "model": "gpt-4o"}'],
        ids=["model-invalid-start-byte", "model-truncated-sequence", "key-invalid-start-byte"],
    )
    def test_invalid_utf8_in_top_level_strings_is_400(self, body: bytes) -> None:
        # JSON text is UTF-8 (RFC 8259 §8.1); bad bytes are the client's fault, not a 500.
        assert rejected(body).message.startswith("request body is not valid JSON")

    @pytest.mark.parametrize("body", [b'{"model": "\xff"}', b'{"model": "gpt-4o\xc3"}'], ids=["invalid", "truncated"])
    def test_invalid_utf8_in_model_names_the_field(self, body: bytes) -> None:
        error = rejected(body)
        assert (error.message, error.param) == ("request body is not valid JSON: 'model' is not UTF-8", "model")

    @pytest.mark.parametrize("opener", [b"[", b'{"a":'], ids=["arrays", "objects"])
    @pytest.mark.parametrize("depth", [1_000, 5_000, 100_000])
    def test_deep_nesting_is_a_400_naming_the_limit(self, opener: bytes, depth: int) -> None:
        closer = b"]" if opener == b"[" else b"}"
        body = b'{"model": "m", "messages": ' + opener * depth + b"1" * (opener != b"[") + closer * depth + b"}"
        message = rejected(body).message
        assert message.startswith("request body nests arrays and objects too deeply")
        assert f"about {sys.getrecursionlimit()} levels (Python's recursion limit)" in message

    def test_nesting_well_inside_the_limit_is_read(self) -> None:
        body = b'{"model": "m", "messages": ' + b"[" * 500 + b"]" * 500 + b"}"
        assert read_envelope(body).model == "m"

    def test_model_not_required(self) -> None:
        envelope = read_envelope(b'{"input": "text"}', model_required=False)
        assert (envelope.model, envelope.stream) == ("", False)
        assert read_envelope(b'{"model": "m"}', model_required=False).model == "m"

    @pytest.mark.parametrize(
        ("body", "message"),
        [(b"", "request body is empty"), (b"[]", "must be a JSON object"), (b'{"model": 1}', "must be a string")],
    )
    def test_model_not_required_still_validates(self, body: bytes, message: str) -> None:
        assert message in rejected(body, model_required=False).message

    def test_model_not_required_but_empty(self) -> None:
        assert rejected(b'{"model": ""}', model_required=False).param == "model"


class TestRepeatedNames:
    """RFC 8259 4: readers disagree on repeated names, so the gateway refuses them at the top level."""

    @pytest.mark.parametrize(
        "body",
        [
            b'{"model":"gpt-4o","model":"gpt-4o-mini"}',
            b'{"model":"gpt-4o","model":"gpt-4o"}',  # same value, same length: the walk stays aligned
            b'{"model":"aaaa","messages":[],"model":"b"}',
            b'{"model":"m","stream":true,"stream":false}',
            b'{"stream":false,"model":"m","stream":true}',
            b'{"mod\\u0065l":"expensive","model":"cheap"}',  # an escaped spelling of the same name
            b'{"model":"m","\\u0073tream":true,"stream":false}',
            b'{ "model" : "a" ,\n  "model" : "b" }',  # pretty-printed
            b'{"model":"m","temperature":1,"temperature":0}',  # any top-level name, not just the two
            b'{"model":"m","x":{"k":1},"x":[1,2,3,4,5,6,7,8,9,10]}',
            b'{"model":"m","x":"abcdefghij","x":"a"}',
            b'{"model":"m","n":12,"n":1}',  # the kept value is a prefix of the first one
            b'{"model":"aa","model":"bb"}',  # same length, other bytes
        ],
    )
    def test_repeated_top_level_name_is_a_400(self, body: bytes) -> None:
        assert rejected(body).message.startswith("request body repeats a top-level field")

    @pytest.mark.parametrize(
        "body",
        [
            b'{"model":"m","metadata":{"model":"decoy","model":"twice"},"messages":[{"model":1},{"model":2}]}',
            b'{"model":"m","messages":["model","model"],"stream":false}',
            b' {\n "model" : "m" ,\t"stream": true\r\n}\n',
            b'{"model":"m","caf\xc3\xa9":1,"\\u00e9":2}',  # names that only look alike
            b'{"model":"m","a\\"b":1,"a\\\\":2}',  # escaped quote and backslash in names
            b'{"model":"m","":1}',
        ],
    )
    def test_unique_top_level_names_are_read(self, body: bytes) -> None:
        assert read_envelope(body).model == "m"

    def test_memoryview_body(self) -> None:
        buffer = bytearray(b'xx{"model": "a", "model": "b"}yy')
        assert rejected(memoryview(buffer)[2:-2]).message.startswith("request body repeats")


class TestWithModel:
    def test_only_model_changes(self) -> None:
        body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}'
        assert rewrite(body, "gpt-4o-mini") == body.replace(b'"gpt-4o"', b'"gpt-4o-mini"')

    def test_key_order_is_kept(self) -> None:
        body = b'{"temperature":0.2,"messages":[],"model":"fast","max_tokens":5,"stream":false,"zzz":null}'
        out = rewrite(body, "gpt-4o-mini")
        assert list(json.loads(out)) == ["temperature", "messages", "model", "max_tokens", "stream", "zzz"]
        assert out == body.replace(b'"fast"', b'"gpt-4o-mini"')

    def test_nested_model_keys_are_untouched(self) -> None:
        messages = b'[{"role":"user","content":"x","model":"decoy-1"},{"role":"tool","model":{"model":"decoy-2"}}]'
        metadata = b'{"model":"decoy-3","tags":["model"]}'
        body = b'{"metadata":' + metadata + b',"model":"fast","messages":' + messages + b"}"
        out = rewrite(body, "claude-sonnet-4-5")
        raw = top_level_raw(out)
        assert raw["messages"] == messages
        assert raw["metadata"] == metadata
        assert raw["model"] == b'"claude-sonnet-4-5"'
        assert out.count(b"decoy") == 3

    def test_escapes_and_whitespace_are_byte_identical(self) -> None:
        messages = (
            b'[ {\n  "role" : "user",\n  "content" : "caf\\u00e9 \\ud83d\\ude00 \\"quoted\\" \\/ \\n tab\\t"\n} ]'
        )
        number = b"1.50E+2"
        body = b'{\n  "model" :  "fast",\n  "messages" : ' + messages + b',\n  "n": ' + number + b"\n}\n"
        out = rewrite(body, "gpt-4o")
        assert messages in out
        assert number in out
        raw = top_level_raw(out)
        assert raw["messages"] == messages
        assert raw["n"] == number
        assert json.loads(out) == {**json.loads(body), "model": "gpt-4o"}

    def test_raw_utf8_in_values_is_kept(self) -> None:
        content = "東京 😀 é".encode()
        body = b'{"model":"m","messages":[{"content":"' + content + b'"}]}'
        assert content in rewrite(body, "x")

    @pytest.mark.parametrize("model", ['a"b', "caf\u00e9", "\U0001f600", "back\\slash", "line\nbreak", "x" * 300])
    def test_new_model_is_encoded(self, model: str) -> None:
        out = rewrite(b'{"model":"m","messages":[]}', model)
        assert json.loads(out) == {"model": model, "messages": []}

    def test_model_added_when_not_required(self) -> None:
        body = memoryview(b'{"input":"hello","dimensions":8}')
        out = b"".join(with_model(body, read_envelope(body, model_required=False), "text-embedding-3-small"))
        assert out == b'{"input":"hello","dimensions":8,"model":"text-embedding-3-small"}'

    def test_rewrite_from_memoryview(self) -> None:
        body = memoryview(bytearray(b'xx{"model":"fast","messages":[{"content":"x"}]}yy'))[2:-2]
        out = b"".join(with_model(body, read_envelope(body), "gpt-4o"))
        assert out == b'{"model":"gpt-4o","messages":[{"content":"x"}]}'


class TestSplice:
    """Upstream gets the client's bytes with only the top-level model value replaced."""

    @pytest.mark.parametrize(
        ("head", "value", "tail"),
        [
            (b'{"model":', b'"fast"', b',"messages":[],"stream":true}'),  # first
            (b'{"messages":[],"model":', b'"fast"', b',"stream":true}'),  # middle
            (b'{"messages":[],"stream":true,"model":', b'"fast"', b"}"),  # last
            (b'{"model":', b'"fast"', b"}"),  # alone
            (b' \r\n{\n\t"model"\t :\r\n ', b'"fast"', b' \n,\n  "messages" : [ { "content" : " a  b " } ]\n}\n\n'),
            (b'{\n  "messages": [\n    {"role": "user",\n     "content": "x"}\n  ],\n  "model":   ', b'"fast"', b"\n}"),
            (b'{"temperature":  0.50 ,"model" :', b'"fast"', b'  ,  "max_tokens":\t7 }'),
        ],
        ids=["first", "middle", "last", "alone", "odd-whitespace", "pretty-printed", "spaced-numbers"],
    )
    def test_only_the_span_is_replaced(self, head: bytes, value: bytes, tail: bytes) -> None:
        assert rewrite(head + value + tail, "gpt-4o-mini") == head + b'"gpt-4o-mini"' + tail

    @pytest.mark.parametrize(
        ("value", "model"),
        [
            (b'"gp\\u0074"', "gpt"),
            (b'"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80"', "café 東京 😀"),
            (b'"caf\\u00e9 \\ud83d\\ude00"', "café 😀"),
            (b'"a\\"b\\\\c\\/d"', 'a"b\\c/d'),
        ],
        ids=["escaped-ascii", "raw-utf8", "escaped-unicode", "escaped-quote-backslash-solidus"],
    )
    def test_the_whole_value_is_replaced_however_it_is_spelled(self, value: bytes, model: str) -> None:
        body = b'{"messages":[], "model": ' + value + b' , "n":1}'
        assert read_envelope(body).model == model
        assert rewrite(body, "\u00e9-model") == b'{"messages":[], "model": "\xc3\xa9-model" , "n":1}'

    def test_nested_model_keys_and_strings_are_untouched(self) -> None:
        head = b'{ "metadata" : { "model" : "decoy" , "tags": [ "model", "\\"model\\"" ] },\n "model" : '
        tail = b' ,\n "messages" : [ {"model": {"model": "decoy"}} ] }'
        assert rewrite(head + b'"fast"' + tail, "claude-sonnet-4-5") == head + b'"claude-sonnet-4-5"' + tail

    def test_an_escaped_name_that_unescapes_to_model_is_the_model(self) -> None:
        # msgspec reads "mod\u0065l" as the name "model" (RFC 8259 7), so it is what the gateway routes on.
        body = b'{"messages":[],"mod\\u0065l":"fast","stream":false}'
        assert read_envelope(body).model == "fast"
        assert rewrite(body, "gpt-4o-mini") == b'{"messages":[],"mod\\u0065l":"gpt-4o-mini","stream":false}'

    @pytest.mark.parametrize(
        "body",
        [b'{"messages":[],"model":"fast"}', b'{ "messages": [],\n  "model": "fast" }'],
        ids=["compact", "spaced"],
    )
    def test_the_body_is_not_copied(self, body: bytes) -> None:
        view = memoryview(body)
        before, value, after = with_model(view, read_envelope(view), "gpt-4o")
        assert value == b'"gpt-4o"'
        assert before.obj is body and after.obj is body
        assert bytes(before) + b'"fast"' + bytes(after) == body

    @pytest.mark.parametrize(
        ("body", "out"),
        [
            (b'{"input":"hi"}', b'{"input":"hi","model":"m"}'),
            (b'{\n  "input": "hi",\n  "n": 2\n}\n', b'{\n  "input": "hi",\n  "n": 2,"model":"m"\n}\n'),
            (b"{}", b'{"model":"m"}'),
            (b" {\n} ", b' {\n"model":"m"} '),
            (b'{"\\u0069nput":"hi"}', b'{"\\u0069nput":"hi","model":"m"}'),
        ],
        ids=["compact", "pretty-printed", "empty", "empty-spaced", "escaped-name"],
    )
    def test_a_missing_model_becomes_the_last_member(self, body: bytes, out: bytes) -> None:
        view = memoryview(body)
        assert b"".join(with_model(view, read_envelope(view, model_required=False), "m")) == out
        assert json.loads(out) == {**json.loads(body), "model": "m"}


# ---- property test -------------------------------------------------------------------------------

_KEYS = st.sampled_from(["model", "messages", "content", "role", "metadata", ""]) | st.text(max_size=6)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=16,
)
_WHITESPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


def _encode_value(value: Any, style: str) -> bytes:
    """The same value in one of the shapes clients send: compact, pretty-printed or ASCII-escaped."""
    if style == "compact":
        return msgspec.json.encode(value)
    if style == "indented":
        return msgspec.json.format(msgspec.json.encode(value), indent=2)
    return json.dumps(value, ensure_ascii=True).encode()


@st.composite
def request_bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, Any], dict[str, bytes], tuple[bytes, bytes]]:
    """A JSON object with `model` somewhere among random keys, nested decoy `model` keys included.

    Returns the body, the decoded object, the exact bytes of each top-level value, and the bytes
    before and after the `model` value (built alongside, not found by searching the body).
    """
    others = draw(
        st.dictionaries(
            _KEYS.filter(lambda key: key not in ("model", "stream")),
            _VALUES,
            max_size=6,
        )
    )
    if draw(st.booleans()):
        others["metadata"] = {"model": draw(_VALUES), "nested": [{"model": draw(st.text(max_size=5))}]}
    items = list(others.items())
    items.insert(draw(st.integers(0, len(items))), ("model", draw(st.text(min_size=1, max_size=10))))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), ("stream", draw(st.booleans() | st.none())))
    items = draw(st.permutations(items))
    body = draw(_WHITESPACE).encode() + b"{"
    raw_values: dict[str, bytes] = {}
    head = b""
    for index, (key, value) in enumerate(items):
        raw = _encode_value(value, draw(st.sampled_from(["compact", "indented", "ascii"])))
        raw_values[key] = raw
        before, around, after = draw(_WHITESPACE), draw(_WHITESPACE), draw(_WHITESPACE)
        body += b"," * (index > 0) + f"{before}{json.dumps(key)}{around}:{after}".encode()
        if key == "model":
            head = body
        body += raw + draw(_WHITESPACE).encode()
    body += b"}" + draw(_WHITESPACE).encode()
    return body, dict(items), raw_values, (head, body[len(head) + len(raw_values["model"]) :])


@settings(deadline=None)
@given(request_bodies(), st.text(min_size=1, max_size=20))
def test_with_model_replaces_only_top_level_model(
    case: tuple[bytes, dict[str, Any], dict[str, bytes], tuple[bytes, bytes]], new_model: str
) -> None:
    body, original, raw_values, (head, tail) = case
    out = rewrite(body, new_model)
    assert out == head + msgspec.json.encode(new_model) + tail
    decoded = msgspec.json.decode(out)
    assert decoded == {**original, "model": new_model}
    assert list(decoded) == list(original)
    raw_out = top_level_raw(out)
    assert raw_out["model"] == msgspec.json.encode(new_model)
    for key, raw in raw_values.items():
        if key != "model":
            assert raw_out[key] == raw
            assert raw in out


@settings(deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8).filter(lambda key: key != "model"),
        _VALUES,
        max_size=6,
    ),
    st.text(min_size=1, max_size=10),
    st.text(min_size=1, max_size=20),
    st.booleans(),
)
def test_compact_bodies_are_spliced_from_lengths_alone(
    others: dict[str, Any], model: str, new_model: str, model_first: bool
) -> None:
    # Compact, as the SDKs send it: read_envelope skips the member walk and with_model adds up lengths,
    # unless a name needs an escape (of the printable ASCII characters, only quote and backslash do).
    members = {"model": model, **others} if model_first else {**others, "model": model}
    body = msgspec.json.encode(members)
    walked = any('"' in name or "\\" in name for name in members)
    assert (read_envelope(body).span is not None) == walked
    assert rewrite(body, new_model) == msgspec.json.encode({**members, "model": new_model})


@st.composite
def bodies_with_a_repeated_name(draw: st.DrawFn) -> bytes:
    """A valid body from request_bodies with one of its top-level members repeated somewhere."""
    body, _, raw_values, _ = draw(request_bodies())
    body = body.strip(b" \t\r\n")
    name = draw(st.sampled_from(sorted(raw_values)))
    value = _encode_value(draw(_VALUES | st.text(max_size=10)), "compact")
    member = json.dumps(name, ensure_ascii=draw(st.booleans())).encode() + b":" + value
    # Insert right after the opening brace or before the closing one: both are member boundaries.
    if draw(st.booleans()):
        return b"{" + member + b"," + body[1:]
    return body[:-1] + b"," + member + b"}"


@settings(deadline=None)
@given(bodies_with_a_repeated_name())
def test_any_repeated_top_level_name_is_refused(body: bytes) -> None:
    assert rejected(body).message.startswith("request body repeats a top-level field")
