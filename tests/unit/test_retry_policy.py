"""retry_after (retry-after-ms, delay-seconds, HTTP-date, garbage), full-jitter backoff and x-should-retry."""

from __future__ import annotations

import calendar
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_llm.gateway.retry_policy import ABSURD_DELAY, RETRYABLE_STATUSES, backoff, retry_after, should_retry_header

# Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110 5.6.7.
RFC_EXAMPLE = float(calendar.timegm((1994, 11, 6, 8, 49, 37)))


def test_retryable_statuses_are_timeouts_rate_limits_server_errors_and_overloaded() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504, 529}) == RETRYABLE_STATUSES
    assert not {400, 401, 403, 404, 409, 413, 422, 501} & RETRYABLE_STATUSES


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"1", 1.0), (b"0", 0.0), (b"120", 120.0), (b" 7 ", 7.0), (b"1.5", 1.5), (b"86400", 86400.0)],
)
def test_retry_after_delay_seconds(value: bytes, expected: float) -> None:
    assert retry_after([(b"retry-after", value)]) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"Sun, 06 Nov 1994 08:50:07 GMT",  # IMF-fixdate
        b"Sunday, 06-Nov-94 08:50:07 GMT",  # obsolete RFC 850 form
        b"Sun Nov  6 08:50:07 1994",  # obsolete asctime form, GMT without saying so
    ],
)
def test_retry_after_http_date_in_all_three_forms_is_relative_to_now(value: bytes) -> None:
    assert retry_after([(b"retry-after", value)], now=RFC_EXAMPLE) == 30.0


def test_retry_after_http_date_in_the_past_means_now_and_defaults_to_the_wall_clock() -> None:
    assert retry_after([(b"retry-after", b"Sun, 06 Nov 1994 08:49:07 GMT")], now=RFC_EXAMPLE) == 0.0
    assert retry_after([(b"retry-after", b"Sun, 06 Nov 1994 08:49:07 GMT")]) == 0.0


def test_retry_after_ms_wins_and_is_in_milliseconds() -> None:
    headers = [(b"retry-after", b"10"), (b"retry-after-ms", b"1500")]
    assert retry_after(headers) == 1.5
    assert retry_after([(b"retry-after-ms", b"250.5")]) == 0.2505


def test_a_malformed_retry_after_ms_falls_back_to_retry_after() -> None:
    assert retry_after([(b"retry-after-ms", b"soon"), (b"retry-after", b"3")]) == 3.0
    assert retry_after([(b"retry-after-ms", b"99999999999"), (b"retry-after", b"3")]) == 3.0


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"-1",
        b"+5",
        b"nan",
        b"inf",
        b"1e3",
        b"1_000",
        b"0x10",
        b"5 s",
        b"tomorrow",
        b"Sun, 06 Nov 1994 25:99:99 GMT",
        b"Sun, 06 Nov 99999 08:49:37 GMT",
        b"Sun, 06 Nov",
        b"9" * 400,  # beyond any float
    ],
)
def test_bogus_retry_after_values_are_none(value: bytes) -> None:
    assert retry_after([(b"retry-after", value)], now=RFC_EXAMPLE) is None
    assert retry_after([(b"retry-after-ms", value)], now=RFC_EXAMPLE) is None


def test_a_delay_of_more_than_a_day_is_garbage_not_a_rate_limit_window() -> None:
    assert retry_after([(b"retry-after", b"86401")]) is None
    assert retry_after([(b"retry-after-ms", b"86400001")]) is None
    assert retry_after([(b"retry-after", b"Mon, 07 Nov 1994 08:49:38 GMT")], now=RFC_EXAMPLE) is None


def test_no_hint_is_none_and_other_headers_are_ignored() -> None:
    assert retry_after([]) is None
    assert retry_after([(b"x-ratelimit-reset-requests", b"1s"), (b"content-type", b"application/json")]) is None


@given(value=st.binary(max_size=40), now=st.floats(0, 4e9))
@settings(max_examples=300, deadline=None)
def test_retry_after_never_raises_and_stays_in_range(value: bytes, now: float) -> None:
    for name in (b"retry-after", b"retry-after-ms"):
        delay = retry_after([(name, value)], now=now)
        assert delay is None or (math.isfinite(delay) and 0.0 <= delay <= ABSURD_DELAY)


def test_backoff_is_full_jitter_under_the_exponential_ceiling() -> None:
    rng = random.Random(11)
    for retry, ceiling in ((0, 0.25), (1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 8.0)):
        pauses = [backoff(retry, 0.25, 8.0, rng) for _ in range(500)]
        assert all(0.0 <= pause <= ceiling for pause in pauses)
        assert max(pauses) > 0.9 * ceiling  # the whole window is used, not just its top or bottom
        assert min(pauses) < 0.1 * ceiling


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    assert [backoff(2, 0.25, 8.0, random.Random(3)) for _ in range(2)] == [
        random.Random(3).uniform(0.0, 1.0) for _ in range(2)
    ]


def test_backoff_does_not_overflow_for_a_huge_retry_number() -> None:
    rng = random.Random(5)
    for retry in (1023, 1024, 10_000, 10**100):
        assert 0.0 <= backoff(retry, 0.25, 8.0, rng) <= 8.0


def test_backoff_with_a_zero_base_is_zero_and_a_negative_retry_is_refused() -> None:
    assert backoff(4, 0.0, 8.0, random.Random(1)) == 0.0
    with pytest.raises(ValueError, match="0-based"):
        backoff(-1, 0.25, 8.0, random.Random(1))


@pytest.mark.parametrize(
    ("value", "expected"), [(b"true", True), (b"false", False), (b" true ", True), (b"yes", None), (b"TRUE", None)]
)
def test_should_retry_header(value: bytes, expected: bool | None) -> None:
    assert should_retry_header([(b"x-should-retry", value)]) is expected


def test_should_retry_header_absent_is_none() -> None:
    assert should_retry_header([(b"retry-after", b"1")]) is None
