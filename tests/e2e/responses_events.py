"""The Responses API's answers as a provider sends them, for the fake providers of the tests.

Event names, order and payloads follow https://platform.openai.com/docs/api-reference/responses-streaming:
created, in_progress, an output message's item and text part, its deltas, their ends, then completed
with the whole response and its usage. Every event carries its `sequence_number`, counted from 0.
"""

from __future__ import annotations

import json
from typing import Any

USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 14,
}


def response_object(
    model: str, text: str | None, status: str = "completed", response_id: str = "resp_fake"
) -> dict[str, Any]:
    """A response: `text` as its one output message (none while in progress), usage once it is complete."""
    message = {
        "id": "msg_fake",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    done = status != "in_progress"
    return {
        "id": response_id,
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": model,
        "output": [message] if done and text is not None else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "usage": USAGE if done else None,
    }


def _frame(name: str, sequence: int, data: dict[str, Any]) -> bytes:
    body = {"type": name, "sequence_number": sequence, **data}
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def stream_frames(model: str, words: tuple[str, ...] = ("ok", " from ", "responses")) -> list[bytes]:
    """The events of a good stream whose text is `words` joined, one frame each."""
    text = "".join(words)
    at = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    item = {"id": "msg_fake", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response_object(model, None, "in_progress")}),
        ("response.in_progress", {"response": response_object(model, None, "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {**at, "part": part}),
        *(("response.output_text.delta", {**at, "delta": word, "logprobs": []}) for word in words),
        ("response.output_text.done", {**at, "text": text, "logprobs": []}),
        ("response.content_part.done", {**at, "part": {**part, "text": text}}),
        ("response.output_item.done", {"output_index": 0, "item": response_object(model, text)["output"][0]}),
        ("response.completed", {"response": response_object(model, text)}),
    ]
    return [_frame(name, sequence, data) for sequence, (name, data) in enumerate(steps)]


def error_frame(code: str = "server_error", message: str = "The server had an error", sequence: int = 0) -> bytes:
    """The stream's `error` event, as the provider sends it when it fails."""
    return _frame("error", sequence, {"code": code, "message": message, "param": None})


def failed_frame(model: str, sequence: int = 0, code: str = "server_error") -> bytes:
    """`response.failed`: the response's end, with its status `failed` and the error that ended it."""
    failed = {**response_object(model, None, "failed"), "error": {"code": code, "message": "failed"}}
    return _frame("response.failed", sequence, {"response": failed})
