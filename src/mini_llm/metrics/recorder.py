"""The per-worker metrics recorder the request path calls: plain numbers in dicts, turned into metrics at scrape.

prometheus_client's own objects cost 4-9 us per request here (README "Metrics"), over the 3% of a
request's CPU the recording may take, so a request adds to plain numbers keyed by label tuples, and
prometheus_client only renders them (mini_llm.metrics.exposition) when /metrics is scraped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from mini_llm.metrics import METRICS_DIR_ENV
from mini_llm.metrics.labels import NO_STATUS, OTHER, STATUSES, Labels
from mini_llm.metrics.series import (
    DURATION_BUCKETS,
    OVERHEAD_BUCKETS,
    TTFT_BUCKETS,
    RequestSeries,
    Sums,
    UsageSeries,
    add_histogram,
)
from mini_llm.metrics.snapshot import HistogramSeries, Keys, Merged, Series, Snapshot, merge, read_others, write

if TYPE_CHECKING:
    from mini_llm.config import Settings
    from mini_llm.gateway.context import Request
    from mini_llm.gateway.failover import Failover
    from mini_llm.metrics.exposition import Exposition

logger = logging.getLogger("mini_llm")

# Seconds a worker waits after a change before writing its snapshot: a scrape answered by another worker
# is at most this far behind; an idle worker writes nothing.
FLUSH_DELAY: Final = 0.25

Counts = dict[tuple[str, ...], int]


class Recorder:
    """What one worker measured; cheap to record (plain numbers), turned into metric families at scrape."""

    def __init__(self, settings: Settings, failover: Failover) -> None:
        self.enabled = settings.metrics
        self.settings = settings
        self.failover = failover
        self.labels = Labels(settings.providers, settings.aliases)
        self.exposition: Exposition | None = None  # made at the first scrape (it imports prometheus_client)
        self.requests: dict[tuple[str, str, str, str], RequestSeries] = {}
        self.usage: dict[tuple[str, str], UsageSeries] = {}
        self.attempts: Counts = {}
        self.cooldowns: Counts = {}
        self.streams: dict[str, int] = {}
        self.streams_active = 0
        self._pid = os.getpid()
        self._folder = os.environ.get(METRICS_DIR_ENV) if self.enabled else None
        # True while a write is scheduled, and always without a folder: then the request path never schedules.
        self._flush_scheduled = self._folder is None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._write_failed = False

    def stream_opened(self) -> None:
        """A stream's response start is about to go out: mini_llm_streams_active goes up."""
        if not self.enabled:
            return
        self.streams_active += 1
        if not self._flush_scheduled:
            self._schedule_flush()

    def finished(self, req: Request, duration: float, overhead: float) -> None:
        """One request is over (answered, failed or left): every per-request metric from its facts.

        `duration` is wire to wire, `overhead` the gateway's own part of it (seconds). When
        `req.stream_outcome` is set, the stream opened with stream_opened() is over.
        """
        if not self.enabled:
            return
        # Written for speed (README "Metrics"): on the usual request, dict gets and additions, no calls.
        labels = self.labels
        route = labels.route.seen.get(req.route) or labels.route(req.route)
        target = req.target
        provider = "" if target is None else labels.providers.get(target.provider.name, OTHER)
        key = (route, labels.models.get(req.model, OTHER), provider, STATUSES.get(req.status, NO_STATUS))
        series = self.requests.get(key) or self._new_requests(key)
        series.count += 1
        series.durations[bisect_left(DURATION_BUCKETS, duration)] += 1
        series.duration_sum += duration
        series.overheads[bisect_left(OVERHEAD_BUCKETS, overhead)] += 1
        series.overhead_sum += overhead
        attempts = self.attempts
        for attempt in req.attempts:
            outcome = labels.outcome.seen.get(attempt.outcome) or labels.outcome(attempt.outcome)
            counted = (labels.providers.get(attempt.provider, OTHER), outcome)
            attempts[counted] = attempts.get(counted, 0) + 1
        if req.cooldowns:
            self._cooled(req.cooldowns)
        if target is not None and (
            req.input_tokens is not None or req.output_tokens is not None or req.ttft is not None
        ):
            self._used(provider, labels.models.get(target.model, OTHER), req)
        if req.stream_outcome is not None:
            self._stream_over(req.stream_outcome)
        if not self._flush_scheduled:
            self._schedule_flush()

    def snapshot(self, *, live: bool = True) -> Snapshot:
        """This worker's numbers now; the gauges read from the failover state, so right with no traffic since."""
        return Snapshot(
            pid=self._pid,
            live=live,
            counters=self._counters(),
            histograms=self._histograms(),
            streams_active=self.streams_active,
            keys=self._keys(),
            breakers_open=[
                (self.labels.provider(provider), self.labels.model(model))
                for provider, model, _, _ in self.failover.breakers.open_ones()
            ],
        )

    def merged(self) -> Merged:
        """What a scrape of this worker shows: its live numbers and every other worker's snapshot."""
        others = () if self._folder is None else read_others(self._folder, self._pid)
        return merge([self.snapshot(), *others], time.monotonic())

    def close(self) -> None:
        """At lifespan shutdown: the last write, counters kept for the scrapes to come, gauges marked gone.

        No write is scheduled after it: a later one would mark the worker live again.
        """
        self._flush_scheduled = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._folder is not None:
            self._write(live=False)

    def _new_requests(self, key: tuple[str, str, str, str]) -> RequestSeries:
        series = self.requests[key] = RequestSeries()
        return series

    def _cooled(self, cooldowns: Sequence[tuple[str, str]]) -> None:
        for provider, reason in cooldowns:
            counted = (self.labels.provider(provider), self.labels.reason(reason))
            self.cooldowns[counted] = self.cooldowns.get(counted, 0) + 1

    def _used(self, provider: str, model: str, req: Request) -> None:
        """Tokens and time to first token, by the provider and the upstream model that answered."""
        series = self.usage.get((provider, model))
        if series is None:
            series = self.usage[provider, model] = UsageSeries()
        if req.input_tokens is not None or req.output_tokens is not None:
            series.reported = True
            series.input_tokens += req.input_tokens or 0
            series.output_tokens += req.output_tokens or 0
        if req.ttft is not None:
            series.ttfts[bisect_left(TTFT_BUCKETS, req.ttft)] += 1
            series.ttft_sum += req.ttft

    def _stream_over(self, outcome: str) -> None:
        label = self.labels.stream_outcome(outcome)
        self.streams[label] = self.streams.get(label, 0) + 1
        self.streams_active -= 1

    def _counters(self) -> dict[str, list[Series]]:
        tokens = [
            Series((*labels, kind), count)
            for labels, series in self.usage.items()
            if series.reported
            for kind, count in (("input", series.input_tokens), ("output", series.output_tokens))
        ]
        return {
            "requests": [Series(labels, series.count) for labels, series in self.requests.items()],
            "tokens": tokens,
            "attempts": [Series(labels, count) for labels, count in self.attempts.items()],
            "cooldowns": [Series(labels, count) for labels, count in self.cooldowns.items()],
            "streams": [Series((outcome,), count) for outcome, count in self.streams.items()],
        }

    def _histograms(self) -> dict[str, list[HistogramSeries]]:
        """The histograms by their own labels, summed from the request bundles that carry more."""
        durations: Sums = {}
        overheads: Sums = {}
        for (route, _, provider, _), series in self.requests.items():
            add_histogram(durations, (route, provider), series.durations, series.duration_sum)
            add_histogram(overheads, (route,), series.overheads, series.overhead_sum)
        ttfts: Sums = {
            labels: (series.ttfts, series.ttft_sum) for labels, series in self.usage.items() if any(series.ttfts)
        }
        return {
            name: [HistogramSeries(labels, counts, total) for labels, (counts, total) in sums.items()]
            for name, sums in (("durations", durations), ("overheads", overheads), ("ttfts", ttfts))
        }

    def _keys(self) -> dict[str, Keys]:
        """Each usable provider's keys and when its cooling ones are free again (time.monotonic())."""
        now = time.monotonic()
        pools = self.failover.pools
        return {
            name: Keys(len(pools[name]), [now + left for _, _, left in pools[name].cooling()])
            for name, provider in self.settings.providers.items()
            if provider.usable
        }

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write(live=True)

    def _write(self, *, live: bool) -> None:
        assert self._folder is not None, "only called with a folder"
        try:
            write(self._folder, self.snapshot(live=live))
        except OSError as exc:  # a scrape answered by another worker misses this one's numbers: say so once
            if not self._write_failed:
                self._write_failed = True
                logger.warning("metrics: cannot write this worker's snapshot to %s: %s", self._folder, exc)
