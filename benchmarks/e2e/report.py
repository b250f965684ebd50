"""The markdown tables and the JSON beside them."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from . import summary


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


def _main_table(results: dict[str, Any], rows: dict[str, dict[str, float]]) -> list[str]:
    opts = results["options"]
    delay = f"{opts['token_delay'] * 1000:g} ms"
    header = ["system", "req/s", "x direct", "x nginx", "p50 / p99 ms", "added p50 / p99 ms, 1 conn",
              "CPU ms/req", "streams/s", "x direct", "CPU ms/stream",
              f"added TTFB p50 / p99 ms, {opts['ttfb_concurrency']} streams, {delay}",
              f"{opts['concurrency']} streams, {delay}: streams/s, added TTFB p50 ms",
              "whole streams", "peak RSS MB", "cold start s"]  # fmt: skip
    body = []
    for name, r in rows.items():
        failed = _not_run(name, results["systems"][name], len(header))
        body.append(failed or [
            name, _f(r["rps"], 0), _x(r["x_direct"]), _x(r["x_nginx"]), _pair(r["p50_ms"], r["p99_ms"]),
            _pair(r["added_p50_1c_ms"], r["added_p99_1c_ms"], 3), _f(r["cpu_ms_req"], 3), _f(r["streams_s"], 0),
            _x(r["streams_x_direct"]), _f(r["cpu_ms_stream"], 3), _pair(r["added_ttfb_p50_ms"], r["added_ttfb_p99_ms"]),
            f"{_f(r['streams_s_delay'], 0)}, {_f(r['added_ttfb_p50_ms_loaded'], 1)}",
            f"{r['streams_whole']:.0f}/{r['streams_run']:.0f}", _f(r["peak_rss_mb"], 0), _f(r["cold_start_s"]),
        ])  # fmt: skip
    return _table(header, body)


def _control_table(rows: dict[str, dict[str, float]]) -> list[str]:
    header = ["system", "req/s", "x direct", "x nginx", "CPU ms/req", "streams/s", "x direct", "CPU ms/stream"]
    body = [
        [name, _f(r["rps_control"], 0), _x(r["x_direct_control"]), _x(r["x_nginx_control"]),
         _f(r["cpu_ms_req_control"], 3), _f(r["streams_s_control"], 0), _x(r["streams_x_direct_control"]),
         _f(r["cpu_ms_stream_control"], 3)]
        for name, r in rows.items()
    ]  # fmt: skip
    return _table(header, body)


def _cores_table(rows: dict[str, dict[str, float]]) -> list[str]:
    header = ["system", "64 conns, mock: system / upstream / load", "streams, mock: system / upstream / load",
              "64 conns, canned: system / upstream"]  # fmt: skip
    body = [
        [name, f"{_pair(r['sut_core'], r['upstream_core'])} / {_f(r['load_core'])}",
         f"{_pair(r['sut_core_streams'], r['upstream_core_streams'])} / {_f(r['load_core_streams'])}",
         _pair(r["sut_core_control"], r["upstream_core_control"])]
        for name, r in rows.items()
    ]  # fmt: skip
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


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    names = [n for n in ("mini-llm", "mini-llm-pure") if any(n in t for t in targets)]
    body = []
    for entry in targets:
        cells = [entry["target"]]
        for name in names:
            got = entry.get(name)
            if got is None:
                cells.append("")
                continue
            values = " (canned: ".join(_f(v, 3) for v in got["values"]) + (")" if len(got["values"]) > 1 else "")
            cells.append(f"{values} {'met' if got['met'] else '**not met**'}")
        body.append(cells)
    return _table(["target", *names], body)


def _notes(results: dict[str, Any], rows: dict[str, dict[str, float]]) -> list[str]:
    notes = []
    direct = rows.get("direct")
    if direct and not math.isnan(direct["rps_control"]):
        share = direct["rps"] / direct["rps_control"]
        notes.append(
            f"- The mock upstream answers {direct['rps']:,.0f} req/s direct against {direct['rps_control']:,.0f} for"
            f" canned nginx ({share:.0%}); where a proxy nears the mock's rate, the mock is its ceiling, and the"
            " control table shows the proxy without it."
        )
    if results["options"]["control"] and "nginx-json" not in results["upstreams"]:
        notes.append("- The canned nginx control upstream did not run: nginx is not installed.")
    if direct and direct["upstream_core_streams"] + direct["load_core_streams"] > 0.9:
        notes.append(
            f"- Streams saturate the load core even direct (mock upstream {direct['upstream_core_streams']:.2f} +"
            f" stream client {direct['load_core_streams']:.2f} of one core): streams/s says how close each system"
            " comes to that ceiling, and TTFB under 200 streams is mostly queueing; the light-load TTFB is the latency."
        )
    for name, system in results["systems"].items():
        for error in system.get("errors", []):
            notes.append(f"- {name}: {error}")
    if results.get("idle_error"):
        notes.append(f"- idle streams: {results['idle_error']}")
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


def markdown(results: dict[str, Any], rows: dict[str, dict[str, float]], targets: list[dict[str, Any]]) -> str:
    lines = [
        "# mini-llm end-to-end benchmark",
        "",
        f"{results['finished']}: `{' '.join(['python -m benchmarks.e2e', results['argv']]).strip()}`",
        "",
        "Upstream: `mini-llm mock-upstream`. Non-stream: wrk, 64 connections (1 for the added latency)."
        " Streams: 50 events each; streams/s with no delay between events, TTFB with delays. Added = minus direct.",
        "",
        *_main_table(results, rows),
    ]
    if "nginx-json" in results["upstreams"]:
        lines += [
            "",
            "## Control: canned nginx upstream",
            "",
            "The same load against nginx serving the mock's answers as constant files (the stream in one write).",
            "",
            *_control_table(rows),
        ]
    lines += [
        "",
        "## Cores busy",
        "",
        "CPU seconds per second of each phase: the system under test (its core), the upstream and the load"
        " generator (wrk or the stream client), which share the other core. Near 1.0 is a bottleneck.",
        "",
        *_cores_table(rows),
    ]
    if results.get("idle"):
        lines += ["", "## Idle streams", "", *_idle_table(results)]
    lines += ["", "## Targets", "", *_targets_table(targets), "", "## Machine", "", *_machine(results)]
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
    targets = summary.targets(results, rows)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "latest.md", out / "latest.json"
    md.write_text(markdown(results, rows, targets))
    js.write_text(json.dumps(_plain({**results, "summary": rows, "targets": targets}), indent=2) + "\n")
    return md, js


def failures(results: dict[str, Any]) -> list[str]:
    """What makes the run fail: the gateway or the baseline did not run, or lost a stream or a request."""
    problems = []
    rows = summary.metrics(results)
    for name in ("direct", "mini-llm", "mini-llm-pure"):
        if name not in rows:
            continue
        problems += [f"{name}: {e}" for e in results["systems"][name].get("errors", [])]
        if rows[name]["streams_whole"] != rows[name]["streams_run"] or rows[name]["wrk_errors"]:
            problems.append(f"{name}: lost streams or failed requests")
    return problems
