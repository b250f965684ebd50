"""The splitter's memory bound: EventTooLarge past max_event_size, then broken for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mini_llm.hotpath.errors import EventTooLarge

if TYPE_CHECKING:
    from conftest import HotPathImpl

LIMIT = 64


def test_oversize_event_in_one_chunk(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    with pytest.raises(EventTooLarge, match=f"max_event_size={LIMIT} bytes"):
        splitter.feed(b"data: " + b"x" * LIMIT + b"\n\n")


def test_oversize_event_made_of_small_lines(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    with pytest.raises(EventTooLarge):
        for _ in range(LIMIT):
            splitter.feed(b"data: x\n")


def test_oversize_unterminated_line(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    assert splitter.feed(b"data: " + b"y" * (LIMIT - 6)) == []
    assert splitter.pending == LIMIT
    with pytest.raises(EventTooLarge, match=f"max_event_size={LIMIT} bytes"):
        splitter.feed(b"y")


def test_limit_counts_the_frame_but_not_its_blank_line(hotpath_impl: HotPathImpl) -> None:
    body = b"data: " + b"z" * (LIMIT - 8) + b"\r\n"
    assert len(body) == LIMIT
    events = hotpath_impl.SSESplitter(LIMIT).feed(body + b"\r\n")
    assert [e.raw for e in events] == [body + b"\r\n"]
    with pytest.raises(EventTooLarge):
        hotpath_impl.SSESplitter(LIMIT).feed(b":" + body + b"\n")


def test_events_before_the_oversize_one_are_delivered_by_earlier_feeds(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    assert [e.data for e in splitter.feed(b"id: 9\ndata: ok\n\n")] == ["ok"]
    with pytest.raises(EventTooLarge):
        splitter.feed(b"data: ok\n\ndata: " + b"x" * LIMIT)
    assert splitter.last_event_id == "9"
    assert splitter.pending > LIMIT


def test_splitter_stays_broken(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    with pytest.raises(EventTooLarge):
        splitter.feed(b"x" * (LIMIT + 1))
    for chunk in (b"", b"\n\n", b"data: fine\n\n"):
        with pytest.raises(EventTooLarge, match="unusable"):
            splitter.feed(chunk)


def test_many_small_events_never_trip_the_limit(hotpath_impl: HotPathImpl) -> None:
    """Dispatched frames are forgotten: a long stream of small events stays under a small cap."""
    event = b"event: delta\ndata: " + b"d" * 30 + b"\n\n"
    assert len(event) <= LIMIT
    splitter = hotpath_impl.SSESplitter(LIMIT)
    count = 0
    for _ in range(2000):
        count += len(splitter.feed(event[:10]))
        count += len(splitter.feed(event[10:]))
        assert splitter.pending == 0
    assert count == 2000
    assert len(splitter.feed(event * 500)) == 500


def test_comment_keepalives_do_not_accumulate(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter(LIMIT)
    for _ in range(1000):
        assert splitter.feed(b": ping\n\n") == []
    assert splitter.pending == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_max_event_size_must_be_positive(hotpath_impl: HotPathImpl, bad: int) -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        hotpath_impl.SSESplitter(bad)
