"""relay_stream over a 1 MB OpenAI stream, as the gateway reads it: the split, the budget, the scrub, the sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from mini_llm.asgi import Message
from mini_llm.gateway.observer import StreamObserver
from mini_llm.gateway.open_streams import OpenStreams
from mini_llm.gateway.relay import EventRelay, relay_stream
from test_bench_sse import OPENAI, split

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

SECRET = b"sk-bench-provider-key-0123456789"
READ_SIZES = [
    pytest.param(size, id=label, marks=pytest.mark.benchmark(group=f"relay/openai-1MB/{label}"))
    for size, label in [(1400, "1400B"), (64 * 1024, "64KB")]
]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("size", READ_SIZES)
def test_relay_stream(benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, size: int) -> None:
    chunks = split(OPENAI, size)
    streams = OpenStreams(64 * 1024 * 1024)

    async def run() -> int:
        sent = 0

        async def send(message: Message) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))

        async def source() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        with streams.open() as stream:
            await relay_stream(send, [], source(), EventRelay(StreamObserver("openai"), SECRET, stream))
        return sent

    assert benchmark(lambda: loop.run_until_complete(run())) == len(OPENAI)
