"""Request bodies, the canned upstream answers and the whole-stream check, all in the mock's shape."""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec

from mini_llm.upstream import mock_provider as mock

MODEL: Final = "gpt-4o-mini"
# The mock streams a role chunk, one chunk per token, a stop chunk and [DONE]: 47 tokens make 50 events.
STREAM_TOKENS: Final = 47
STREAM_EVENTS: Final = STREAM_TOKENS + 3
EXPECTED_TEXT: Final = "".join(mock.WORDS[i % len(mock.WORDS)] for i in range(STREAM_TOKENS))
_MESSAGES: Final = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Say hello in a few words."},
]


def request_body(stream: bool, model: str = MODEL, max_tokens: int = STREAM_TOKENS) -> bytes:
    body: dict[str, object] = {"model": model, "messages": _MESSAGES, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
    return msgspec.json.encode(body)


async def _collect(body: bytes) -> bytes:
    reply = mock.respond("/chat/completions", body, MODEL, 0.0)
    assert reply.stream is not None
    return b"".join([frame async for frame in reply.stream])


def canned_json() -> bytes:
    """What the mock upstream answers to the non-stream request, for the raw upstream to serve as a constant."""
    return mock.respond("/chat/completions", request_body(False), MODEL, 0.0).body


def canned_sse() -> bytes:
    """The mock's 50-event stream, for the raw upstream to serve as a constant."""
    return asyncio.run(_collect(request_body(True)))


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


_CHUNK: Final = msgspec.json.Decoder(_Chunk)


def check_stream(data: bytes) -> tuple[bool, int]:
    """(arrived whole, event count): every event is a chunk, the text is the full answer, one stop, then [DONE].

    Re-serialising proxies (LiteLLM) may change the event count, so the text and the ending decide.
    """
    events = [event for event in data.split(b"\n\n") if event.strip()]
    if not data.endswith(b"\n\n") or not events or events[-1] != b"data: [DONE]":
        return False, len(events)
    text: list[str] = []
    stops = 0
    for event in events[:-1]:
        if not event.startswith(b"data: "):
            return False, len(events)
        try:
            chunk = _CHUNK.decode(event[6:])
        except msgspec.DecodeError:
            return False, len(events)
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            stops += choice.finish_reason == "stop"
    return "".join(text) == EXPECTED_TEXT and stops == 1, len(events)
