"""Differential tests: both twins agree on any stream and any cut, and chunking never changes the result."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_llm.hotpath.errors import BodyTooLarge, EventTooLarge
from tests.hotpath.sse_cases import SplitterLike

if TYPE_CHECKING:
    from conftest import HotPathImpl

NAMES = [b"data", b"event", b"id", b"retry", b"Data", b"foo", b"", b"\xef\xbb\xbfdata", b"dat\xc3"]
VALUES = [b"", b"x", b"hello world", b"123", b"3s", b"a:b", b"\x00", b"\xff\xfe", b"\xc3\xa9", b"\xc3", "😀".encode()]
VALUES += [b"\xf0\x9f", b" ", b"\t", b"[DONE]", b'{"type":"ping"}']
EOLS = [b"\n", b"\r", b"\r\n"]


@st.composite
def sse_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "bare", "comment", "blank"]))
    eol = draw(st.sampled_from(EOLS))
    if kind == "blank":
        return eol
    value = b"".join(draw(st.lists(st.sampled_from(VALUES), max_size=3)))
    if kind == "comment":
        return b":" + value + eol
    name = draw(st.sampled_from(NAMES))
    if kind == "bare":
        return name + eol
    return name + draw(st.sampled_from([b":", b": ", b":  "])) + value + eol


sse_streams = st.one_of(
    st.tuples(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef\xbb"]), st.lists(sse_lines(), max_size=30)).map(
        lambda t: t[0] + b"".join(t[1])
    ),
    st.binary(max_size=300),
)


@dataclass(frozen=True)
class Outcome:
    events: list[tuple[str, str, str, bytes]]
    error: type[Exception] | None
    pending: int
    retry: int | None
    last_event_id: str


def run(splitter: SplitterLike, chunks: list[bytes]) -> Outcome:
    events: list[Any] = []
    error: type[Exception] | None = None
    try:
        for chunk in chunks:
            events.extend(splitter.feed(chunk))
    except EventTooLarge as exc:
        error = type(exc)
    return Outcome(
        [(e.event, e.data, e.id, e.raw) for e in events],
        error,
        splitter.pending,
        splitter.retry,
        splitter.last_event_id,
    )


def cut(data: bytes, positions: list[int]) -> list[bytes]:
    bounds = [0, *sorted(p % (len(data) + 1) for p in positions), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def without_split_lf(events: list[tuple[str, str, str, bytes]]) -> list[tuple[str, str, str, bytes]]:
    # A lone CR already ends a line (WHATWG HTML §9.2.6), so a CRLF blank line cut after its CR dispatches
    # at the CR and that raw lacks the LF; compare raws as if every such LF had been cut off.
    return [(t, d, i, raw[:-1] if raw.endswith(b"\r\n") else raw) for t, d, i, raw in events]


def assert_chunking_invariant(chunked: Outcome, whole: Outcome, unlimited: Outcome) -> None:
    assert chunked.error is whole.error
    if whole.error is None:
        assert without_split_lf(chunked.events) == without_split_lf(whole.events)
        assert (chunked.pending, chunked.retry, chunked.last_event_id) == (
            whole.pending,
            whole.retry,
            whole.last_event_id,
        )
    else:
        # Events dispatched by earlier feeds were delivered; the rest went down with the error.
        assert without_split_lf(chunked.events) == without_split_lf(unlimited.events[: len(chunked.events)])


SIZES = st.sampled_from([1, 8, 40, 4096])


@pytest.mark.cython
@settings(max_examples=300, deadline=None)
@given(data=sse_streams, positions=st.lists(st.integers(min_value=0), max_size=12), max_size=SIZES)
def test_sse_twins_agree(
    hotpath_twins: tuple[HotPathImpl, HotPathImpl], data: bytes, positions: list[int], max_size: int
) -> None:
    compiled, pure = hotpath_twins
    chunks = cut(data, positions)
    outcome = run(compiled.SSESplitter(max_size), chunks)
    assert outcome == run(pure.SSESplitter(max_size), chunks)
    whole = run(compiled.SSESplitter(max_size), [data])
    assert whole == run(pure.SSESplitter(max_size), [data])
    assert_chunking_invariant(outcome, whole, run(pure.SSESplitter(), [data]))


@settings(max_examples=300, deadline=None)
@given(data=sse_streams, positions=st.lists(st.integers(min_value=0), max_size=12), max_size=SIZES)
def test_sse_chunking_never_changes_the_result(
    hotpath_impl: HotPathImpl, data: bytes, positions: list[int], max_size: int
) -> None:
    splitter = hotpath_impl.SSESplitter
    whole = run(splitter(max_size), [data])
    assert_chunking_invariant(run(splitter(max_size), cut(data, positions)), whole, run(splitter(), [data]))
    assert run(splitter(max_size), [data[i : i + 1] for i in range(len(data))]).error is whole.error


BodyStep = tuple[str, int | None]


def fill(buffer_cls: Any, limit: int, expected: int, chunks: list[bytes | bytearray | memoryview]) -> Any:
    try:
        buffer = buffer_cls(limit, expected)
    except BodyTooLarge:
        return "rejected at once"
    steps: list[BodyStep] = []
    for chunk in chunks:
        try:
            buffer.append(chunk)
            steps.append(("ok", len(buffer)))
        except BodyTooLarge:
            steps.append(("too large", len(buffer)))
    return steps, bytes(buffer.view())


chunk_lists = st.lists(
    st.binary(max_size=40).flatmap(lambda b: st.sampled_from([b, bytearray(b), memoryview(b)])), max_size=12
)


def model(limit: int, expected: int, chunks: list[bytes | bytearray | memoryview]) -> Any:
    if expected > limit:
        return "rejected at once"
    body = b""
    steps: list[BodyStep] = []
    for chunk in chunks:
        if len(body) + len(chunk) <= limit:
            body += bytes(chunk)
            steps.append(("ok", len(body)))
        else:
            steps.append(("too large", len(body)))
    return steps, body


@pytest.mark.cython
@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, limit=st.integers(0, 300), expected=st.integers(-1, 300))
def test_body_twins_agree_with_the_model(
    hotpath_twins: tuple[HotPathImpl, HotPathImpl],
    chunks: list[bytes | bytearray | memoryview],
    limit: int,
    expected: int,
) -> None:
    compiled, pure = hotpath_twins
    expect = model(limit, expected, chunks)
    assert fill(compiled.BodyBuffer, limit, expected, chunks) == expect
    assert fill(pure.BodyBuffer, limit, expected, chunks) == expect
