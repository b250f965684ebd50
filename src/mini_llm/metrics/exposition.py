"""The scrape: the merged numbers as prometheus_client metric families, rendered by prometheus_client itself.

Imported at a worker's first scrape only: prometheus_client takes ~0.1 s to import, which no cold
start and no worker that is never scraped should pay.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from mini_llm import __version__, hotpath
from mini_llm.metrics.labels import STREAM_OUTCOMES
from mini_llm.metrics.recorder import Recorder
from mini_llm.metrics.series import DURATION_BUCKETS, OVERHEAD_BUCKETS, TTFT_BUCKETS
from mini_llm.metrics.snapshot import Merged

# (name, help, labels, the Recorder's series it comes from); README "Operating it" has the same table.
COUNTERS = (
    (
        "mini_llm_requests_total",
        "Requests the gateway answered, by route, the client's model, the provider that answered and the status.",
        ("route", "model", "provider", "status"),
        "requests",
    ),
    (
        "mini_llm_tokens_total",
        "Tokens in the usage the providers reported, by kind (input or output).",
        ("provider", "model", "kind"),
        "tokens",
    ),
    (
        "mini_llm_upstream_attempts_total",
        "Requests sent to providers, by outcome: the status, or what went wrong (timeout, unreachable, ...).",
        ("provider", "outcome"),
        "attempts",
    ),
    (
        "mini_llm_key_cooldowns_total",
        "Provider keys benched for a cooldown, by reason: auth (401/403) or rate_limit (429).",
        ("provider", "reason"),
        "cooldowns",
    ),
    ("mini_llm_streams_total", "Streams that ended, by outcome.", ("outcome",), "streams"),
)
HISTOGRAMS = (
    (
        "mini_llm_request_duration_seconds",
        "Wire to wire: from the request's arrival to its answer's last byte.",
        ("route", "provider"),
        "durations",
        DURATION_BUCKETS,
    ),
    (
        "mini_llm_overhead_seconds",
        "The gateway's own time: the request's wall time minus the time spent waiting on providers.",
        ("route",),
        "overheads",
        OVERHEAD_BUCKETS,
    ),
    (
        "mini_llm_time_to_first_token_seconds",
        "From the request's arrival to the first token of its stream.",
        ("provider", "model"),
        "ttfts",
        TTFT_BUCKETS,
    ),
)


def _le(bounds: tuple[float, ...]) -> list[str]:
    # The library's own float format, as its Histogram writes `le`; the function carries no annotations.
    return [*(floatToGoString(bound) for bound in bounds), "+Inf"]  # type: ignore[no-untyped-call]


class _Families(Collector):
    """Reads the recorder's merged numbers at each scrape: nothing is kept between two scrapes."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._bounds = {series: _le(bounds) for _, _, _, series, bounds in HISTOGRAMS}
        labels = recorder.labels
        settings = recorder.settings
        # Configured targets show 0 while closed, so a dashboard has a line for them before any failure.
        self._targets = {
            (labels.provider(provider), labels.model(model))
            for alias in settings.aliases.values()
            for provider, model in alias.targets
        }
        self._build = (__version__, hotpath.IMPLEMENTATION, settings.upstream_client)

    def collect(self) -> Iterator[Metric]:
        merged = self._recorder.merged()
        yield from self._counters(merged)
        yield from self._histograms(merged)
        yield from self._gauges(merged)

    def _counters(self, merged: Merged) -> Iterator[Metric]:
        for name, documentation, labels, series in COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=labels)
            counts = merged.counters.get(series, {})
            if series == "streams":  # every outcome, 0 before the first: rate() needs the series to exist
                counts = {(outcome,): 0 for outcome in STREAM_OUTCOMES} | counts
            for values, count in counts.items():
                family.add_metric(values, count)
            yield family

    def _histograms(self, merged: Merged) -> Iterator[Metric]:
        for name, documentation, labels, series, _ in HISTOGRAMS:
            family = HistogramMetricFamily(name, documentation, labels=labels)
            bounds = self._bounds[series]
            for values, (counts, total) in merged.histograms.get(series, {}).items():
                cumulative, buckets = 0, []
                for le, count in zip(bounds, counts, strict=True):
                    cumulative += count
                    buckets.append((le, float(cumulative)))
                family.add_metric(values, buckets, total)
            yield family

    def _gauges(self, merged: Merged) -> Iterator[Metric]:
        keys = GaugeMetricFamily(
            "mini_llm_provider_keys_available",
            "Keys of the provider not cooling down: the fewest any worker can use.",
            labels=("provider",),
        )
        for provider, available in merged.keys_available.items():
            keys.add_metric((provider,), available)
        yield keys
        breakers = GaugeMetricFamily(
            "mini_llm_breaker_open",
            "1 while the target's circuit breaker is open (or half open) in any worker, else 0.",
            labels=("provider", "model"),
        )
        for target in sorted(self._targets | merged.breakers_open):
            breakers.add_metric(target, 1 if target in merged.breakers_open else 0)
        yield breakers
        yield GaugeMetricFamily("mini_llm_streams_active", "Streams being relayed now.", value=merged.streams_active)
        build = GaugeMetricFamily(
            "mini_llm_build_info",
            "1, labelled with the version, the hot path (compiled or pure) and the upstream client.",
            labels=("version", "hot_path", "upstream_client"),
        )
        build.add_metric(self._build, 1)
        yield build


class Exposition:
    """One worker's /metrics body: a private registry (never the process-wide one) holding the collector."""

    def __init__(self, recorder: Recorder) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Families(recorder))

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body and its content type, in the text format or OpenMetrics, as the Accept header asks."""
        encode, content_type = choose_encoder(accept)
        return encode(self._registry), content_type
