"""Python heap measured with tracemalloc around one asyncio scenario, for tests of what stays in memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_traced(scenario: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(scenario)` with tracemalloc on, so the scenario can read `traced_bytes()`."""
    tracemalloc.start()
    try:
        return asyncio.run(scenario)
    finally:
        tracemalloc.stop()


def traced_bytes() -> int:
    """The bytes of the Python objects allocated since tracing began and still alive."""
    return tracemalloc.get_traced_memory()[0]


def retained_while_the_provider_is_silent(
    consume: Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, None]], reads: list[bytes], last: bytes
) -> int:
    """The bytes still alive while a consumer of a provider's reads waits for the next one.

    `consume` takes the reads as an async iterator; the provider hands over `reads` (fresh objects:
    only the consumer's frames keep them), then goes silent until the measurement is taken, then
    sends `last`.
    """

    async def scenario() -> int:
        idle, go_on = asyncio.Event(), asyncio.Event()
        before = 0

        async def provider() -> AsyncIterator[bytes]:
            nonlocal before
            before = traced_bytes()
            while reads:
                yield reads.pop(0)  # the list lets go of each read as it is handed on
            idle.set()
            await go_on.wait()
            yield last

        task = asyncio.create_task(consume(provider()))
        await idle.wait()
        retained = traced_bytes() - before
        go_on.set()
        await task
        return retained

    return run_traced(scenario())
