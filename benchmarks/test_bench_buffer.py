"""Request-body buffering, compiled vs pure side by side, for bodies arriving in 16 KB ASGI chunks."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import HotPathImpl
    from pytest_benchmark.fixture import BenchmarkFixture

CHUNK = 16 * 1024
LIMIT = 32 * 1024 * 1024


def body(size: int) -> bytes:
    return random.Random(size).randbytes(size)


CASES = [
    pytest.param(1024, True, id="1KB", marks=pytest.mark.benchmark(group="buffer/1KB")),
    pytest.param(100 * 1024, True, id="100KB", marks=pytest.mark.benchmark(group="buffer/100KB")),
    pytest.param(10 * 1024 * 1024, True, id="10MB", marks=pytest.mark.benchmark(group="buffer/10MB")),
    pytest.param(
        10 * 1024 * 1024, False, id="10MB-no-length", marks=pytest.mark.benchmark(group="buffer/10MB-no-length")
    ),
]


@pytest.mark.parametrize(("size", "length_known"), CASES)
def test_buffer_body(benchmark: BenchmarkFixture, hotpath_impl: HotPathImpl, size: int, length_known: bool) -> None:
    data = body(size)
    chunks = [data[i : i + CHUNK] for i in range(0, size, CHUNK)]
    expected = size if length_known else -1

    def run() -> memoryview:
        buffer = hotpath_impl.BodyBuffer(LIMIT, expected)
        for chunk in chunks:
            buffer.append(chunk)
        return buffer.view()

    view = benchmark(run)
    assert view.nbytes == size
    assert view == data
    if len(chunks) == 1:
        assert view.obj is chunks[0]
