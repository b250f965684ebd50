"""Error bodies and in-stream error frames in each protocol's shape.

OpenAI: https://platform.openai.com/docs/guides/error-codes and
https://platform.openai.com/docs/api-reference/chat-streaming; Anthropic: https://docs.anthropic.com/en/api/errors
and https://docs.anthropic.com/en/api/messages-streaming#error-events; the Responses API's error event:
https://platform.openai.com/docs/api-reference/responses-streaming/error.
"""

from __future__ import annotations

import json

import pytest
from openai.types.responses import ResponseErrorEvent

from mini_llm.errors import (
    CLIP_CHARS,
    Dialect,
    GatewayError,
    UpstreamTimeout,
    UpstreamUnreachable,
    anthropic_type,
    clip,
    error_body,
    openai_type,
    stream_error_event,
)
from mini_llm.hotpath import SSESplitter


class TestOpenAI:
    @pytest.mark.parametrize(
        ("status", "type_"),
        [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (409, "invalid_request_error"),
            (413, "invalid_request_error"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "server_error"),
            (502, "server_error"),
            (503, "server_error"),
            (504, "server_error"),
        ],
    )
    def test_status_to_type(self, status: int, type_: str) -> None:
        assert openai_type(status) == type_

    def test_body_shape(self) -> None:
        error = GatewayError(400, "'model' must be a string", param="model", code="invalid_model")
        assert json.loads(error_body("openai", error)) == {
            "error": {
                "message": "'model' must be a string",
                "type": "invalid_request_error",
                "param": "model",
                "code": "invalid_model",
            }
        }

    def test_param_and_code_default_to_null(self) -> None:
        body = json.loads(error_body("openai", GatewayError(429, "slow down")))
        assert body == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}
        assert list(body["error"]) == ["message", "type", "param", "code"]


class TestAnthropic:
    @pytest.mark.parametrize(
        ("status", "type_"),
        [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (405, "invalid_request_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ],
    )
    def test_status_to_type(self, status: int, type_: str) -> None:
        assert anthropic_type(status) == type_

    def test_body_shape(self) -> None:
        error = GatewayError(413, "request body is larger than 10485760 bytes", code="body_too_large", param="x")
        assert json.loads(error_body("anthropic", error)) == {
            "type": "error",
            "error": {"type": "request_too_large", "message": "request body is larger than 10485760 bytes"},
        }

    def test_body_is_compact_json(self) -> None:
        assert error_body("anthropic", GatewayError(529, "Overloaded")) == (
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        )


class TestUpstreamErrors:
    def test_unreachable(self) -> None:
        error = UpstreamUnreachable("cannot connect to openai")
        assert (error.status, error.code, error.message) == (502, "upstream_unreachable", "cannot connect to openai")
        assert isinstance(error, ConnectionError)
        assert json.loads(error_body("openai", error))["error"]["type"] == "server_error"
        assert json.loads(error_body("anthropic", error))["error"]["type"] == "api_error"

    def test_timeout(self) -> None:
        error = UpstreamTimeout("openai went silent for 300s")
        assert (error.status, error.code) == (504, "upstream_timeout")
        assert isinstance(error, TimeoutError)
        assert json.loads(error_body("openai", error))["error"]["code"] == "upstream_timeout"
        assert json.loads(error_body("anthropic", error))["error"]["type"] == "timeout_error"

    def test_message_is_str(self) -> None:
        assert str(GatewayError(400, "bad")) == "bad"


class TestStreamErrorEvent:
    def test_openai_is_a_bare_data_line(self) -> None:
        error = GatewayError(502, "upstream closed the stream", code="upstream_unreachable")
        frame = stream_error_event("openai", error)
        assert frame == b"data: " + error_body("openai", error) + b"\n\n"
        assert not frame.startswith(b"event:")
        assert frame.count(b"\n") == 2

    def test_anthropic_has_an_event_line(self) -> None:
        error = GatewayError(529, "Overloaded")
        frame = stream_error_event("anthropic", error)
        assert frame == b"event: error\ndata: " + error_body("anthropic", error) + b"\n\n"

    @pytest.mark.parametrize(
        ("protocol", "event_name", "type_"),
        [("openai", "message", "server_error"), ("anthropic", "error", "timeout_error")],
    )
    def test_frames_parse_as_one_sse_event(self, protocol: Dialect, event_name: str, type_: str) -> None:
        # A newline in the message must stay escaped inside the one data line.
        error = GatewayError(504, "line one\nline two")
        frame = stream_error_event(protocol, error)
        assert frame.endswith(b"\n\n")
        events = SSESplitter().feed(b"data: {}\n\n" + frame)
        assert len(events) == 2
        event = events[1]
        assert event.event == event_name
        assert event.raw == frame
        payload = json.loads(event.data)
        assert payload["error"]["message"] == "line one\nline two"
        assert payload["error"]["type"] == type_

    def test_responses_is_the_error_event_of_the_responses_api_with_the_next_sequence_number(self) -> None:
        error = UpstreamUnreachable("the provider closed the stream\nmid-way")
        frame = stream_error_event("responses", error, 7)
        events = SSESplitter().feed(frame)
        assert len(events) == 1
        assert events[0].event == "error"
        payload = json.loads(events[0].data)
        assert payload == {
            "type": "error",
            "code": "upstream_unreachable",
            "message": "the provider closed the stream\nmid-way",
            "param": None,
            "sequence_number": 7,
        }
        # The SDK's own model of the event reads it: `responses.stream` hands it to the caller.
        assert ResponseErrorEvent.model_validate(payload).sequence_number == 7

    def test_a_responses_error_without_a_code_is_named_by_its_type(self) -> None:
        payload = json.loads(SSESplitter().feed(stream_error_event("responses", GatewayError(500, "x")))[0].data)
        assert payload["code"] == "server_error"


class TestClip:
    @pytest.mark.parametrize("value", ["", "gpt-4o", 'caf\u00e9 "x"', "a\nb", "x" * CLIP_CHARS])
    def test_short_values_are_quoted_whole(self, value: str) -> None:
        assert clip(value) == repr(value)

    def test_long_values_are_cut_and_say_how_long_they_were(self) -> None:
        value = "m" * 5_000_000
        shown = clip(value)
        assert shown == repr("m" * CLIP_CHARS) + "... (5000000 characters)"
