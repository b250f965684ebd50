"""The per-worker metrics recorder the request path calls: plain numbers in dicts, turned into metrics at scrape.

prometheus_client's own objects cost 4-9 us per request here (README "Metrics"), over the 3% of a
request's CPU the recording may take, so a request adds to plain numbers keyed by label tuples, and
prometheus_client only renders them (mini_llm.metrics.exposition) when /metrics is scraped.
Even those dicts are cold after a request's own work (about 4 us a request then, 1.4 us warm), so a
request only appends its facts to a pending list, and one warm loop tallies the list into the series:
when it reaches PENDING_LIMIT, and before every snapshot, so every scrape and write sees every request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, TypeAlias

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
from mini_llm.metrics.snapshot import (
    HistogramSeries,
    Keys,
    Merged,
    Series,
    Snapshot,
    merge,
    read_others,
    this_process,
    write,
)

if TYPE_CHECKING:
    from mini_llm.config import Settings
    from mini_llm.gateway.context import Request
    from mini_llm.gateway.failover import AttemptRecord, Failover
    from mini_llm.metrics.exposition import Exposition

logger = logging.getLogger("mini_llm")

# Seconds a worker waits after a change before writing its snapshot: a scrape answered by another worker
# is at most this far behind; an idle worker writes nothing.
FLUSH_DELAY: Final = 0.25
# Finished requests waiting to be tallied: enough to make the tally loop warm, few enough to stay small.
PENDING_LIMIT: Final = 256

Counts = dict[tuple[str, ...], int]
# One finished request as the tally reads it: route, model, the answering target's provider name and model,
# status, duration, overhead, attempts, cooldowns, input and output tokens, ttft, stream outcome.
Facts: TypeAlias = tuple[
    str,
    "str | None",
    "str | None",
    "str | None",
    int,
    float,
    float,
    "Sequence[AttemptRecord]",
    "Sequence[tuple[str, str]]",
    "int | None",
    "int | None",
    "float | None",
    "str | None",
]


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
        self.pending: list[Facts] = []  # finished requests not yet in the series above
        self._pid = os.getpid()
        self._started = this_process()
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
        """One request is over (answered, failed or left): its facts wait for the tally (module docstring).

        `duration` is wire to wire, `overhead` the gateway's own part of it (seconds). When
        `req.stream_outcome` is set, the stream opened with stream_opened() is over.
        """
        if not self.enabled:
            return
        target = req.target
        if target is None:
            provider = model = None
        else:
            provider, model = target.provider.name, target.model
        pending = self.pending
        pending.append(
            (
                req.route,
                req.model,
                provider,
                model,
                req.status,
                duration,
                overhead,
                req.attempts,
                req.cooldowns,
                req.input_tokens,
                req.output_tokens,
                req.ttft,
                req.stream_outcome,
            )
        )
        if len(pending) >= PENDING_LIMIT:
            self._tally()
        if not self._flush_scheduled:
            self._schedule_flush()

    def _tally(self) -> None:
        """Every pending request into its metrics: one loop over many requests, its dicts and series warm."""
        # Written for speed (README "Metrics"): locals, dict gets and additions, no calls on the usual request.
        labels = self.labels
        routes, outcomes, models, providers = labels.route.seen, labels.outcome.seen, labels.models, labels.providers
        stream_outcomes = labels.stream_outcome.seen
        requests, attempts, usage, streams = self.requests, self.attempts, self.usage, self.streams
        ended = 0
        for (
            route,
            model,
            provider,
            upstream_model,
            status,
            duration,
            overhead,
            tried,
            cooled,
            input_tokens,
            output_tokens,
            ttft,
            stream_outcome,
        ) in self.pending:
            provider_label = "" if provider is None else providers.get(provider, OTHER)
            key = (
                routes.get(route) or labels.route(route),
                models.get(model, OTHER),
                provider_label,
                STATUSES.get(status, NO_STATUS),
            )
            series = requests.get(key) or self._new_requests(key)
            series.count += 1
            series.durations[bisect_left(DURATION_BUCKETS, duration)] += 1
            series.duration_sum += duration
            series.overheads[bisect_left(OVERHEAD_BUCKETS, overhead)] += 1
            series.overhead_sum += overhead
            for attempt in tried:
                outcome = outcomes.get(attempt.outcome) or labels.outcome(attempt.outcome)
                counted = (providers.get(attempt.provider, OTHER), outcome)
                attempts[counted] = attempts.get(counted, 0) + 1
            if cooled:
                self._cooled(cooled)
            if upstream_model is not None and (
                input_tokens is not None or output_tokens is not None or ttft is not None
            ):
                # Tokens and time to first token, by the provider and the upstream model that answered.
                used = (provider_label, models.get(upstream_model, OTHER))
                usage_series = usage.get(used) or self._new_usage(used)
                if input_tokens is not None or output_tokens is not None:
                    usage_series.reported = True
                    usage_series.input_tokens += input_tokens or 0
                    usage_series.output_tokens += output_tokens or 0
                if ttft is not None:
                    usage_series.ttfts[bisect_left(TTFT_BUCKETS, ttft)] += 1
                    usage_series.ttft_sum += ttft
            if stream_outcome is not None:
                label = stream_outcomes.get(stream_outcome) or labels.stream_outcome(stream_outcome)
                streams[label] = streams.get(label, 0) + 1
                ended += 1
        self.streams_active -= ended
        self.pending.clear()

    def snapshot(self, *, live: bool = True) -> Snapshot:
        """This worker's numbers now; the gauges read from the failover state, so right with no traffic since."""
        self._tally()
        return Snapshot(
            pid=self._pid,
            started=self._started,
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
        others = () if self._folder is None else read_others(self._folder, self._pid, self._started)
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

    def _new_usage(self, key: tuple[str, str]) -> UsageSeries:
        series = self.usage[key] = UsageSeries()
        return series

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
