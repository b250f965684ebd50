"""Hostile upstream bytes: nothing but HTTPParseError escapes, and what the parser holds stays bounded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mini_llm.hotpath.errors import HTTPParseError
from tests.hotpath.http_cases import CHUNKED_HEAD, OK, Generated, ParserLike, responses

if TYPE_CHECKING:
    from conftest import HotPathImpl

MAX_HEAD = 1024
MAX_CHUNK_LINE = 4096

PREFIXES = [b"", OK, OK + b"Content-Length: 100000\r\n\r\n", CHUNKED_HEAD, CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n"]
# Large inputs cheaply: a random block repeated, behind a prefix that reaches each parser state.
hostile = st.one_of(
    st.tuples(st.sampled_from(PREFIXES), st.binary(max_size=5000)).map(b"".join),
    st.tuples(st.sampled_from(PREFIXES), st.binary(min_size=1, max_size=300), st.integers(1, 100)).map(
        lambda t: t[0] + t[1] * t[2]
    ),
    responses.map(lambda generated: generated.data),
)
sizes = st.lists(st.integers(1, 3000), min_size=1, max_size=20)


def bound(parser: ParserLike) -> int:
    return max(MAX_HEAD, MAX_CHUNK_LINE) if parser.head_complete else MAX_HEAD


def feed_in_reads(parser: ParserLike, data: bytes, sizes: list[int]) -> int:
    """Feed `data` in reads of the given sizes; return the body bytes delivered before any error."""
    delivered = 0
    pos = 0
    i = 0
    while pos < len(data):
        read = data[pos : pos + sizes[i % len(sizes)]]
        i += 1
        pos += len(read)
        try:
            pieces = parser.feed(read)
        except HTTPParseError:
            assert not parser.done
            assert not parser.keep_alive
            return delivered
        assert parser.buffered <= bound(parser)
        delivered += sum(map(len, pieces))
        assert delivered <= len(data)
    try:
        parser.feed_eof()
    except HTTPParseError:
        assert not parser.done
    return delivered


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile, sizes=sizes, head_request=st.booleans())
def test_arbitrary_bytes(hotpath_impl: HotPathImpl, data: bytes, sizes: list[int], head_request: bool) -> None:
    parser = hotpath_impl.ResponseParser(head_request=head_request, max_head_bytes=MAX_HEAD, max_headers=10)
    feed_in_reads(parser, data, sizes)


@settings(max_examples=100, deadline=None)
@given(generated=responses, sizes=sizes)
def test_mutated_answers_in_small_reads(hotpath_impl: HotPathImpl, generated: Generated, sizes: list[int]) -> None:
    parser = hotpath_impl.ResponseParser(head_request=generated.head_request, max_head_bytes=64, max_headers=3)
    feed_in_reads(parser, generated.data, [size % 7 + 1 for size in sizes])
    assert parser.buffered <= MAX_CHUNK_LINE


def test_an_endless_head_line_is_refused_at_the_bound(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser(max_head_bytes=MAX_HEAD)
    parser.feed(OK + b"X: ")
    held = []
    with pytest.raises(HTTPParseError, match="larger than 1024 bytes"):
        for _ in range(10_000):
            parser.feed(b"a" * 100)
            held.append(parser.buffered)
    assert max(held) <= MAX_HEAD
    assert parser.buffered == 0


def test_an_endless_chunk_size_line_is_refused_at_the_bound(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    parser.feed(CHUNKED_HEAD + b"1;")
    held = []
    with pytest.raises(HTTPParseError, match="longer than 4096 bytes"):
        for _ in range(10_000):
            parser.feed(b"e" * 7)
            held.append(parser.buffered)
    assert max(held) <= MAX_CHUNK_LINE
    assert parser.buffered == 0


def test_a_large_body_is_never_buffered(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    parser.feed(OK + b"Content-Length: 10000000\r\n\r\n")
    read = b"x" * 65536
    delivered = 0
    while not parser.done:
        for piece in parser.feed(read[: 10_000_000 - delivered]):
            delivered += len(piece)
        assert parser.buffered == 0
    assert delivered == 10_000_000
