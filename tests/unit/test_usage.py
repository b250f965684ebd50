"""Token counts of whole (non-stream) answers, in every API's naming; never an exception, never a bad count."""

from __future__ import annotations

import json

import pytest

from mini_llm.gateway.usage import body_tokens

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
}
EMBEDDINGS = {"object": "list", "data": [{"embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 3, "total_tokens": 3}}
MESSAGES = {
    "id": "msg_1",
    "type": "message",
    "content": [{"type": "text", "text": "Hi"}],
    "usage": {"input_tokens": 9, "output_tokens": 2, "cache_read_input_tokens": 0},
}
RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi", "annotations": []}]}],
    "usage": {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 26,
    },
}


@pytest.mark.parametrize(
    ("answer", "tokens"),
    [(CHAT, (12, 5)), (EMBEDDINGS, (3, None)), (MESSAGES, (9, 2)), (RESPONSES, (20, 6))],
    ids=["chat", "embeddings", "messages", "responses"],
)
def test_each_api_s_usage_names(answer: dict[str, object], tokens: tuple[int | None, int | None]) -> None:
    assert body_tokens(json.dumps(answer).encode()) == tokens


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"usage": null}',
        b'{"usage": 5}',
        b'{"usage": {"prompt_tokens": -1}}',
        b'{"usage": {"prompt_tokens": true}}',
        b'{"usage": {"prompt_tokens": "12"}}',
        b'{"usage": {"prompt_tokens": 1.5}}',
        b'{"choices": []}',
        b'{"usage": {"prompt_tokens": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
        b'{"error": {"message": "x"}} trailing',
    ],
)
def test_a_body_without_readable_usage_has_unknown_counts(body: bytes) -> None:
    assert body_tokens(body) == (None, None)


def test_the_other_members_are_skipped_whatever_they_hold() -> None:
    # `usage` after a large output, with nested values of any kind before it.
    body = json.dumps({"output": [{"text": "x" * 10_000, "n": [None, True, 1.5]}], "usage": CHAT["usage"]})
    assert body_tokens(body.encode()) == (12, 5)
