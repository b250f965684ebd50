"""The stream observer on the Responses API's events, and the token counts it gives for all three formats.

Event names and payloads: https://platform.openai.com/docs/api-reference/responses-streaming.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mini_llm.gateway.observer import StreamObserver
from mini_llm.hotpath import SSEEvent

USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 4,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 15,
}


def _event(name: str, data: dict[str, Any], named: bool = True) -> SSEEvent:
    """An event as the splitter gives it: named by its `event:` line, or (unnamed) only by its `type`."""
    return SSEEvent(name if named else "message", json.dumps({"type": name, **data}), "", b"")


def _response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {"response": {"id": "resp_1", "object": "response", "status": status, "output": [], "usage": usage}}


@pytest.mark.parametrize("named", [True, False], ids=["event-lines", "type-only"])
def test_first_token_at_the_first_delta_and_usage_from_the_completed_response(named: bool) -> None:
    observer = StreamObserver("responses")
    before = [
        _event("response.created", {"sequence_number": 0, **_response("in_progress", None)}, named),
        _event("response.output_item.added", {"sequence_number": 1, "output_index": 0, "item": {}}, named),
    ]
    for event in before:
        observer.observe(event)
    first_tokens = [observer.first_token]
    observer.observe(_event("response.output_text.delta", {"sequence_number": 2, "delta": "Hi"}, named))
    first_tokens.append(observer.first_token)
    observer.observe(_event("response.output_text.delta", {"sequence_number": 3, "delta": "!"}, named))
    first_tokens.append(observer.first_token)
    assert first_tokens[0] is None
    assert first_tokens[1] is not None and first_tokens[2] == first_tokens[1]
    done = [observer.done]
    observer.observe(_event("response.completed", {"sequence_number": 4, **_response("completed", USAGE)}, named))
    done.append(observer.done)
    assert done == [False, True]
    assert not observer.error and not observer.opened_with_error
    assert observer.tokens() == (11, 4)
    assert (observer.events, observer.malformed) == (5, 0)
    assert observer.log_fields().endswith("malformed=0 end=done")


@pytest.mark.parametrize(
    "delta",
    ["response.function_call_arguments.delta", "response.reasoning_summary_text.delta", "response.refusal.delta"],
)
def test_any_output_delta_is_a_first_token(delta: str) -> None:
    observer = StreamObserver("responses")
    observer.observe(_event("response.created", _response("in_progress", None)))
    observer.observe(_event(delta, {"delta": "x"}))
    assert observer.first_token is not None


def test_an_incomplete_response_ends_the_stream_with_its_usage() -> None:
    observer = StreamObserver("responses")
    observer.observe(_event("response.created", _response("in_progress", None)))
    observer.observe(_event("response.incomplete", _response("incomplete", USAGE)))
    assert observer.done and not observer.error
    assert observer.tokens() == (11, 4)


@pytest.mark.parametrize(
    "failure",
    [
        _event("error", {"code": "server_error", "message": "boom", "param": None, "sequence_number": 0}),
        _event("response.failed", _response("failed", None)),
    ],
    ids=["error", "response.failed"],
)
def test_an_error_as_the_first_event_is_what_the_failover_retries(failure: SSEEvent) -> None:
    observer = StreamObserver("responses")
    observer.observe(failure)
    assert observer.error and observer.opened_with_error
    assert observer.tokens() == (None, None)


@pytest.mark.parametrize("code", ["server_error", "rate_limit_exceeded", "vector_store_timeout", None])
def test_a_failure_another_attempt_may_not_meet_is_retried(code: str | None) -> None:
    failed = _response("failed", None)
    failed["response"]["error"] = None if code is None else {"code": code, "message": "x"}
    observer = StreamObserver("responses")
    observer.observe(_event("response.failed", failed))
    assert observer.error and observer.opened_with_error


@pytest.mark.parametrize("code", ["invalid_prompt", "invalid_image_url", "image_too_large", "some_new_code"])
def test_a_failure_of_the_request_itself_is_not_retried(code: str) -> None:
    # The request would fail on every target (and be billed on each): the client gets it, as a stream's error.
    failed = _response("failed", None)
    failed["response"]["error"] = {"code": code, "message": "x"}
    observer = StreamObserver("responses")
    observer.observe(_event("response.created", _response("in_progress", None)))
    observer.observe(_event("response.failed", failed))
    assert observer.error and not observer.opened_with_error
    assert observer.committed


def test_a_failed_response_right_after_the_opening_state_is_the_stream_s_first_event() -> None:
    observer = StreamObserver("responses")
    observer.observe(_event("response.created", _response("in_progress", None)))
    observer.observe(_event("response.in_progress", _response("in_progress", None)))
    before_failure = observer.committed  # the response's state only: the failover may still retry
    observer.observe(_event("response.failed", _response("failed", USAGE)))
    assert (before_failure, observer.committed, observer.error, observer.opened_with_error) == (False, True, True, True)
    assert observer.tokens() == (11, 4)


def test_a_failed_response_after_the_first_output_is_an_error_with_its_usage() -> None:
    observer = StreamObserver("responses")
    observer.observe(_event("response.created", _response("in_progress", None)))
    observer.observe(SSEEvent("response.output_item.added", '{"type":"response.output_item.added"}', "", b""))
    assert observer.committed
    observer.observe(_event("response.failed", _response("failed", USAGE)))
    assert observer.error and not observer.opened_with_error
    assert observer.tokens() == (11, 4)
    assert observer.log_fields().endswith("end=error")


def test_unreadable_responses_events_are_counted_never_raised() -> None:
    observer = StreamObserver("responses")
    observer.observe(SSEEvent("response.completed", "not json", "", b""))
    observer.observe(SSEEvent("response.completed", '{"response":{"usage":[1]}}', "", b""))
    observer.observe(SSEEvent("message", '{"type":7}', "", b""))
    deep = '{"response":{"usage":{"input_tokens":' + "[" * 5000 + "]" * 5000 + "}}}"
    observer.observe(SSEEvent("response.completed", deep, "", b""))
    assert (observer.events, observer.malformed) == (4, 4)
    assert observer.tokens() == (None, None)


def test_tokens_of_a_chat_completions_stream() -> None:
    observer = StreamObserver("openai")
    observer.observe(SSEEvent("message", '{"choices":[{"delta":{"content":"Hi"}}]}', "", b""))
    observer.observe(
        SSEEvent(
            "message", '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}', "", b""
        )
    )
    assert observer.tokens() == (5, 3)


def test_usage_written_with_spaces_counts_and_usage_null_chunks_are_skipped() -> None:
    # json.dumps's default separators, as some OpenAI-compatible servers write them; OpenAI's own chunks carry
    # `"usage":null` on every chunk when the client asked for usage.
    observer = StreamObserver("openai")
    observer.observe(SSEEvent("message", '{"choices":[{"delta":{"content":"Hi"}}],"usage":null}', "", b""))
    observer.observe(SSEEvent("message", json.dumps({"choices": [], "usage": {"prompt_tokens": 5}}), "", b""))
    observer.observe(SSEEvent("message", '{"choices": [], "usage": null}', "", b""))
    assert observer.tokens() == (5, None)
    assert observer.malformed == 0


def test_tokens_of_a_messages_stream_take_the_last_output_count() -> None:
    observer = StreamObserver("anthropic")
    start = '{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}'
    observer.observe(SSEEvent("message_start", start, "", b""))
    observer.observe(SSEEvent("message_delta", '{"type":"message_delta","usage":{"output_tokens":3}}', "", b""))
    assert observer.tokens() == (9, 3)


@pytest.mark.parametrize("usage", ['{"prompt_tokens":true,"completion_tokens":-1}', '{"prompt_tokens":"5"}', "{}"])
def test_counts_that_are_no_counts_are_unknown(usage: str) -> None:
    observer = StreamObserver("openai")
    observer.observe(SSEEvent("message", '{"choices":[],"usage":' + usage + "}", "", b""))
    assert observer.tokens() == (None, None)


def test_a_stream_without_usage_has_unknown_tokens() -> None:
    assert StreamObserver("responses").tokens() == (None, None)


@pytest.mark.parametrize(
    ("opening", "first"),
    [
        ('{"choices":[{"delta":{"role":"assistant","content":""}}]}', '{"choices":[{"delta":{"content":"Hi"}}]}'),
        ('{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}', '{"choices":[{"delta":{"content":"Hi"}}]}'),
        ('{"choices":[{"delta":{"role":"assistant"}}]}', '{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}'),
        ('{"choices": [{"delta": {"content": ""}}]}', '{"choices": [{"delta": {"reasoning_content": "hm"}}]}'),
        ('{"choices":[{"text":"","index":0}]}', '{"choices":[{"text":"Hi","index":0}]}'),
    ],
    ids=["role-chunk", "azure-filter-results", "tool-call", "reasoning-spaced", "completions"],
)
def test_the_first_token_is_the_first_generated_output(opening: str, first: str) -> None:
    observer = StreamObserver("openai")
    observer.observe(SSEEvent("message", opening, "", b""))
    before = observer.first_token
    observer.observe(SSEEvent("message", first, "", b""))
    assert before is None and observer.first_token is not None
