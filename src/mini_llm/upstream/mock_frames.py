"""What every protocol of the built-in mock shares: the reply, its words, SSE frames and pacing."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

WORDS: Final = ("Hello", " from", " the", " mini-llm", " mock", " provider", ".")
DEFAULT_TOKENS: Final = len(WORDS)
MAX_TOKENS: Final = 4096
SSE: Final = b"text/event-stream"
JSON: Final = b"application/json"
# Structured text (JSON answers, tool arguments) streams in pieces of this many characters, a token each.
PIECE_CHARS: Final = 8

encode = msgspec.json.encode


@dataclass(slots=True)
class MockReply:
    """What the mock answers: a whole JSON body, or an SSE stream of chunks."""

    status: int
    content_type: bytes
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def int_field(request: dict[str, Any], name: str, default: int, high: int) -> int:
    value = request.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return max(1, min(value, high))


def tokens(request: dict[str, Any], *limits: str) -> list[str]:
    """The answer's words: as many as the first limit field the request sets asks for (WORDS by default)."""
    name = limits[-1]
    for limit in limits:
        if limit in request:
            name = limit
            break
    count = int_field(request, name, DEFAULT_TOKENS, MAX_TOKENS)
    return [WORDS[i % len(WORDS)] for i in range(count)]


def pieces(text: str) -> list[str]:
    """Structured text cut like a token stream; a JSON answer is never cut short by a token limit."""
    return [text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)] or [""]


def prompt_tokens(request: dict[str, Any]) -> int:
    """A stable stand-in for a tokenizer: about four bytes a token."""
    return max(1, len(encode(request.get("messages") or request.get("prompt") or request.get("input"))) // 4)


def request_id(request: dict[str, Any]) -> str:
    return hashlib.blake2s(encode(request), digest_size=8).hexdigest()


def named_tool(candidates: Iterable[Any], named: Any) -> dict[str, Any] | None:
    """The first candidate that is an object with a string `name` (the one `named`, when a choice names one)."""
    return next(
        (
            tool
            for tool in candidates
            if isinstance(tool, dict) and isinstance(tool.get("name"), str) and (named is None or tool["name"] == named)
        ),
        None,
    )


def sse(data: Any, event: str | None = None) -> bytes:
    frame = b"data: " + encode(data) + b"\n\n"
    return b"event: " + event.encode() + b"\n" + frame if event else frame


async def paced(frames: list[bytes], delay: float) -> AsyncIterator[bytes]:
    """The first frame at once, as providers send their opening event, then one per `delay`."""
    for index, frame in enumerate(frames):
        if delay and index:
            await asyncio.sleep(delay)
        yield frame
