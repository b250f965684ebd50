"""Model rewrite of a 1 KB and a 5 MB chat body: msgspec raw top level (what the gateway runs) vs a stdlib
json decode/modify/encode round trip."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from mini_llm.gateway.rewrite import read_envelope, with_model

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

CLIENT_MODEL = "fast"
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
WORDS = ["the", "gateway", "forwards", "requests", "café", "naïve", "東京", "😀", "Ünïcödé", "tokens", "stream", "\n"]


def chat_body(target_size: int, seed: int = 0) -> bytes:
    """A chat request as an SDK sends it (compact, UTF-8), grown with conversation turns to `target_size`.

    `model` sits after `messages`, as many clients serialise it, so a rewrite has to get past them.
    """
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    def turn(index: int, words: int) -> dict[str, Any]:
        if index % 3 == 2:
            arguments = json.dumps({"query": text(8), "limit": 5, "filters": {"lang": "fr"}}, ensure_ascii=False)
            function = {"name": "search", "arguments": arguments}
            call = {"id": f"call_{index:06d}", "type": "function", "function": function}
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        role = "user" if index % 3 == 0 else "assistant"
        return {"role": role, "content": [{"type": "text", "text": text(words)}], "name": f"turn-{index}"}

    request: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer in French: « oui » ou « non »."}
        ],
        "model": CLIENT_MODEL,
        "temperature": 0.2,
        "max_tokens": 512,
        "stream": True,
        "stream_options": {"include_usage": True},
        "metadata": {"user": "u-42", "trace": {"model": "decoy", "span": [1, 2.5, None, True]}},
    }
    words = 10 if target_size < 64 * 1024 else 400
    index = 0
    while len(encode(request)) < target_size:
        request["messages"].append(turn(index, words))
        index += 1
        if target_size >= 64 * 1024:
            # Grow in big steps; the exact size does not matter, the order of magnitude does.
            for _ in range(200):
                request["messages"].append(turn(index, words))
                index += 1
    return encode(request)


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def msgspec_rewrite(body: bytes) -> bytes:
    # with_model mutates the envelope, so each round reads it again; that is also what a request does.
    return with_model(read_envelope(body), UPSTREAM_MODEL)


def stdlib_rewrite(body: bytes) -> bytes:
    request = json.loads(body)
    request["model"] = UPSTREAM_MODEL
    return encode(request)


IMPLEMENTATIONS: dict[str, Callable[[bytes], bytes]] = {"msgspec": msgspec_rewrite, "stdlib": stdlib_rewrite}
SIZES = {"1KB": 1024, "5MB": 5 * 1024 * 1024}
BODIES = {label: chat_body(size) for label, size in SIZES.items()}


@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize(
    "size", [pytest.param(label, marks=pytest.mark.benchmark(group=f"rewrite/{label}")) for label in SIZES]
)
def test_rewrite(benchmark: BenchmarkFixture, size: str, impl: str) -> None:
    body = BODIES[size]
    expected = body.replace(b'"model":"fast"', f'"model":"{UPSTREAM_MODEL}"'.encode(), 1)
    assert len(body) >= SIZES[size]
    assert expected != body

    out = benchmark(IMPLEMENTATIONS[impl], body)

    assert len(out) == len(body) + len(UPSTREAM_MODEL) - len(CLIENT_MODEL)
    assert out == expected
    decoded = json.loads(out)
    assert decoded["model"] == UPSTREAM_MODEL
    assert decoded["metadata"]["trace"]["model"] == "decoy"
