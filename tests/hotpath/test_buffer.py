"""BodyBuffer: zero-copy single chunk, linear growth, exact limit enforcement, no partial appends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mini_llm.hotpath.errors import BodyTooLarge

if TYPE_CHECKING:
    from conftest import HotPathImpl


def test_single_chunk_is_not_copied(hotpath_impl: HotPathImpl) -> None:
    chunk = b'{"model":"gpt-4o","messages":[]}'
    buffer = hotpath_impl.BodyBuffer(1024, expected=len(chunk))
    buffer.append(chunk)
    view = buffer.view()
    assert view.obj is chunk
    assert view.readonly
    assert bytes(view) == chunk
    assert len(buffer) == len(chunk)


def test_empty_body(hotpath_impl: HotPathImpl) -> None:
    buffer = hotpath_impl.BodyBuffer(10)
    assert len(buffer) == 0
    assert bytes(buffer.view()) == b""


def test_many_chunks(hotpath_impl: HotPathImpl) -> None:
    chunks = [bytes([i % 256]) * (i * 37 % 1000 + 1) for i in range(300)]
    body = b"".join(chunks)
    buffer = hotpath_impl.BodyBuffer(len(body))
    for chunk in chunks:
        buffer.append(chunk)
    assert len(buffer) == len(body)
    assert bytes(buffer.view()) == body


def test_presized_with_expected(hotpath_impl: HotPathImpl) -> None:
    body = bytes(range(256)) * 64
    buffer = hotpath_impl.BodyBuffer(1 << 20, expected=len(body))
    for i in range(0, len(body), 1000):
        buffer.append(body[i : i + 1000])
    assert bytes(buffer.view()) == body


def test_more_than_expected_still_fits_under_the_limit(hotpath_impl: HotPathImpl) -> None:
    buffer = hotpath_impl.BodyBuffer(100, expected=4)
    for chunk in (b"abcd", b"efgh", b"x" * 92):
        buffer.append(chunk)
    assert bytes(buffer.view()) == b"abcdefgh" + b"x" * 92


def test_view_taken_early_does_not_block_appends(hotpath_impl: HotPathImpl) -> None:
    buffer = hotpath_impl.BodyBuffer(1 << 20)
    buffer.append(b"a")
    buffer.append(b"b")
    early = buffer.view()
    buffer.append(b"c" * 200_000)
    assert bytes(early) == b"ab"
    assert len(buffer.view()) == 200_002


def test_exact_limit_is_accepted(hotpath_impl: HotPathImpl) -> None:
    buffer = hotpath_impl.BodyBuffer(10, expected=10)
    buffer.append(b"12345")
    buffer.append(b"67890")
    assert bytes(buffer.view()) == b"1234567890"
    assert buffer.limit == 10


def test_expected_over_limit_is_rejected_at_once(hotpath_impl: HotPathImpl) -> None:
    with pytest.raises(BodyTooLarge, match="limit of 10 bytes"):
        hotpath_impl.BodyBuffer(10, expected=11)


@pytest.mark.parametrize("chunks", [[b"x" * 11], [b"x" * 10, b"y"], [b"x" * 4, b"y" * 4, b"z" * 3]])
def test_append_over_limit_is_rejected_and_keeps_the_body(hotpath_impl: HotPathImpl, chunks: list[bytes]) -> None:
    buffer = hotpath_impl.BodyBuffer(10)
    for chunk in chunks[:-1]:
        buffer.append(chunk)
    before = bytes(buffer.view())
    with pytest.raises(BodyTooLarge, match="limit of 10 bytes"):
        buffer.append(chunks[-1])
    assert len(buffer) == len(before)
    assert bytes(buffer.view()) == before
    buffer.append(b"!" * (10 - len(before)))
    assert len(buffer) == 10


def test_bytes_like_chunks(hotpath_impl: HotPathImpl) -> None:
    buffer = hotpath_impl.BodyBuffer(100)
    buffer.append(bytearray(b"ab"))
    buffer.append(memoryview(b"--cd--")[2:4])
    buffer.append(memoryview(bytearray(b"ef")))
    assert bytes(buffer.view()) == b"abcdef"
    assert len(buffer) == 6


def test_single_bytearray_chunk_is_viewed_in_place(hotpath_impl: HotPathImpl) -> None:
    chunk = bytearray(b"body")
    buffer = hotpath_impl.BodyBuffer(100)
    buffer.append(chunk)
    assert buffer.view().obj is chunk


def test_empty_chunks_are_ignored(hotpath_impl: HotPathImpl) -> None:
    chunk = b"payload"
    buffer = hotpath_impl.BodyBuffer(7, expected=7)
    for piece in (b"", chunk, b"", bytearray(), memoryview(b"")):
        buffer.append(piece)
    assert buffer.view().obj is chunk
    assert len(buffer) == 7


@pytest.mark.parametrize(("limit", "expected"), [(-1, -1), (10, -2)])
def test_invalid_arguments(hotpath_impl: HotPathImpl, limit: int, expected: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        hotpath_impl.BodyBuffer(limit, expected)
