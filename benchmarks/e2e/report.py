"""The markdown tables and the JSON beside them."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from . import summary

_BUSY_ELSEWHERE = 0.05  # of a core: more than this beside the system under test taints its CPU figures


def _f(value: float, digits: int = 2, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _x(ratio: float) -> str:
    """A ratio with two decimals, three below 0.1 (so 0.004x does not read 0.00)."""
    return _f(ratio, 3 if abs(ratio) < 0.1 else 2)


def _pair(a: float, b: float, digits: int = 2) -> str:
    return f"{_f(a, digits)} / {_f(b, digits)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _not_run(name: str, system: dict[str, Any], width: int) -> list[str] | None:
    if system.get("sessions") or not system.get("errors"):
        return None
    return [name, "not run: " + "; ".join(system["errors"]).replace("|", "/")] + [""] * (width - 2)


def _upstream_table(results: dict[str, Any], rows: summary.Rows, up: str) -> list[str]:
    header = ["system", "req/s", "x direct", "x nginx", "p50 / p99 ms", "added p50 / p99 ms, 1 conn",
              "CPU ms/req", "streams/s", "x direct", "CPU ms/stream"]  # fmt: skip
    body = []
    for name, row in rows.items():
        r = {key.removesuffix(f"_{up}"): value for key, value in row.items()}
        failed = _not_run(name, results["systems"][name], len(header))
        body.append(failed or [
            name, _f(r["rps"], 0), _x(r["x_direct"]), _x(r["x_nginx"]), _pair(r["p50_ms"], r["p99_ms"]),
            _pair(r["added_p50_1c_ms"], r["added_p99_1c_ms"], 3), _f(r["cpu_ms_req"], 3), _f(r["streams_s"], 0),
            _x(r["streams_x_direct"]), _f(r["cpu_ms_stream"], 3),
        ])  # fmt: skip
    return _table(header, body)


def _delay_table(results: dict[str, Any], rows: summary.Rows) -> list[str]:
    opts = results["options"]
    delay = f"{opts['token_delay'] * 1000:g} ms"
    header = ["system", f"added TTFB p50 / p99 ms, {opts['ttfb_concurrency']} streams, {delay}",
              f"{opts['concurrency']} streams, {delay}: streams/s, added TTFB p50 ms",
              "whole streams", "failed requests", "peak RSS MB", "cold start s"]  # fmt: skip
    body = []
    for name, r in rows.items():
        failed = _not_run(name, results["systems"][name], len(header))
        body.append(failed or [
            name, _pair(r["added_ttfb_p50_ms"], r["added_ttfb_p99_ms"]),
            f"{_f(r['streams_s_delay'], 0)}, {_f(r['added_ttfb_p50_ms_loaded'], 1)}",
            f"{r['streams_whole']:.0f}/{r['streams_run']:.0f}", f"{r['wrk_errors']:.0f}", _f(r["peak_rss_mb"], 0),
            _f(r["cold_start_s"]),
        ])  # fmt: skip
    return _table(header, body)


def _cores_table(rows: summary.Rows) -> list[str]:
    header = ["system"]
    for up in summary.UPSTREAMS:
        header += [f"64 conns, {up}: system / upstream / load", f"streams, {up}: system / upstream / load"]
    header += ["other work on the system's core (most)", "steal (most)"]
    body = []
    for name, r in rows.items():
        cells = [name]
        for up in summary.UPSTREAMS:
            for suffix in ("", "_streams"):
                sut, upstream, load = (r[f"{key}{suffix}_{up}"] for key in ("sut_core", "upstream_core", "load_core"))
                cells.append(f"{_pair(sut, upstream)} / {_f(load)}")
        body.append([*cells, _f(r["other_core_max"]), _f(r["steal_core_max"])])
    return _table(header, body)


def _idle_table(results: dict[str, Any]) -> list[str]:
    header = ["system", "streams", "opened", "RSS before MB", "RSS open MB", "KB per stream", "fds", "open s", "note"]
    body = [
        [i["system"], f"{i['streams']:,}", f"{i['opened']:,}", _f(i["rss_before_kb"] / 1024, 1),
         _f(i["rss_open_kb"] / 1024, 1), _f(i["kb_per_stream"], 1), str(i["fds_open"]), _f(i["open_seconds"], 1),
         "; ".join([i["note"], *(f"{k}: {v}" for k, v in i["errors"].items())]).strip("; ")]
        for i in results.get("idle", [])
    ]  # fmt: skip
    return _table(header, body)


def _scaling_table(results: dict[str, Any]) -> list[str]:
    header = ["mini-llm", "CPUs", "req/s", "p50 / p99 ms", "CPU ms/req", "cores used", "errors"]
    body = [
        [f"--workers {s['workers']}", s["cpus"], _f(s["rps"], 0), _pair(s["p50_ms"], s["p99_ms"]),
         _f(s["sut_cpu_ms_per_request"], 3), _f(s["sut_core_use"]), str(s["errors"])]
        for s in results.get("scaling", [])
    ]  # fmt: skip
    return _table(header, body)


def check_text(check: dict[str, Any]) -> str:
    """`raw 0.412 (<= 0.5)`: where, the value, the limit it is held to."""
    sign = ">=" if check["higher"] else "<="
    return f"{check['where']} {_x(check['value'])} ({sign} {_x(check['limit'])})"


def _targets_table(targets: list[dict[str, Any]], value: str = f"{summary.GATEWAY}: value (limit)") -> list[str]:
    body = [
        [t["target"], "; ".join(check_text(c) for c in t["checks"]), "met" if t["met"] else "**not met**"]
        for t in targets
    ]
    return _table(["target", value, "met"], body)


def _paired_table(medians: summary.Rows, reference: str) -> list[str]:
    """Each system's median figures over the rounds, and its same-round ratios to `reference`'s with their range."""
    header = ["system", "rounds", "req/s", "CPU ms/req", "CPU ms/stream",
              f"x {reference}: req/s", "CPU/req", "CPU/stream"]  # fmt: skip
    body = []
    for name, m in medians.items():
        ranges = [f"{_x(m[f'x_{key}'])} ({_x(m[f'x_{key}_min'])}-{_x(m[f'x_{key}_max'])})"
                  for key in ("rps", "cpu_ms_req", "cpu_ms_stream")]  # fmt: skip
        body.append([name, f"{m['rounds']:.0f}", _f(m["rps"], 0), _f(m["cpu_ms_req"], 3), _f(m["cpu_ms_stream"], 3)])
        body[-1] += ranges
    return _table(header, body)


def _fast_path(results: dict[str, Any], fast: list[dict[str, Any]]) -> list[str]:
    """Issue 11's before and after, when the run had the build before it to compare with."""
    medians = summary.fast_path_medians(results)
    if summary.BEFORE not in medians:
        return []
    opts = results["options"]
    return [
        "",
        "## Fast path: before and after",
        "",
        f"{summary.BEFORE} is the gateway at git revision `{opts.get('before', '?')}`, built in its own venv with"
        f" that revision's pins. Started together on the {summary.TARGET_UPSTREAM} upstream, pinned to the same"
        f" core, they are loaded in turns, round after round (wrk at 64 connections, then"
        f" {opts.get('concurrency', '?')} streams of 50 events; the order rotates). Each figure is the median over"
        f" the rounds; each ratio the median of the system's figure over {summary.BEFORE}'s in the same round,"
        f" its range in brackets (the noise). Within {summary.NOISE:.0%} of 1.0 is nothing measurable.",
        "",
        *_paired_table(medians, summary.BEFORE),
        "",
        *_targets_table(fast, "median ratio (limit)"),
    ]


def _metrics_cost(results: dict[str, Any], cost: list[dict[str, Any]]) -> list[str]:
    """Issue 12's metrics on against off, when the rounds had both."""
    medians = summary.metrics_cost_medians(results)
    if not medians:
        return []
    return [
        "",
        "## Metrics cost: on and off",
        "",
        f"{summary.NOMETRICS} is {summary.GATEWAY} with `MINI_LLM_METRICS=off`, loaded in the same rounds on the"
        f" {summary.TARGET_UPSTREAM} upstream. Each ratio is the median of {summary.GATEWAY}'s figure over"
        f" {summary.NOMETRICS}'s in the same round, its range in brackets (the noise): the metrics' cost."
        f" Held to at most {summary.METRICS_COST - 1:.0%} more CPU per request and per 50-event stream.",
        "",
        *_paired_table(medians, summary.NOMETRICS),
        "",
        *_targets_table(cost, "median ratio (limit)"),
    ]


def _notes(results: dict[str, Any], rows: summary.Rows) -> list[str]:
    notes = []
    direct = rows.get("direct")
    if direct and not math.isnan(direct["rps_raw"]):
        share = direct["rps_mock"] / direct["rps_raw"]
        notes.append(
            f"- The mock upstream answers {direct['rps_mock']:,.0f} req/s direct against {direct['rps_raw']:,.0f} for"
            f" the raw upstream ({share:.0%}); where a proxy nears the mock's rate, the mock is its ceiling: the raw"
            " upstream's table shows the proxy without it, and the targets are judged there."
        )
    for name, r in rows.items():
        if r["other_core_max"] > _BUSY_ELSEWHERE or r["steal_core_max"] > _BUSY_ELSEWHERE:
            notes.append(
                f"- {name}: other processes took up to {r['other_core_max']:.2f} of its core in a phase, and the"
                f" hypervisor {r['steal_core_max']:.2f}: where it was saturated, its req/s and latency are"
                " understated and its CPU figures overstated (a shared core); rerun on a quiet machine."
            )
    if direct and direct["upstream_core_streams_mock"] + direct["load_core_streams_mock"] > 0.9:
        notes.append(
            f"- Streams saturate the load core even direct (mock upstream {direct['upstream_core_streams_mock']:.2f} +"
            f" stream client {direct['load_core_streams_mock']:.2f} of one core): streams/s says how close each system"
            " comes to that ceiling, and TTFB under load is mostly queueing; the light-load TTFB is the latency."
        )
    for name, system in results["systems"].items():
        for error in system.get("errors", []):
            notes.append(f"- {name}: {error}")
    for key, what in (("fast_path_error", "fast path"), ("idle_error", "idle streams"), ("scaling_error", "scaling")):
        if results.get(key):
            notes.append(f"- {what}: {results[key]}")
    return notes


def _machine(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    opts = results["options"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return [
        f"- {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}",
        f"- load average at start: {' '.join(map(str, m['load_average']))} (shared machine: other work moves numbers)",
        f"- {versions}",
        f"- system under test pinned to CPU {opts['sut_cpu']}; load generators and upstreams on CPU {opts['load_cpu']}",
        f"- {opts['duration']} s per phase, {opts['concurrency']} concurrent streams of 50 events,"
        f" {opts['token_delay'] * 1000:g} ms between events in the delayed run; fd hard limit {m['nofile_hard_limit']}",
    ]


def markdown(
    results: dict[str, Any],
    rows: summary.Rows,
    targets: list[dict[str, Any]],
    fast: list[dict[str, Any]],
    cost: list[dict[str, Any]],
) -> str:
    lines = [
        "# mini-llm end-to-end benchmark",
        "",
        f"{results['finished']}: `{' '.join(['python -m benchmarks.e2e', results['argv']]).strip()}`",
        "",
        "Non-stream: wrk, 64 connections (1 for the added latency). Streams: 50 events each, no delay between"
        " events. Added = minus direct. CPU = the system's processes only (utime + stime from /proc).",
        "",
        "## Targets",
        "",
        f"Judged on the {summary.TARGET_UPSTREAM} upstream; a ratio is {summary.GATEWAY}'s figure over the other's.",
        "",
        *_targets_table(targets),
        *_fast_path(results, fast),
        *_metrics_cost(results, cost),
    ]
    for up, what in (("raw", "`raw_upstream.py`, an asyncio.Protocol that only answers"),
                     ("mock", "`mini-llm mock-upstream`")):  # fmt: skip
        lines += ["", f"## Upstream: {up} ({what})", "", *_upstream_table(results, rows, up)]
    lines += [
        "",
        "## Streams with delays (mock upstream), memory, start",
        "",
        *_delay_table(results, rows),
        "",
        "## Cores busy",
        "",
        "CPU seconds per second of each phase: the system under test (its core), the upstream and the load"
        " generator (wrk or the stream client), which share the other core. Near 1.0 is a bottleneck. The last"
        " columns: what else ran on the system's core (should be near 0).",
        "",
        *_cores_table(rows),
    ]
    if results.get("scaling"):
        lines += ["", "## Workers (raw upstream, 64 connections, the gateway free to use every core)", ""]
        lines += _scaling_table(results)
    if results.get("idle"):
        lines += ["", "## Idle streams", "", *_idle_table(results)]
    lines += ["", "## Machine", "", *_machine(results)]
    notes = _notes(results, rows)
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    """JSON without NaN (not valid JSON): NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write(results: dict[str, Any], out: Path, argv: list[str]) -> tuple[Path, Path]:
    results["finished"] = time.strftime("%Y-%m-%d %H:%M %Z")
    results["argv"] = " ".join(argv)
    rows = summary.metrics(results)
    targets, fast = summary.targets(results, rows), summary.fast_path(results, rows)
    cost = summary.metrics_cost(results, rows)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "latest.md", out / "latest.json"
    md.write_text(markdown(results, rows, targets, fast, cost))
    everything = {
        **results,
        "summary": rows,
        "targets": targets,
        "fast_path": fast,
        "fast_path_medians": summary.fast_path_medians(results),
        "metrics_cost": cost,
        "metrics_cost_medians": summary.metrics_cost_medians(results),
    }
    js.write_text(json.dumps(_plain(everything), indent=2) + "\n")
    return md, js


# This tree's gateway, alone, through the chain, with the metrics off, on either client or hot path.
_OURS = (summary.GATEWAY, summary.CHAIN, summary.NOMETRICS, summary.BASELINE, "mini-llm-pure")


def _lost_in_rounds(results: dict[str, Any]) -> list[str]:
    """This tree's gateways that lost a stream or a request in a fast-path round."""
    lost = {
        name
        for measured in results.get("fast_path_rounds", [])
        for name, phases in measured.items()
        if name in _OURS and (phases["streams"]["whole"] != phases["streams"]["completed"] or phases["wrk64"]["errors"])
    }
    return [f"{name}: lost streams or failed requests in the fast-path rounds" for name in _OURS if name in lost]


def failures(results: dict[str, Any]) -> list[str]:
    """What makes the run fail: this tree's gateway (alone, through the chain, with the metrics off) or the
    baseline did not run, or lost a stream or a request. mini-llm-before is an earlier build, a peer like the
    others: its row says."""
    problems = []
    rows = summary.metrics(results)
    for name in ("direct", *_OURS):
        if name not in rows:
            continue
        problems += [f"{name}: {e}" for e in results["systems"][name].get("errors", [])]
        if rows[name]["streams_whole"] != rows[name]["streams_run"] or rows[name]["wrk_errors"]:
            problems.append(f"{name}: lost streams or failed requests")
    return problems + _lost_in_rounds(results)
