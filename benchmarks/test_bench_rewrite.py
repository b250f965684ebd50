"""Model rewrite of a 1 KB and a 5 MB chat body: the splice the gateway runs vs the top-level re-encode it ran
before (kept here as the baseline) and a stdlib json decode/modify/encode round trip."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from mini_llm.gateway.rewrite import Envelope, read_envelope, with_model

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


def indented(body: bytes) -> bytes:
    """The same request with each top-level member on its own line, so the member walk runs."""
    members = json.loads(body)
    return (
        b"{\n" + b",\n".join(b"  " + encode(key) + b": " + encode(value) for key, value in members.items()) + b"\n}\n"
    )


_BASELINE_ENCODER = msgspec.json.Encoder()


def reencode_with_model_baseline(envelope: Envelope, model: str) -> bytes:
    """The rewrite before the splice: swap the raw `model` and re-encode the top level (whitespace lost)."""
    envelope.fields["model"] = msgspec.Raw(_BASELINE_ENCODER.encode(model))
    return _BASELINE_ENCODER.encode(envelope.fields)


# Each implementation gets the body as the gateway holds it (a view of the receive buffer) and returns
# what it sends upstream: one buffer, or the splice's three views around the new value.
def splice_rewrite(body: memoryview) -> Sequence[bytes | memoryview]:
    return with_model(body, read_envelope(body), UPSTREAM_MODEL)


def reencode_baseline_rewrite(body: memoryview) -> Sequence[bytes | memoryview]:
    # The baseline mutates the envelope, so each round reads it again; that is also what a request does.
    return (reencode_with_model_baseline(read_envelope(body), UPSTREAM_MODEL),)


def stdlib_rewrite(body: memoryview) -> Sequence[bytes | memoryview]:
    request = json.loads(bytes(body))
    request["model"] = UPSTREAM_MODEL
    return (encode(request),)


IMPLEMENTATIONS: dict[str, Callable[[memoryview], Sequence[bytes | memoryview]]] = {
    "splice": splice_rewrite,
    "reencode-baseline": reencode_baseline_rewrite,
    "stdlib": stdlib_rewrite,
}
SIZES = {"1KB": 1024, "5MB": 5 * 1024 * 1024, "5MB-indented": 5 * 1024 * 1024}
BODIES = {label: chat_body(size) for label, size in SIZES.items()}
BODIES["5MB-indented"] = indented(BODIES["5MB-indented"])
# Whitespace between top-level members survives only the splice; the other two emit compact JSON.
KEEPS_WHITESPACE = {"splice"}


@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize(
    "size", [pytest.param(label, marks=pytest.mark.benchmark(group=f"rewrite/{label}")) for label in SIZES]
)
def test_rewrite(benchmark: BenchmarkFixture, size: str, impl: str) -> None:
    body = BODIES[size]
    if impl not in KEEPS_WHITESPACE:
        body = encode(json.loads(body)) if size.endswith("indented") else body
    assert body.count(b'"fast"') == 1
    expected = body.replace(b'"fast"', f'"{UPSTREAM_MODEL}"'.encode())
    assert len(BODIES[size]) >= SIZES[size]
    assert expected != body

    buffers = benchmark(IMPLEMENTATIONS[impl], memoryview(BODIES[size]))

    out = b"".join(buffers)
    assert len(out) == len(body) + len(UPSTREAM_MODEL) - len(CLIENT_MODEL)
    assert out == expected
    decoded = json.loads(out)
    assert decoded["model"] == UPSTREAM_MODEL
    assert decoded["metadata"]["trace"]["model"] == "decoy"
