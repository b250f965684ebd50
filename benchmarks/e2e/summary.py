"""From raw results to the numbers the tables show: ratios to direct and nginx, added latency, the targets
of issue 10, issue 11's fast path (the gateway against its own earlier build) and issue 12's metrics cost
(the gateway against itself with the metrics off)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

NAN: Final = math.nan
# The upstream roles every system runs the same non-stream and stream phases against (run.SESSIONS).
UPSTREAMS: Final = ("mock", "raw")
# The upstream the targets are judged on: it costs next to nothing, so the figures are the system's.
TARGET_UPSTREAM: Final = "raw"
GATEWAY: Final = "mini-llm"  # the system the targets are about
BASELINE: Final = "mini-llm-aiohttp"  # "today's": the same gateway on the aiohttp client
BEFORE: Final = "mini-llm-before"  # the gateway at the revision before issue 11, same run
CHAIN: Final = "mini-llm-chain"  # the gateway through a 2-target alias chain whose first target answers
NOMETRICS: Final = "mini-llm-nometrics"  # the gateway with MINI_LLM_METRICS=off, same run
FAST_PATH_SYSTEMS: Final = (BEFORE, GATEWAY, CHAIN, NOMETRICS)  # loaded in turns, round after round (run._fast_path)
# What the fast path compares: figure -> (phase, key) of each round's measurement.
FAST_PATH_FIGURES: Final = {
    "cpu_ms_req": ("wrk64", "sut_cpu_ms_per_request"),
    "rps": ("wrk64", "rps"),
    "cpu_ms_stream": ("streams", "sut_cpu_ms_per_request"),
}
# A median ratio within this of 1.0 is "nothing measurable": rounds of one build on a shared 2-core
# machine differ by a few percent.
NOISE: Final = 0.05
# Issue 12: "recording metrics must cost at most 3% of the request CPU" (mini-llm over mini-llm-nometrics).
METRICS_COST: Final = 1.03

Rows = dict[str, dict[str, float]]


def _phase(system: dict[str, Any], role: str, phase: str) -> dict[str, Any]:
    found: dict[str, Any] = system.get("sessions", {}).get(role, {}).get(phase, {})
    return found


def _get(system: dict[str, Any], role: str, phase: str, key: str) -> float:
    value = _phase(system, role, phase).get(key)
    return float(value) if isinstance(value, int | float) else NAN


def ratio(a: float, b: float) -> float:
    """a / b; NaN when either is missing or b is zero."""
    return a / b if b and not math.isnan(b) and not math.isnan(a) else NAN


def _upstream_row(system: dict[str, Any], direct: dict[str, Any], proxy: dict[str, Any], up: str) -> dict[str, float]:
    rps = _get(system, up, "wrk64", "rps")
    sps = _get(system, up, "streams", "streams_per_s")
    row = {
        "rps": rps,
        "x_direct": ratio(rps, _get(direct, up, "wrk64", "rps")),
        "x_nginx": ratio(rps, _get(proxy, up, "wrk64", "rps")),
        "p50_ms": _get(system, up, "wrk64", "p50_ms"),
        "p99_ms": _get(system, up, "wrk64", "p99_ms"),
        "cpu_ms_req": _get(system, up, "wrk64", "sut_cpu_ms_per_request"),
        "streams_s": sps,
        "streams_x_direct": ratio(sps, _get(direct, up, "streams", "streams_per_s")),
        "cpu_ms_stream": _get(system, up, "streams", "sut_cpu_ms_per_request"),
    }
    for pct in ("p50", "p99"):
        row[f"added_{pct}_1c_ms"] = _get(system, up, "wrk1", f"{pct}_ms") - _get(direct, up, "wrk1", f"{pct}_ms")
    for phase, suffix in (("wrk64", ""), ("streams", "_streams")):
        for key in ("sut_core", "upstream_core", "load_core"):
            row[key + suffix] = _get(system, up, phase, key + "_use")
    return {f"{key}_{up}": value for key, value in row.items()}


def _most(system: dict[str, Any], key: str) -> float:
    """The largest value of a per-phase figure over every phase the system ran; NaN if none has it."""
    values = [p[key] for s in system.get("sessions", {}).values() for p in s.values() if p.get(key) is not None]
    return max(values, default=NAN)


def metrics(results: dict[str, Any]) -> Rows:
    """One flat row per system, keys suffixed by upstream (`rps_raw`); NaN where a phase did not run."""
    systems: dict[str, dict[str, Any]] = results["systems"]
    empty: dict[str, Any] = {}
    direct, proxy = systems.get("direct", empty), systems.get("nginx", empty)
    rows: Rows = {}
    for name, system in systems.items():
        row: dict[str, float] = {}
        for up in UPSTREAMS:
            row.update(_upstream_row(system, direct, proxy, up))
        for pct in ("p50", "p99"):
            for phase, suffix in (("ttfb", ""), ("streams", "_loaded")):
                ttfb = _get(system, "mock-delay", phase, f"ttfb_{pct}_ms")
                row[f"added_ttfb_{pct}_ms{suffix}"] = ttfb - _get(direct, "mock-delay", phase, f"ttfb_{pct}_ms")
        row["streams_s_delay"] = _get(system, "mock-delay", "streams", "streams_per_s")
        row["other_core_max"] = _most(system, "sut_core_other")
        row["steal_core_max"] = _most(system, "sut_core_steal")
        stream_phases = [p["streams"] for p in system.get("sessions", {}).values() if "streams" in p]
        row["streams_whole"] = sum(p["whole"] for p in stream_phases)
        row["streams_run"] = sum(p["completed"] for p in stream_phases)
        row["wrk_errors"] = sum(p[k]["errors"] for p in system.get("sessions", {}).values() for k in p if "wrk" in k)
        row["peak_rss_mb"] = system.get("peak_rss_kb", 0) / 1024 if system.get("peak_rss_kb") else NAN
        starts = system.get("cold_start_s", [])
        row["cold_start_s"] = statistics.median(starts) if starts else NAN
        rows[name] = row
    return rows


@dataclass(frozen=True)
class Check:
    """One comparison a target makes: `value` against `limit` (at least it if `higher`, else at most)."""

    where: str
    value: float
    limit: float
    higher: bool

    @property
    def met(self) -> bool:
        if math.isnan(self.value) or math.isnan(self.limit):
            return False
        return self.value >= self.limit if self.higher else self.value <= self.limit


def _at_most(where: str, value: float, limit: float) -> Check:
    return Check(where, value, limit, higher=False)


def _at_least(where: str, value: float, limit: float) -> Check:
    return Check(where, value, limit, higher=True)


def _key(rows: Rows, name: str, key: str) -> float:
    return rows.get(name, {}).get(key, NAN)


Evaluate = Callable[[dict[str, Any], Rows], list[Check]]


def _versus(key: str, other: str, limit: float, higher: bool) -> Evaluate:
    """The gateway's figure over another system's, on the target upstream, against a fixed limit."""
    column = f"{key}_{TARGET_UPSTREAM}"

    def evaluate(results: dict[str, Any], rows: Rows) -> list[Check]:
        return [Check(TARGET_UPSTREAM, ratio(_key(rows, GATEWAY, column), _key(rows, other, column)), limit, higher)]

    return evaluate


def _added_p50(results: dict[str, Any], rows: Rows) -> list[Check]:
    """The gateway's added latency at one connection, held to TensorZero's in the same run."""
    column = f"added_p50_1c_ms_{TARGET_UPSTREAM}"
    return [_at_most(TARGET_UPSTREAM, _key(rows, GATEWAY, column), _key(rows, "tensorzero", column))]


def _streams_vs_direct(results: dict[str, Any], rows: Rows) -> list[Check]:
    return [_at_least(up, _key(rows, GATEWAY, f"streams_x_direct_{up}"), 1.0) for up in UPSTREAMS]


def _compiled_vs_pure(results: dict[str, Any], rows: Rows) -> list[Check]:
    up = TARGET_UPSTREAM
    fast, pure = rows.get(GATEWAY, {}), rows.get("mini-llm-pure", {})
    return [
        _at_least("req/s", ratio(fast.get(f"rps_{up}", NAN), pure.get(f"rps_{up}", NAN)), 1.5),
        _at_least("CPU/stream", ratio(pure.get(f"cpu_ms_stream_{up}", NAN), fast.get(f"cpu_ms_stream_{up}", NAN)), 1.5),
    ]


def _idle(results: dict[str, Any], rows: Rows) -> list[Check]:
    """KB per idle stream, for every idle run of the gateway; a run that could not open them all fails."""
    checks = []
    for item in results.get("idle", []):
        if item["system"] == GATEWAY:
            kb = item["kb_per_stream"] if item["opened"] == item["streams"] else NAN
            checks.append(_at_most(f"{item['streams']:,} streams", kb, 20.0))
    return checks or [_at_most("not run", NAN, 20.0)]


def _cold_start(results: dict[str, Any], rows: Rows) -> list[Check]:
    return [_at_most("median", _key(rows, GATEWAY, "cold_start_s"), 0.35)]


def _workers(results: dict[str, Any], rows: Rows) -> list[Check]:
    rps = {item["workers"]: item["rps"] for item in results.get("scaling", [])}
    return [_at_least(TARGET_UPSTREAM, ratio(rps.get(2, NAN), rps.get(1, NAN)), 1.7)]


# Issue 10's targets, in its order: "today's" is the same gateway on the aiohttp client, same run.
TARGETS: Final[tuple[tuple[str, Evaluate], ...]] = (
    ("CPU per non-stream request <= 0.5x today's (x mini-llm-aiohttp)", _versus("cpu_ms_req", BASELINE, 0.5, False)),
    ("CPU per non-stream request <= 0.6x TensorZero's", _versus("cpu_ms_req", "tensorzero", 0.6, False)),
    ("req/s at 64 connections >= 1.5x TensorZero (stretch 2x)", _versus("rps", "tensorzero", 1.5, True)),
    ("req/s at 64 connections >= 2.5x the aiohttp pass-through", _versus("rps", "aiohttp", 2.5, True)),
    ("added p50 at 1 connection <= TensorZero's (ms)", _added_p50),
    ("CPU per 50-event stream <= 0.5x today's (x mini-llm-aiohttp)", _versus("cpu_ms_stream", BASELINE, 0.5, False)),
    ("streams/s without delay >= 1.0x direct, on both upstreams", _streams_vs_direct),
    ("compiled vs pure end to end >= 1.5x (req/s, and CPU per stream)", _compiled_vs_pure),
    ("RSS per idle open stream <= 20 KB", _idle),
    ("cold start <= 0.35 s", _cold_start),
    ("--workers 2, unpinned, vs one worker >= 1.7x req/s", _workers),
)


def _figure(measured: dict[str, Any], name: str, figure: str) -> float:
    phase, key = FAST_PATH_FIGURES[figure]
    value = measured.get(name, {}).get(phase, {}).get(key)
    return float(value) if isinstance(value, int | float) else NAN


def _median(values: list[float]) -> float:
    kept = [value for value in values if not math.isnan(value)]
    return statistics.median(kept) if kept else NAN


def compared(names: Collection[str]) -> bool:
    """Whether the fast-path systems of a run make a comparison: one beside mini-llm-before, or the gateway
    beside mini-llm-nometrics (so a metrics-cost run needs no earlier build)."""
    return (BEFORE in names and len(names) > 1) or (GATEWAY in names and NOMETRICS in names)


def _paired(rounds: list[dict[str, Any]], name: str, reference: str) -> dict[str, float]:
    """Over the rounds that ran `name`: the median of each figure and of its ratio to `reference`'s in the
    same round (`x_` keys; `_min` and `_max` their range, the noise). Pairing within a round cancels the
    drift of a shared machine, which moves every system of the round alike."""
    ran = [measured for measured in rounds if name in measured]
    row = {"rounds": float(len(ran))}
    for figure in FAST_PATH_FIGURES:
        row[figure] = _median([_figure(measured, name, figure) for measured in ran])
        pairs = [ratio(_figure(measured, name, figure), _figure(measured, reference, figure)) for measured in ran]
        kept = [value for value in pairs if not math.isnan(value)]
        row[f"x_{figure}"] = _median(kept)
        row[f"x_{figure}_min"], row[f"x_{figure}_max"] = min(kept, default=NAN), max(kept, default=NAN)
    return row


def fast_path_medians(results: dict[str, Any]) -> Rows:
    """Per fast-path system that ran: its figures and their same-round ratios to mini-llm-before's."""
    rounds: list[dict[str, Any]] = results.get("fast_path_rounds", [])
    return {name: _paired(rounds, name, BEFORE) for name in FAST_PATH_SYSTEMS if any(name in m for m in rounds)}


def metrics_cost_medians(results: dict[str, Any]) -> Rows:
    """The gateway and mini-llm-nometrics, over the rounds that ran both: their figures and their same-round
    ratios to mini-llm-nometrics's (the gateway's `x_` keys are the metrics' cost); empty unless both ran."""
    rounds = [m for m in results.get("fast_path_rounds", []) if GATEWAY in m and NOMETRICS in m]
    return {name: _paired(rounds, name, NOMETRICS) for name in (GATEWAY, NOMETRICS)} if rounds else {}


def _first_attempt(system: str) -> Evaluate:
    """`system` over mini-llm-before, round by round, the median: CPU per request and per stream, and req/s,
    each within NOISE of 1.0."""

    def evaluate(results: dict[str, Any], rows: Rows) -> list[Check]:
        medians = fast_path_medians(results).get(system, {})
        return [
            _at_most("CPU/req", medians.get("x_cpu_ms_req", NAN), 1 + NOISE),
            _at_least("req/s", medians.get("x_rps", NAN), 1 - NOISE),
            _at_most("CPU/stream", medians.get("x_cpu_ms_stream", NAN), 1 + NOISE),
        ]

    return evaluate


# Issue 11: "a request that succeeds on its first attempt pays nothing measurable", before and after.
FAST_PATH: Final[tuple[tuple[str, Evaluate], ...]] = (
    (
        f"first-attempt success costs nothing measurable: CPU/req and req/s of {GATEWAY} vs {BEFORE}",
        _first_attempt(GATEWAY),
    ),
    (f"a 2-target alias chain whose first target answers, too: {CHAIN} vs {BEFORE}", _first_attempt(CHAIN)),
)


def _metrics_cost(results: dict[str, Any], rows: Rows) -> list[Check]:
    """The gateway's CPU per request and per stream over mini-llm-nometrics's, round by round, the median."""
    cost = metrics_cost_medians(results).get(GATEWAY, {})
    return [
        _at_most("CPU/req", cost.get("x_cpu_ms_req", NAN), METRICS_COST),
        _at_most("CPU/stream", cost.get("x_cpu_ms_stream", NAN), METRICS_COST),
    ]


# Issue 12: the metrics on against off, in the same run.
METRICS_COST_TARGETS: Final[tuple[tuple[str, Evaluate], ...]] = (
    (
        f"recording metrics costs at most {METRICS_COST - 1:.0%} of the request CPU: {GATEWAY} vs {NOMETRICS}",
        _metrics_cost,
    ),
)


def judge(evaluations: tuple[tuple[str, Evaluate], ...], results: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    """Each labelled evaluation: its checks (value, limit) and whether all of them are met."""
    out = []
    for label, evaluate in evaluations:
        checks = evaluate(results, rows)
        out.append(
            {
                "target": label,
                "checks": [
                    {"where": c.where, "value": c.value, "limit": c.limit, "higher": c.higher, "met": c.met}
                    for c in checks
                ],
                "met": all(c.met for c in checks),
            }
        )
    return out


def targets(results: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    """Each target of issue 10 for the gateway."""
    return judge(TARGETS, results, rows)


def fast_path(results: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    """Issue 11's fast path: the gateway and its chain against the build before it, in the same run."""
    return judge(FAST_PATH, results, rows)


def metrics_cost(results: dict[str, Any], rows: Rows) -> list[dict[str, Any]]:
    """Issue 12's metrics cost: the gateway against itself with MINI_LLM_METRICS=off, in the same run."""
    return judge(METRICS_COST_TARGETS, results, rows)
