"""What an upstream's answer says about retrying: retryable statuses, the hints in its headers, and the backoff."""

from __future__ import annotations

import math
import random
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

# Timeouts, rate limits, server errors and Anthropic's 529 "overloaded"; other 4xx are the request's fault.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504, 529})

# Longer than any real rate-limit window: a bigger hint is garbage, and the caller's default applies instead.
ABSURD_DELAY: Final = 86_400.0

# RFC 9110 10.2.3 delay-seconds is 1*DIGIT; a fraction is accepted as the OpenAI and Anthropic SDKs do.
# Stricter than float(), which would also take "nan", "1e9" or "1_0".
_NUMBER: Final = re.compile(rb"[0-9]+(?:\.[0-9]+)?")

Headers = list[tuple[bytes, bytes]]


def retry_after(headers: Headers, now: float | None = None) -> float | None:
    """Seconds the provider asks to wait, or None when it asks nothing usable.

    `retry-after-ms` (non-standard, milliseconds; the OpenAI and Anthropic SDKs read it first) wins over
    `retry-after` (RFC 9110 10.2.3: delay-seconds or an HTTP-date, taken relative to `now`, default
    time.time()). A malformed hint falls through to the next one; an HTTP-date in the past means 0.
    """
    millis = _header(headers, b"retry-after-ms")
    if millis is not None and (delay := _number(millis)) is not None and delay / 1000 <= ABSURD_DELAY:
        return delay / 1000
    value = _header(headers, b"retry-after")
    if value is None:
        return None
    delay = _number(value)
    if delay is None:
        delay = _until_date(value, time.time() if now is None else now)
    return delay if delay is not None and delay <= ABSURD_DELAY else None


def backoff(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """The pause before the `retry`-th retry (0-based): exponential with full jitter.

    uniform(0, min(cap, base * 2**retry)), as in "Exponential Backoff And Jitter" (AWS Architecture Blog,
    2015): spreading retries over the whole window keeps many clients from retrying in lockstep.
    """
    if retry < 0:
        raise ValueError(f"retry is 0-based, not {retry!r}")
    try:
        ceiling = min(cap, math.ldexp(base, retry))
    except OverflowError:  # base * 2**retry is past any float: the cap is smaller
        ceiling = cap
    return rng.uniform(0.0, ceiling)


def should_retry_header(headers: Headers) -> bool | None:
    """The provider's own verdict, `x-should-retry: true|false` (OpenAI and Anthropic send it); None if absent."""
    value = _header(headers, b"x-should-retry")
    if value == b"true":
        return True
    if value == b"false":
        return False
    return None


def _header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of a header (names are lower-case), without the optional whitespace around it."""
    for key, value in headers:
        if key == name:
            return value.strip(b" \t")
    return None


def _number(value: bytes) -> float | None:
    return float(value) if _NUMBER.fullmatch(value) else None


def _until_date(value: bytes, now: float) -> float | None:
    """Seconds from `now` to an HTTP-date (RFC 9110 5.6.7: all three forms, always GMT), 0 once it has passed.

    Parsed as leniently as the SDKs do (email.utils), but a date that cannot exist is refused.
    """
    try:
        when = parsedate_to_datetime(value.decode("latin-1"))
    except (ValueError, TypeError, IndexError, OverflowError):  # garbled, or a field out of range
        return None
    return max(0.0, when.replace(tzinfo=when.tzinfo or UTC).timestamp() - now)
