"""The mock's OpenAI Responses API: a message or a function_call output item, whole or as the event stream.

Shapes: https://platform.openai.com/docs/api-reference/responses/object, the stream's events (each with
`type` and an increasing `sequence_number`, on named `event:` lines):
https://platform.openai.com/docs/api-reference/responses-streaming. The mock stores nothing (`store`
is false), so the by-id endpoints are not part of it.
"""

from __future__ import annotations

import time
from typing import Any

from mini_llm.upstream.mock_frames import (
    JSON,
    SSE,
    MockReply,
    encode,
    named_tool,
    paced,
    pieces,
    prompt_tokens,
    request_id,
    sse,
    tokens,
)
from mini_llm.upstream.mock_schema import json_answer, tool_arguments


def responses(request: dict[str, Any], model: str, delay: float) -> MockReply:
    rid = request_id(request)
    created = int(time.time())
    text_config = request.get("text")
    text_format: Any = text_config.get("format") if isinstance(text_config, dict) else None
    call = _function_call(request, rid)
    if call is None:
        structured = json_answer(_type(text_format), text_format, "text.format")
        parts = tokens(request, "max_output_tokens") if structured is None else pieces(structured)
        item = _message(f"msg_mock_{rid}", "".join(parts))
    else:
        parts, item = pieces(call["arguments"]), call
    prompt = prompt_tokens(request)
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": len(parts),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + len(parts),
    }
    opening = _response(request, model, rid, created, text_format)
    done = {**opening, "status": "completed", "completed_at": created, "output": [item], "usage": usage}
    if not request.get("stream"):
        return MockReply(200, JSON, encode(done))
    stream = _Events()
    stream.add("response.created", response=opening)
    stream.add("response.in_progress", response=opening)
    if call is None:
        _message_events(stream, item, parts)
    else:
        _call_events(stream, item, parts)
    stream.add("response.completed", response=done)
    return MockReply(200, SSE, stream=paced(stream.frames, delay))


def input_tokens(request: dict[str, Any]) -> MockReply:
    """POST /responses/input_tokens: the count a `responses` call with this body would report."""
    return MockReply(200, JSON, encode({"object": "response.input_tokens", "input_tokens": prompt_tokens(request)}))


class _Events:
    """The stream's frames, numbered in order from 0."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.frames.append(sse({"type": kind, "sequence_number": len(self.frames), **fields}, kind))


def _message_events(stream: _Events, item: dict[str, Any], parts: list[str]) -> None:
    where = {"item_id": item["id"], "output_index": 0}
    text = {**where, "content_index": 0}
    stream.add("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "content": []})
    stream.add("response.content_part.added", **text, part=_text_part(""))
    for part in parts:
        stream.add("response.output_text.delta", **text, delta=part, logprobs=[])
    stream.add("response.output_text.done", **text, text="".join(parts), logprobs=[])
    stream.add("response.content_part.done", **text, part=item["content"][0])
    stream.add("response.output_item.done", output_index=0, item=item)


def _call_events(stream: _Events, item: dict[str, Any], parts: list[str]) -> None:
    where = {"item_id": item["id"], "output_index": 0}
    stream.add("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "arguments": ""})
    for part in parts:
        stream.add("response.function_call_arguments.delta", **where, delta=part)
    stream.add("response.function_call_arguments.done", **where, arguments=item["arguments"])
    stream.add("response.output_item.done", output_index=0, item=item)


def _response(request: dict[str, Any], model: str, rid: str, created: int, text_format: Any) -> dict[str, Any]:
    """The response object as it opens (in progress, no output yet), echoing the request's settings."""
    tools, choice, parallel = request.get("tools"), request.get("tool_choice"), request.get("parallel_tool_calls")
    return {
        "id": f"resp_mock_{rid}",
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": text_format if isinstance(text_format, dict) else {"type": "text"}},
        "tool_choice": choice if choice is not None else "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }


def _message(item_id: str, text: str) -> dict[str, Any]:
    content = [_text_part(text)]
    return {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _type(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else None


def _function_call(request: dict[str, Any], rid: str) -> dict[str, Any] | None:
    """A call of the first function tool (or the one tool_choice names) until a function_call_output is in.

    Its arguments are the smallest ones valid for the tool's parameters (every property unless the tool
    says strict: false, as the API's strict default), free strings "mock"; the next turn gets text.
    """
    tools, choice, given = request.get("tools"), request.get("tool_choice"), request.get("input")
    if not isinstance(tools, list) or choice == "none":
        return None
    if isinstance(given, list) and given and _type(given[-1]) == "function_call_output":
        return None
    named = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "function" else None
    tool = named_tool((tool for tool in tools if _type(tool) == "function"), named)
    if tool is None:
        return None
    strict = tool.get("strict") is not False
    arguments = tool_arguments(tool.get("parameters"), "tools.parameters", every_property=strict)
    return {
        "id": f"fc_mock_{rid}",
        "type": "function_call",
        "status": "completed",
        "arguments": encode(arguments).decode(),
        "call_id": f"call_{rid[-12:]}",
        "name": tool["name"],
    }
