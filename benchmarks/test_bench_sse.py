"""SSE splitter throughput, compiled vs pure side by side: a 1 MB OpenAI stream at four read sizes
and an Anthropic tool-use stream."""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

import pytest
from tests.hotpath.sse_cases import anthropic_stream

if TYPE_CHECKING:
    from conftest import HotPathImpl
    from pytest_benchmark.fixture import BenchmarkFixture

TOKENS = [" the", " gateway", " streams", " tokens", ",", " and", " café", " 😀", " 東京", ".", "\n\n", " is"]


def compact(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def openai_chat_stream(target_size: int, seed: int = 0) -> bytes:
    """`data: <chunk>` per token as OpenAI sends it, then the usage chunk and `data: [DONE]`."""
    rng = random.Random(seed)
    head: dict[str, Any] = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_f9f4fb6dbf",
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + compact({**head, "choices": [choice], "usage": None}) + b"\n\n"

    parts = [event({"role": "assistant", "content": "", "refusal": None})]
    size = len(parts[0])
    tokens = 0
    while size < target_size:
        parts.append(event({"content": rng.choice(TOKENS)}))
        size += len(parts[-1])
        tokens += 1
    parts.append(event({}, "stop"))
    usage = {"prompt_tokens": 1234, "completion_tokens": tokens, "total_tokens": 1234 + tokens}
    parts.append(b"data: " + compact({**head, "choices": [], "usage": usage}) + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def anthropic_tool_stream(json_deltas: int, seed: int = 0) -> list[bytes]:
    """Text then a tool_use block fed by `json_deltas` input_json_delta events, one event per chunk:
    a provider flushes each event, so that is what the gateway's reads see."""
    rng = random.Random(seed)
    content = "".join(rng.choice(TOKENS) for _ in range(4 * json_deltas))
    arguments = json.dumps({"path": "src/app.py", "content": content}, ensure_ascii=False)
    step = -(-len(arguments) // json_deltas)
    fragments = [arguments[i : i + step] for i in range(0, len(arguments), step)]
    stream = anthropic_stream([rng.choice(TOKENS) for _ in range(40)], fragments)
    # JSON escapes newlines inside strings, so a blank line only ever ends a frame.
    return [frame + b"\n\n" for frame in stream.split(b"\n\n") if frame]


OPENAI = openai_chat_stream(1 << 20)
OPENAI_EVENTS = OPENAI.count(b"\n\n")
READ_SIZES = [
    pytest.param(size, id=label, marks=pytest.mark.benchmark(group=f"sse/openai-1MB/{label}"))
    for size, label in [(1, "1B"), (7, "7B"), (1400, "1400B"), (64 * 1024, "64KB")]
]


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", READ_SIZES)
def test_openai_stream(benchmark: BenchmarkFixture, hotpath_impl: HotPathImpl, size: int) -> None:
    chunks = split(OPENAI, size)

    def run() -> tuple[int, int]:
        splitter = hotpath_impl.SSESplitter()
        # map() keeps the harness loop in C, so the time is the splitter's, not the loop's.
        count = sum(map(len, map(splitter.feed, chunks)))
        return count, splitter.pending

    assert benchmark(run) == (OPENAI_EVENTS, 0)


ANTHROPIC = anthropic_tool_stream(2000)
DELTAS = sum(chunk.startswith(b"event: content_block_delta\n") for chunk in ANTHROPIC)


@pytest.mark.benchmark(group="sse/anthropic-tools")
def test_anthropic_tool_stream(benchmark: BenchmarkFixture, hotpath_impl: HotPathImpl) -> None:
    def run() -> tuple[int, int, str]:
        splitter = hotpath_impl.SSESplitter()
        partial_json = 0
        last = ""
        for chunk in ANTHROPIC:
            for event in splitter.feed(chunk):
                partial_json += event.event == "content_block_delta"
                last = event.event
        return partial_json, splitter.pending, last

    assert benchmark(run) == (DELTAS, 0, "message_stop")
