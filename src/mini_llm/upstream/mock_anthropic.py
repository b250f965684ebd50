"""The mock's Anthropic Messages API: a text or a tool_use block, whole or as the named event stream.

Shapes: https://docs.anthropic.com/en/api/messages, streaming events:
https://docs.anthropic.com/en/api/messages-streaming, tool use:
https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use
"""

from __future__ import annotations

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
from mini_llm.upstream.mock_schema import tool_arguments


def messages(request: dict[str, Any], model: str, delay: float) -> MockReply:
    mid = f"msg_mock_{request_id(request)}"
    call = _tool_use(request, mid)
    if call is None:
        words = tokens(request, "max_tokens")
        block: dict[str, Any] = {"type": "text", "text": "".join(words)}
        opening: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": word} for word in words]
        stop = "end_turn"
    else:
        block, opening = call, {**call, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in pieces(encode(call["input"]).decode())]
        stop = "tool_use"
    usage = {"input_tokens": prompt_tokens(request), "output_tokens": len(deltas)}
    message: dict[str, Any] = {"id": mid, "type": "message", "role": "assistant", "model": model}
    if not request.get("stream"):
        body = {**message, "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": usage}
        return MockReply(200, JSON, encode(body))
    so_far = {**usage, "output_tokens": 1}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": so_far}
    frames = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse({"type": "content_block_start", "index": 0, "content_block": opening}, "content_block_start"),
        sse({"type": "ping"}, "ping"),
    ]
    frames += [sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta") for d in deltas]
    frames += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": len(deltas)},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return MockReply(200, SSE, stream=paced(frames, delay))


def count_tokens(request: dict[str, Any]) -> MockReply:
    return MockReply(200, JSON, encode({"input_tokens": prompt_tokens(request)}))


def _tool_use(request: dict[str, Any], mid: str) -> dict[str, Any] | None:
    """A call of the first client tool (or the one tool_choice names) while no tool_result is in yet.

    Its input is the smallest one valid for the tool's input_schema, free strings "mock", so a client
    can run the tool and send a tool_result; that turn is answered with text.
    """
    tools, choice = request.get("tools"), request.get("tool_choice")
    if not isinstance(tools, list) or _answers_tool_result(request.get("messages")):
        return None
    named: Any = None
    if isinstance(choice, dict):
        if choice.get("type") == "none":
            return None
        named = choice.get("name") if choice.get("type") == "tool" else None
    # Server tools (web search, code execution, ...) have no input_schema: the mock runs none of them.
    tool = named_tool(
        (tool for tool in tools if isinstance(tool, dict) and isinstance(tool.get("input_schema"), dict)), named
    )
    if tool is None:
        return None
    arguments = tool_arguments(tool["input_schema"], "tools.input_schema", every_property=False)
    return {"type": "tool_use", "id": f"toolu_mock_{mid[-12:]}", "name": tool["name"], "input": arguments}


def _answers_tool_result(turns: Any) -> bool:
    """Whether the last turn is the user's with tool_result blocks: the tool ran, its result is in."""
    last = turns[-1] if isinstance(turns, list) and turns else None
    if not isinstance(last, dict) or last.get("role") != "user" or not isinstance(last.get("content"), list):
        return False
    return any(isinstance(block, dict) and block.get("type") == "tool_result" for block in last["content"])
