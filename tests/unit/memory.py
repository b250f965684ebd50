"""Python heap measured with tracemalloc around one asyncio scenario, for tests of what stays in memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Coroutine
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
