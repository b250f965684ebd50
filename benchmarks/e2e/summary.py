"""From raw results to the numbers the tables show: ratios to direct and nginx, added latency, the targets."""

from __future__ import annotations

import math
import statistics
from typing import Any, Final

NAN: Final = math.nan


def _phase(system: dict[str, Any], role: str, phase: str) -> dict[str, Any]:
    found: dict[str, Any] = system.get("sessions", {}).get(role, {}).get(phase, {})
    return found


def _get(system: dict[str, Any], role: str, phase: str, key: str) -> float:
    value = _phase(system, role, phase).get(key)
    return float(value) if isinstance(value, int | float) else NAN


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else NAN


def metrics(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """One flat row per system; NaN where a phase did not run."""
    systems: dict[str, dict[str, Any]] = results["systems"]
    empty: dict[str, Any] = {}
    direct, proxy = systems.get("direct", empty), systems.get("nginx", empty)
    rows: dict[str, dict[str, float]] = {}
    for name, system in systems.items():
        row: dict[str, float] = {}
        for suffix, role_json, role_sse in (("", "mock", "mock"), ("_control", "nginx-json", "nginx-sse")):
            rps = _get(system, role_json, "wrk64", "rps")
            row["rps" + suffix] = rps
            row["x_direct" + suffix] = _ratio(rps, _get(direct, role_json, "wrk64", "rps"))
            row["x_nginx" + suffix] = _ratio(rps, _get(proxy, role_json, "wrk64", "rps"))
            row["cpu_ms_req" + suffix] = _get(system, role_json, "wrk64", "sut_cpu_ms_per_request")
            row["sut_core" + suffix] = _get(system, role_json, "wrk64", "sut_core_use")
            row["upstream_core" + suffix] = _get(system, role_json, "wrk64", "upstream_core_use")
            sps = _get(system, role_sse, "streams", "streams_per_s")
            row["streams_s" + suffix] = sps
            row["streams_x_direct" + suffix] = _ratio(sps, _get(direct, role_sse, "streams", "streams_per_s"))
            row["cpu_ms_stream" + suffix] = _get(system, role_sse, "streams", "sut_cpu_ms_per_request")
        row["p50_ms"], row["p99_ms"] = _get(system, "mock", "wrk64", "p50_ms"), _get(system, "mock", "wrk64", "p99_ms")
        for pct in ("p50", "p99"):
            one = _get(system, "mock", "wrk1", f"{pct}_ms")
            row[f"added_{pct}_1c_ms"] = one - _get(direct, "mock", "wrk1", f"{pct}_ms")
            for phase, suffix in (("ttfb", ""), ("streams", "_loaded")):
                ttfb = _get(system, "mock-delay", phase, f"ttfb_{pct}_ms")
                row[f"added_ttfb_{pct}_ms{suffix}"] = ttfb - _get(direct, "mock-delay", phase, f"ttfb_{pct}_ms")
        row["streams_s_delay"] = _get(system, "mock-delay", "streams", "streams_per_s")
        row["load_core"] = _get(system, "mock", "wrk64", "load_core_use")
        row["load_core_streams"] = _get(system, "mock", "streams", "load_core_use")
        row["sut_core_streams"] = _get(system, "mock", "streams", "sut_core_use")
        row["upstream_core_streams"] = _get(system, "mock", "streams", "upstream_core_use")
        stream_phases = [p["streams"] for p in system.get("sessions", {}).values() if "streams" in p]
        row["streams_whole"] = sum(p["whole"] for p in stream_phases)
        row["streams_run"] = sum(p["completed"] for p in stream_phases)
        row["wrk_errors"] = sum(p[k]["errors"] for p in system.get("sessions", {}).values() for k in p if "wrk" in k)
        row["peak_rss_mb"] = system.get("peak_rss_kb", 0) / 1024 if system.get("peak_rss_kb") else NAN
        starts = system.get("cold_start_s", [])
        row["cold_start_s"] = statistics.median(starts) if starts else NAN
        rows[name] = row
    return rows


# (label, metric, limit, higher is better)
TARGETS: Final = (
    ("non-stream req/s at 64 connections >= 0.5x nginx", "x_nginx", 0.5, True),
    ("added latency p50 at 1 connection <= 0.25 ms", "added_p50_1c_ms", 0.25, False),
    ("CPU per non-stream request <= 0.08 ms", "cpu_ms_req", 0.08, False),
    ("CPU per 50-event stream <= 0.6 ms", "cpu_ms_stream", 0.6, False),
    ("streams/s without delay >= 1.0x direct", "streams_x_direct", 1.0, True),
    ("added TTFB p50 with 5 ms delays <= 1 ms (light load)", "added_ttfb_p50_ms", 1.0, False),
    ("cold start <= 0.5 s", "cold_start_s", 0.5, False),
)


def _meets(value: float, limit: float, higher: bool) -> bool:
    return not math.isnan(value) and (value >= limit if higher else value <= limit)


def targets(results: dict[str, Any], rows: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each target for mini-llm and mini-llm-pure; a ratio target must hold with both upstreams that ran."""
    out: list[dict[str, Any]] = []
    gateways = [name for name in ("mini-llm", "mini-llm-pure") if name in rows]
    for label, key, limit, higher in TARGETS:
        entry: dict[str, Any] = {"target": label}
        for name in gateways:
            values = [rows[name][key]] + [v for v in [rows[name].get(key + "_control", NAN)] if not math.isnan(v)]
            entry[name] = {"values": values, "met": all(_meets(v, limit, higher) for v in values)}
        out.append(entry)
    for item in results.get("idle", []):
        label = f"{item['streams']:,} idle streams: RSS growth <= 20 KB per stream"
        met = item["opened"] == item["streams"] and item["kb_per_stream"] <= 20
        out.append({"target": label, item["system"]: {"values": [item["kb_per_stream"]], "met": met}})
    if {"mini-llm", "mini-llm-pure"} <= rows.keys():
        fast, pure = rows["mini-llm"]["cpu_ms_stream"], rows["mini-llm-pure"]["cpu_ms_stream"]
        out.append(
            {
                "target": "compiled ahead of pure on streams (CPU ms per stream, pure / compiled)",
                "mini-llm": {"values": [_ratio(pure, fast)], "met": _meets(_ratio(pure, fast), 1.05, True)},
            }
        )
    if "aiohttp" in rows:
        for key, what in (("rps", "req/s"), ("streams_s", "streams/s")):
            entry = {"target": f"{what} not below the aiohttp pass-through (x aiohttp)"}
            for name in gateways:
                ratio = _ratio(rows[name][key], rows["aiohttp"][key])
                entry[name] = {"values": [ratio], "met": _meets(ratio, 1.0, True)}
            out.append(entry)
    return out
