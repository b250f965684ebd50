"""Hostile input: arbitrary bytes never raise anything but EventTooLarge, and buffering stays capped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mini_llm.hotpath.errors import EventTooLarge

if TYPE_CHECKING:
    from conftest import HotPathImpl

CAP = 4096

# Large inputs cheaply: a random block repeated, mixed with plain random bytes.
hostile = st.one_of(
    st.binary(max_size=20_000),
    st.tuples(st.binary(min_size=1, max_size=512), st.integers(1, 200)).map(lambda t: t[0] * t[1]),
)
sizes = st.lists(st.integers(1, 9000), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile, sizes=sizes)
def test_arbitrary_bytes(hotpath_impl: HotPathImpl, data: bytes, sizes: list[int]) -> None:
    splitter = hotpath_impl.SSESplitter(CAP)
    pos = 0
    delivered = 0
    i = 0
    while pos < len(data):
        chunk = data[pos : pos + sizes[i % len(sizes)]]
        i += 1
        pos += len(chunk)
        try:
            events = splitter.feed(chunk)
        except EventTooLarge:
            assert splitter.pending > CAP
            with pytest.raises(EventTooLarge):
                splitter.feed(b"\n\n")
            return
        delivered += sum(len(e.raw) for e in events)
        assert all(len(e.raw) <= CAP + 2 for e in events)  # frame plus its CRLF blank line
        assert splitter.pending <= CAP
        assert delivered + splitter.pending <= pos
