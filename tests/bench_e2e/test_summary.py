"""The numbers behind the tables, from synthetic results: per-upstream rows, ratios, the targets of issue 10,
issue 11's fast path, issue 12's metrics cost, the interference figures and the markdown the tables print."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict
from typing import Any

import pytest

from e2e import report, summary, tensorzero_venv
from e2e.idle import IdleResult
from e2e.procs import read_port
from e2e.run import interference


def _wrk(rps: float, cpu_ms: float | None, p50: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p50 * 2,
        "errors": 0,
        "sut_cpu_ms_per_request": cpu_ms,
        "sut_core_use": 0.9,
        "upstream_core_use": 0.1,
        "load_core_use": 0.1,
    }


def _streams(sps: float, cpu_ms: float | None, ttfb: float = 1.0, other: float = 0.0) -> dict[str, Any]:
    return {
        "streams_per_s": sps,
        "sut_cpu_ms_per_request": cpu_ms,
        "ttfb_p50_ms": ttfb,
        "ttfb_p99_ms": ttfb * 3,
        "whole": 10,
        "completed": 10,
        "sut_core_use": 0.5,
        "upstream_core_use": 0.1,
        "load_core_use": 0.8,
        "sut_core_other": other,
        "sut_core_steal": 0.0,
    }


def _system(rps: float, cpu: float | None, p50_1c: float, sps: float, cpu_stream: float | None) -> dict[str, Any]:
    """The same figures against both upstreams, except the mock caps req/s at 5,000."""
    sessions = {
        up: {
            "wrk64": _wrk(min(rps, cap), cpu, 10.0),
            "wrk1": _wrk(1000, cpu, p50_1c),
            "streams": _streams(sps, cpu_stream),
        }
        for up, cap in (("mock", 5000.0), ("raw", math.inf))
    }
    sessions["mock-delay"] = {"streams": _streams(sps / 2, cpu_stream), "ttfb": _streams(50, cpu_stream, 1.0 + p50_1c)}
    return {"sessions": sessions, "cold_start_s": [0.3, 0.2, 0.4], "peak_rss_kb": 90 * 1024, "errors": []}


def _scaled(workers: int, rps: float) -> dict[str, Any]:
    return {"workers": workers, "cpus": "0,1", **_wrk(rps, 0.1, 10.0)}


def _results() -> dict[str, Any]:
    return {
        "options": {
            "token_delay": 0.005,
            "ttfb_concurrency": 20,
            "concurrency": 200,
            "duration": 6,
            "sut_cpu": 1,
            "load_cpu": 0,
        },
        "upstreams": {},
        "systems": {
            "direct": _system(40000, None, 0.1, 1000, None),
            "nginx": _system(20000, 0.03, 0.14, 1000, 0.1),
            "mini-llm": _system(12000, 0.08, 0.30, 1050, 0.3),
            "mini-llm-aiohttp": _system(5000, 0.2, 0.6, 800, 0.8),
            "mini-llm-pure": _system(6000, 0.16, 0.4, 900, 0.5),
            "aiohttp": _system(4000, 0.25, 0.5, 700, 0.7),
            "tensorzero": _system(6000, 0.16, 0.35, 450, 1.2),
        },
        "idle": [{"system": "mini-llm", **asdict(IdleResult(1000, 1000, opened=1000, kb_per_stream=18.5))}],
        "scaling": [_scaled(1, 6000.0), _scaled(2, 9000.0)],
    }


def test_rows_per_upstream_and_ratios() -> None:
    rows = summary.metrics(_results())
    gateway = rows["mini-llm"]
    assert gateway["rps_raw"] == 12000
    assert gateway["rps_mock"] == 5000  # the mock's ceiling
    assert gateway["x_direct_raw"] == pytest.approx(0.3)
    assert gateway["x_nginx_raw"] == pytest.approx(0.6)
    assert gateway["x_direct_mock"] == pytest.approx(1.0)
    assert gateway["added_p50_1c_ms_raw"] == pytest.approx(0.2)
    assert gateway["streams_x_direct_raw"] == pytest.approx(1.05)
    assert gateway["cold_start_s"] == 0.3
    assert gateway["peak_rss_mb"] == 90
    assert gateway["added_ttfb_p50_ms"] == pytest.approx(0.2)
    assert math.isnan(rows["direct"]["cpu_ms_req_raw"])


def test_every_issue_target_with_its_value_and_verdict() -> None:
    results = _results()
    targets = summary.targets(results, summary.metrics(results))
    assert [t["target"] for t in targets] == [label for label, _ in summary.TARGETS]
    values = [[round(c["value"], 4) for c in t["checks"]] for t in targets]
    assert values == [
        [0.4],  # CPU/request: 0.08 / 0.2 of mini-llm-aiohttp
        [0.5],  # CPU/request: 0.08 / 0.16 of TensorZero
        [2.0],  # req/s x TensorZero
        [3.0],  # req/s x aiohttp
        [0.2],  # added p50, against TensorZero's 0.25
        [0.375],  # CPU/stream: 0.3 / 0.8
        [1.05, 1.05],  # streams/s x direct, mock and raw
        [2.0, 1.6667],  # compiled vs pure: req/s, CPU per stream
        [18.5],  # KB per idle stream
        [0.3],  # cold start
        [1.5],  # workers 2 / 1
    ]
    assert [t["met"] for t in targets] == [True] * 10 + [False]
    assert targets[4]["checks"][0]["limit"] == pytest.approx(0.25)


def test_a_target_fails_when_a_check_or_a_system_is_missing() -> None:
    results = _results()
    results["systems"]["mini-llm"]["sessions"]["mock"]["streams"]["streams_per_s"] = 900  # 0.9x direct
    del results["systems"]["tensorzero"]
    results["idle"][0]["opened"] = 999  # not every stream opened: no KB figure
    targets = {t["target"]: t for t in summary.targets(results, summary.metrics(results))}
    streams = targets["streams/s without delay >= 1.0x direct, on both upstreams"]
    assert [c["met"] for c in streams["checks"]] == [False, True]
    assert not streams["met"]
    assert not targets["CPU per non-stream request <= 0.6x TensorZero's"]["met"]
    assert not targets["RSS per idle open stream <= 20 KB"]["met"]


def test_targets_table_prints_value_limit_and_verdict() -> None:
    results = _results()
    rows = summary.metrics(results)
    text = report.markdown(
        {**results, "finished": "now", "argv": "--quick", "machine": _machine()},
        rows,
        summary.targets(results, rows),
        summary.fast_path(results, rows),
        summary.metrics_cost(results, rows),
    )
    assert "| CPU per non-stream request <= 0.5x today's (x mini-llm-aiohttp) | raw 0.40 (<= 0.50) | met |" in text
    assert "| --workers 2, unpinned, vs one worker >= 1.7x req/s | raw 1.50 (>= 1.70) | **not met** |" in text
    assert "| streams/s without delay >= 1.0x direct, on both upstreams | mock 1.05 (>= 1.00); raw 1.05" in text
    for up in summary.UPSTREAMS:
        assert f"## Upstream: {up} " in text
    assert "| --workers 2 | 0,1 | 9,000 | 10.00 / 20.00 | 0.100 | 0.90 | 0 |" in text


def _round(before: float, gateway: float, chain: float) -> dict[str, Any]:
    """One fast-path round: each system at `x` req/s and 1/`x` ms CPU per request and per stream."""
    figures = {"mini-llm-before": before, "mini-llm": gateway, "mini-llm-chain": chain}
    return {
        name: {"wrk64": _wrk(1000 * x, 0.1 / x, 10.0), "streams": _streams(100 * x, 0.3 / x)}
        for name, x in figures.items()
    }


def _before_and_after() -> dict[str, Any]:
    results = _results()
    results["options"]["before"] = "2f4dc1d"
    results["systems"]["mini-llm-before"] = _system(12500, 0.08, 0.30, 1050, 0.3)
    results["systems"]["mini-llm-chain"] = _system(11500, 0.088, 0.31, 1000, 0.3)
    # The machine drifts (round 2 is slow for everyone): pairing within a round cancels it.
    results["fast_path_rounds"] = [_round(10, 10, 9), _round(5, 4.9, 4.5), _round(10, 10.2, 9.5)]
    return results


def test_fast_path_pairs_each_round_with_the_build_before_and_takes_medians() -> None:
    medians = summary.fast_path_medians(_before_and_after())
    assert list(medians) == ["mini-llm-before", "mini-llm", "mini-llm-chain"]
    gateway = medians["mini-llm"]
    assert gateway["rounds"] == 3
    assert gateway["rps"] == pytest.approx(10000)  # median of 10,000, 4,900, 10,200
    assert gateway["x_rps"] == pytest.approx(1.0)  # median of 1.0, 0.98, 1.02
    assert [gateway["x_rps_min"], gateway["x_rps_max"]] == pytest.approx([0.98, 1.02])
    assert gateway["x_cpu_ms_req"] == pytest.approx(1.0)
    assert medians["mini-llm-chain"]["x_rps"] == pytest.approx(0.9)
    assert medians["mini-llm-chain"]["x_cpu_ms_stream"] == pytest.approx(10 / 9)
    assert medians["mini-llm-before"]["x_rps"] == 1.0


def test_fast_path_holds_the_gateway_and_its_chain_to_the_build_before() -> None:
    results = _before_and_after()
    fast = summary.fast_path(results, summary.metrics(results))
    assert [t["target"] for t in fast] == [label for label, _ in summary.FAST_PATH]
    assert [[(c["where"], round(c["value"], 4), c["limit"], c["met"]) for c in t["checks"]] for t in fast] == [
        [("CPU/req", 1.0, 1.05, True), ("req/s", 1.0, 0.95, True), ("CPU/stream", 1.0, 1.05, True)],
        [("CPU/req", 1.1111, 1.05, False), ("req/s", 0.9, 0.95, False), ("CPU/stream", 1.1111, 1.05, False)],
    ]
    assert [t["met"] for t in fast] == [True, False]


def test_fast_path_section_only_when_the_build_before_ran() -> None:
    results = _before_and_after()
    rows = summary.metrics(results)
    page = {**results, "finished": "now", "argv": "", "machine": _machine()}
    text = report.markdown(page, rows, [], summary.fast_path(results, rows), [])
    assert "## Fast path: before and after" in text
    assert "mini-llm-before is the gateway at git revision `2f4dc1d`" in text
    assert "| mini-llm | 3 | 10,000 | 0.010 | 0.030 | 1.00 (0.98-1.02) | 1.00 (0.98-1.02) | 1.00 (0.98-1.02) |" in text
    assert (
        "| first-attempt success costs nothing measurable: CPU/req and req/s of mini-llm vs mini-llm-before"
        " | CPU/req 1.00 (<= 1.05); req/s 1.00 (>= 0.95); CPU/stream 1.00 (<= 1.05) | met |"
    ) in text
    for measured in results["fast_path_rounds"]:
        del measured["mini-llm-before"]
    rows = summary.metrics(results)
    fast = summary.fast_path(results, rows)
    assert not any(t["met"] for t in fast)  # no build before to compare with: nothing is shown as met
    assert "## Fast path" not in report.markdown(page, rows, [], fast, [])


def test_a_chain_that_loses_a_stream_fails_the_run() -> None:
    results = _before_and_after()
    assert report.failures(results) == []
    results["systems"]["mini-llm-chain"]["sessions"]["raw"]["streams"]["whole"] = 9
    assert report.failures(results) == ["mini-llm-chain: lost streams or failed requests"]


def _on_and_off(*rounds: tuple[float, float]) -> dict[str, Any]:
    """Rounds of mini-llm at 1 and mini-llm-nometrics at `(gateway, nometrics)` CPU per request and per stream
    (ms, each over 1,000 requests of the phase), no mini-llm-before: the run a metrics-cost check makes."""
    results = _results()
    results["systems"]["mini-llm-nometrics"] = _system(12200, 0.079, 0.30, 1050, 0.3)
    results["fast_path_rounds"] = [
        {
            name: {"wrk64": _wrk(10000 / cpu, cpu, 10.0), "streams": _streams(1000 / cpu, 3 * cpu)}
            for name, cpu in (("mini-llm", gateway), ("mini-llm-nometrics", nometrics))
        }
        for gateway, nometrics in rounds
    ]
    return results


def test_metrics_cost_is_the_gateway_over_itself_with_the_metrics_off_round_by_round() -> None:
    # Round 2 is slow for both (a busy machine): only the same-round ratio, 1.02, says what the metrics cost.
    results = _on_and_off((0.102, 0.1), (0.204, 0.2), (0.101, 0.1))
    medians = summary.metrics_cost_medians(results)
    assert list(medians) == ["mini-llm", "mini-llm-nometrics"]
    cost = medians["mini-llm"]
    assert cost["rounds"] == 3
    assert cost["cpu_ms_req"] == pytest.approx(0.102)  # median of the figures: the slow round is in its range
    assert cost["x_cpu_ms_req"] == pytest.approx(1.02)
    assert [cost["x_cpu_ms_req_min"], cost["x_cpu_ms_req_max"]] == pytest.approx([1.01, 1.02])
    assert cost["x_cpu_ms_stream"] == pytest.approx(1.02)
    assert cost["x_rps"] == pytest.approx(1 / 1.02)
    assert medians["mini-llm-nometrics"]["x_cpu_ms_req"] == 1.0
    assert math.isnan(summary.fast_path_medians(results)["mini-llm"]["x_cpu_ms_req"])  # no mini-llm-before here
    [target] = summary.metrics_cost(results, summary.metrics(results))
    assert target["target"] == "recording metrics costs at most 3% of the request CPU: mini-llm vs mini-llm-nometrics"
    assert [(c["where"], round(c["value"], 4), c["limit"], c["met"]) for c in target["checks"]] == [
        ("CPU/req", 1.02, 1.03, True),
        ("CPU/stream", 1.02, 1.03, True),
    ]
    assert target["met"]


def test_metrics_cost_over_3_percent_is_not_met() -> None:
    results = _on_and_off((0.104, 0.1), (0.105, 0.1), (0.1, 0.1))
    [target] = summary.metrics_cost(results, summary.metrics(results))
    assert [round(c["value"], 4) for c in target["checks"]] == [1.04, 1.04]
    assert not target["met"]
    results["fast_path_rounds"] = [{"mini-llm": m["mini-llm"]} for m in results["fast_path_rounds"]]
    assert summary.metrics_cost_medians(results) == {}  # the metrics never ran off: nothing to compare
    [target] = summary.metrics_cost(results, summary.metrics(results))
    assert not target["met"]


def test_metrics_cost_section_shows_both_systems_the_ratios_and_the_verdict() -> None:
    results = _on_and_off((0.102, 0.1), (0.204, 0.2), (0.101, 0.1))
    rows = summary.metrics(results)
    page = {**results, "finished": "now", "argv": "", "machine": _machine()}
    text = report.markdown(page, rows, [], summary.fast_path(results, rows), summary.metrics_cost(results, rows))
    assert "## Fast path" not in text  # no mini-llm-before in the run
    assert "## Metrics cost: on and off" in text
    assert "mini-llm-nometrics is mini-llm with `MINI_LLM_METRICS=off`" in text
    assert "| system | rounds | req/s | CPU ms/req | CPU ms/stream | x mini-llm-nometrics: req/s | CPU/req |" in text
    assert "| mini-llm | 3 | 98,039 | 0.102 | 0.306 | 0.98 (0.98-0.99) | 1.02 (1.01-1.02) | 1.02 (1.01-1.02) |" in text
    assert (
        "| recording metrics costs at most 3% of the request CPU: mini-llm vs mini-llm-nometrics"
        " | CPU/req 1.02 (<= 1.03); CPU/stream 1.02 (<= 1.03) | met |"
    ) in text
    assert "## Metrics cost" not in report.markdown(
        {**_results(), "finished": "now", "argv": "", "machine": _machine()}, summary.metrics(_results()), [], [], []
    )


def test_the_rounds_compare_beside_the_build_before_or_the_metrics_off() -> None:
    assert summary.compared(["mini-llm", "mini-llm-nometrics"])
    assert summary.compared(["mini-llm-before", "mini-llm-chain"])
    assert summary.compared(["mini-llm-before", "mini-llm", "mini-llm-chain", "mini-llm-nometrics"])
    assert not summary.compared(["mini-llm", "mini-llm-chain"])
    assert not summary.compared(["mini-llm-before"])
    assert not summary.compared(["mini-llm-nometrics"])


def test_a_gateway_that_loses_a_stream_in_a_round_fails_the_run() -> None:
    results = _on_and_off((0.102, 0.1), (0.101, 0.1))
    assert report.failures(results) == []
    results["fast_path_rounds"][1]["mini-llm-nometrics"]["streams"]["whole"] = 9
    results["fast_path_rounds"][0]["mini-llm"]["wrk64"]["errors"] = 3
    assert report.failures(results) == [
        "mini-llm: lost streams or failed requests in the fast-path rounds",
        "mini-llm-nometrics: lost streams or failed requests in the fast-path rounds",
    ]


def test_a_shared_core_is_flagged() -> None:
    results = _results()
    results["systems"]["mini-llm"]["sessions"]["raw"]["streams"]["sut_core_other"] = 0.4
    rows = summary.metrics(results)
    assert rows["mini-llm"]["other_core_max"] == 0.4
    text = report.markdown({**results, "finished": "now", "argv": "", "machine": _machine()}, rows, [], [], [])
    assert "- mini-llm: other processes took up to 0.40 of its core" in text
    assert "- nginx: other processes" not in text


def test_interference_is_the_core_minus_the_system() -> None:
    before = {
        "user": 10.0,
        "nice": 0.0,
        "system": 5.0,
        "idle": 100.0,
        "iowait": 0.0,
        "irq": 0.0,
        "softirq": 1.0,
        "steal": 0.0,
    }
    after = {**before, "user": 11.5, "system": 5.5, "softirq": 1.2, "steal": 0.1}
    got = interference(before, after, sut_cpu_s=1.5, wall=2.0)
    assert got == pytest.approx({"sut_core_other": 0.25, "sut_core_steal": 0.05, "sut_core_softirq": 0.1})
    assert interference({}, {}, 1.0, 1.0) == {}


def test_tensorzero_config_routes_one_model_to_the_upstream_with_observability_off() -> None:
    config = tomllib.loads(tensorzero_venv.config("http://127.0.0.1:9"))
    assert config["gateway"]["observability"]["enabled"] is False
    provider = config["models"]["bench"]["providers"]["upstream"]
    assert provider == {
        "type": "openai",
        "model_name": "gpt-4o-mini",
        "api_base": "http://127.0.0.1:9/v1/",
        "api_key_location": "none",
    }
    assert tensorzero_venv.MODEL == "tensorzero::model_name::bench"


def test_read_port(tmp_path: Any) -> None:
    path = tmp_path / "port"
    assert read_port(path) == 0
    path.write_text("")
    assert read_port(path) == 0
    path.write_text("41234\n")
    assert read_port(path) == 41234


def _machine() -> dict[str, Any]:
    return {
        "cpu": "x",
        "cores": 2,
        "memory_gb": 1,
        "kernel": "k",
        "python": "3.11",
        "load_average": [0.0],
        "nofile_hard_limit": 1024,
        "versions": {"mini-llm": "0"},
    }
