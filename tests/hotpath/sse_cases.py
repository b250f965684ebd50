"""SSE inputs shared by the hot-path tests: vectors for the event-stream rules and captured-looking streams.

The rules are WHATWG HTML §9.2.6, "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Protocol


class SplitterLike(Protocol):
    """What the tests use of either twin's splitter, so one helper drives both."""

    def feed(self, chunk: bytes) -> list[Any]: ...
    @property
    def retry(self) -> int | None: ...
    @property
    def last_event_id(self) -> str: ...
    @property
    def pending(self) -> int: ...


@dataclass(frozen=True)
class Vector:
    number: int
    name: str
    chunks: tuple[bytes, ...]
    events: tuple[tuple[str, str, str], ...]  # (type, data, last event id)
    pending: int = 0
    retry: int | None = None

    @property
    def param_id(self) -> str:
        return f"{self.number:02d}-{self.name.replace(' ', '-')}"


def _v(
    number: int,
    name: str,
    chunks: list[bytes],
    events: list[tuple[str, str]] | list[tuple[str, str, str]],
    *,
    pending: int = 0,
    retry: int | None = None,
) -> Vector:
    full = tuple((e[0], e[1], e[2] if len(e) == 3 else "") for e in events)
    return Vector(number, name, tuple(chunks), full, pending, retry)


M = "message"

# Line ends, UTF-8 and the BOM, field parsing, dispatch and end of stream as WHATWG HTML §9.2.6 specifies them;
# `pending` is what a stream cut at that EOF leaves unconsumed.
VECTORS: tuple[Vector, ...] = (
    _v(1, "basic", [b"data: hello\n\n"], [(M, "hello")]),
    _v(2, "crlf", [b"data: a\r\n\r\n"], [(M, "a")]),
    _v(3, "cr only", [b"data: a\r\rdata: b\r\r"], [(M, "a"), (M, "b")]),
    _v(4, "mixed eol", [b"data: a\r\ndata: b\rdata: c\n\n"], [(M, "a\nb\nc")]),
    _v(5, "CRLF split", [b"data: a\r", b"\ndata: b\n\n"], [(M, "a\nb")]),
    _v(6, "CR at chunk end", [b"data: a\r\n\r"], [(M, "a")]),
    _v(7, "CRLF then LF", [b"data: a\r\n\ndata: b\n\n"], [(M, "a"), (M, "b")]),
    _v(8, "LF then CR", [b"data: a\n\rdata: b\n\n"], [(M, "a"), (M, "b")]),
    _v(9, "utf8 2-byte", [b"data: caf\xc3", b"\xa9\n\n"], [(M, "café")]),
    _v(10, "utf8 4-byte", [b"data: \xf0\x9f", b"\x98", b"\x80!\n\n"], [(M, "😀!")]),
    _v(11, "invalid utf8", [b"data: \xff\n\n"], [(M, "\ufffd")]),
    _v(12, "BOM", [b"\xef\xbb\xbfdata: x\n\n"], [(M, "x")]),
    _v(13, "BOM split", [b"\xef", b"\xbb\xbfdata: x\n\n"], [(M, "x")]),
    _v(14, "two BOMs", [b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"], []),
    _v(15, "BOM mid-stream", [b"data: a\n\n\xef\xbb\xbfdata: b\n\n"], [(M, "a")]),
    _v(16, "one space only", [b"data:  two\n\n"], [(M, " two")]),
    _v(17, "no space", [b"data:x\n\n"], [(M, "x")]),
    _v(18, "tab kept", [b"data:\tx\n\n"], [(M, "\tx")]),
    _v(19, "trailing space", [b"data: a \n\n"], [(M, "a ")]),
    _v(20, "split at colon", [b"data:", b" x\n\n"], [(M, "x")]),
    _v(21, "split in name", [b"da", b"ta: x\n\n"], [(M, "x")]),
    _v(22, "colon in value", [b"data: a:b: c\n\n"], [(M, "a:b: c")]),
    _v(23, "multi-line data", [b"data: a\ndata:\ndata: b\n\n"], [(M, "a\n\nb")]),
    _v(24, "comments", [b": ping\n\n", b": OPENROUTER PROCESSING\n\ndata: x\n\n"], [(M, "x")]),
    _v(25, "comment inside", [b"data: a\n: c\ndata: b\n\n"], [(M, "a\nb")]),
    _v(26, "no colon", [b"data\n\n"], [(M, "")]),
    _v(27, "no colon twice", [b"data\ndata\n\n"], [(M, "\n")]),
    _v(28, "event without data", [b"event: foo\n\n", b"data: x\n\n"], [(M, "x")]),
    _v(29, "named event", [b"event: message_start\ndata: {}\n\n"], [("message_start", "{}")]),
    _v(30, "empty event name", [b"event:\ndata: x\n\n"], [(M, "x")]),
    _v(31, "case unknown", [b"Data: x\nfoo: bar\n\n"], []),
    _v(32, "id persists", [b"id: 1\ndata: a\n\ndata: b\n\n"], [(M, "a", "1"), (M, "b", "1")]),
    _v(33, "id with NUL", [b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\n"], [(M, "a", "7"), (M, "b", "7")]),
    _v(34, "id reset", [b"id: 7\ndata: a\n\nid\ndata: b\n\n"], [(M, "a", "7"), (M, "b", "")]),
    _v(35, "retry", [b"retry: 3000\ndata: x\n\nretry: 3s\n\n"], [(M, "x")], retry=3000),
    _v(36, "NUL in data", [b"data: a\x00b\n\n"], [(M, "a\x00b")]),
    _v(37, "many per chunk", [b"data: 1\n\ndata: 2\n\ndata: 3\n\n"], [(M, "1"), (M, "2"), (M, "3")]),
    _v(38, "empty chunks", [b"", b"data: x\n", b"", b"\n"], [(M, "x")]),
    _v(39, "DONE untouched", [b"data: [DONE]\n\n"], [(M, "[DONE]")]),
    _v(40, "EOF no blank", [b"data: a\n\ndata: b\n"], [(M, "a")], pending=len(b"data: b\n")),
    _v(41, "EOF no newline", [b"data: a"], [], pending=len(b"data: a")),
)


def openai_stream(words: list[str], *, model: str = "gpt-4o-mini-2024-07-18") -> bytes:
    """A chat.completion.chunk stream as OpenAI sends it: one token per event, usage, then [DONE]."""
    base: dict[str, Any] = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        body = {**base, "choices": choices, "usage": usage}
        return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    delta = {"role": "assistant", "content": "", "refusal": None}
    parts = [event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])]
    parts += [event([{"index": 0, "delta": {"content": w}, "logprobs": None, "finish_reason": None}]) for w in words]
    parts.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    usage = {"prompt_tokens": 19, "completion_tokens": len(words), "total_tokens": 19 + len(words)}
    parts.append(event([], usage))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def anthropic_stream(text: list[str], tool_json: list[str]) -> bytes:
    """A Messages stream with a text block, a tool_use block fed by input_json_delta, and pings."""

    def event(name: str, body: dict[str, Any]) -> bytes:
        payload = json.dumps({"type": name, **body}, ensure_ascii=False, separators=(",", ":"))
        return b"event: " + name.encode() + b"\ndata: " + payload.encode() + b"\n\n"

    message: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 2},
    }
    parts = [event("message_start", {"message": message})]
    parts.append(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    parts.append(event("ping", {}))
    for i, t in enumerate(text):
        parts.append(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": t}}))
        if i % 7 == 3:
            parts.append(b": keep-alive\n\n")
    parts.append(event("content_block_stop", {"index": 0}))
    tool = {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}
    parts.append(event("content_block_start", {"index": 1, "content_block": tool}))
    for frag in tool_json:
        delta = {"type": "input_json_delta", "partial_json": frag}
        parts.append(event("content_block_delta", {"index": 1, "delta": delta}))
    parts.append(event("content_block_stop", {"index": 1}))
    stop = {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 89}}
    parts.append(event("message_delta", stop))
    parts.append(event("message_stop", {}))
    return b"".join(parts)


ANTHROPIC_TEXT = ["Je ", "vais ", "vérifier ", "la météo ", "à ", "Zürich ", "☀️", " et ", "東京", " 🌧️", "."]
ANTHROPIC_TOOL_JSON = ["", '{"loc', 'ation": "Z', "ürich, CH", '", "unit": "c', 'elsius"}']
OPENAI_WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?", " café", " 😀"]


def byte_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int, max_size: int = 17) -> list[bytes]:
    """Cut `data` at seeded random positions (including empty pieces), reproducible from `seed`."""
    rng = random.Random(seed)
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        size = rng.randint(0, max_size)
        out.append(data[pos : pos + size])
        pos += size
    return out


def feed_all(splitter: SplitterLike, chunks: list[bytes]) -> list[Any]:
    events: list[Any] = []
    for chunk in chunks:
        events.extend(splitter.feed(chunk))
    return events


def triples(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.event, e.data, e.id) for e in events]
