"""The numbers one worker adds up per label set: plain ints and floats, histograms as one count per bucket.

A request touches one bundle per label set it has, not one object per metric: a RequestSeries holds
the request counter and both time histograms of its (route, model, provider, status), and the per-metric
series with fewer labels (duration by route and provider, overhead by route) are summed from them at scrape.
Bucket counts are per bucket, not cumulative: `counts[i]` holds values in (bounds[i-1], bounds[i]], the
last one +Inf; `bisect_left` finds the bucket (Prometheus `le`: a value equal to a bound is in it).
"""

from __future__ import annotations

from typing import Final

# Upper bounds in seconds; +Inf is implied. The gateway's own time is tens of microseconds, so its
# buckets start well below a millisecond.
OVERHEAD_BUCKETS: Final = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Wire to wire: an answer in milliseconds up to a long generation in minutes.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RequestSeries:
    """One (route, model, provider, status): how many requests, and their duration and overhead histograms."""

    __slots__ = ("count", "duration_sum", "durations", "overhead_sum", "overheads")

    def __init__(self) -> None:
        self.count = 0
        self.durations = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.overheads = [0] * (len(OVERHEAD_BUCKETS) + 1)
        self.overhead_sum = 0.0


class UsageSeries:
    """One (provider, upstream model): the tokens its usage reported, and the time to first token histogram."""

    __slots__ = ("input_tokens", "output_tokens", "reported", "ttft_sum", "ttfts")

    def __init__(self) -> None:
        self.reported = False  # whether any usage came: a stream without one has a first token but no token counts
        self.input_tokens = 0
        self.output_tokens = 0
        self.ttfts = [0] * (len(TTFT_BUCKETS) + 1)
        self.ttft_sum = 0.0


# A histogram being summed: (bucket counts, sum of the values), by label values.
Sums = dict[tuple[str, ...], tuple[list[int], float]]


def add_histogram(into: Sums, labels: tuple[str, ...], counts: list[int], total: float) -> None:
    seen = into.get(labels)
    if seen is None:
        into[labels] = (list(counts), total)
    elif len(seen[0]) == len(counts):  # the same buckets: always, as every worker runs the same code
        into[labels] = ([a + b for a, b in zip(seen[0], counts, strict=True)], seen[1] + total)
