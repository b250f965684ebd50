"""`mini-llm bench` end to end: real child servers, real load, a report, and no process left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import uvloop

from mini_llm.tools.bench.load import Load, Tally, drive, percentile
from mini_llm.tools.bench.report import document, result, table
from tests.e2e.gateway_process import GatewayProcess, run_cli
from tests.e2e.launch import LAUNCHES, Launch

SMALL = ("--concurrency", "4", "--streams", "2", "--stream-tokens", "8")


def assert_gone(pid: int) -> None:
    """The child ran in its own process group: nothing of it, granian workers included, is left."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_json_report() -> None:
    from mini_llm import hotpath

    result = run_cli("bench", "--duration", "1", "--json", *SMALL, timeout=90)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"version", "hot_path", "options", "processes", "results", "ratios"}
    assert doc["hot_path"] == hotpath.IMPLEMENTATION
    assert doc["options"] == {
        "concurrency": 4,
        "duration": 1.0,
        "requests": None,
        "streams": 2,
        "stream_tokens": 8,
        "workers": 1,
        "token_delay": 0.0,
        "no_extensions": False,
    }
    assert [(r["scenario"], r["target"]) for r in doc["results"]] == [
        ("chat", "direct"),
        ("chat", "gateway"),
        ("stream", "direct"),
        ("stream", "gateway"),
    ]
    for row in doc["results"]:
        assert row["ok"] > 0 and row["errors"] == 0 and row["first_error"] is None, row
        assert row["seconds"] >= 1.0 and row["rate"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert set(doc["ratios"]) == {"chat", "stream"}
    assert set(doc["ratios"]["chat"]) == {"rate", "p50_ms", "p99_ms"}
    assert set(doc["processes"]) == {"mock_upstream", "gateway"}
    for child in doc["processes"].values():
        assert child["url"].startswith("http://127.0.0.1:")
        assert_gone(child["pid"])


def test_table_on_the_pure_hot_path() -> None:
    result = run_cli("bench", "--requests", "40", "--no-extensions", *SMALL, timeout=90)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mini-llm bench ") and "hot path python" in lines[0]
    assert lines[2].split() == ["scenario", "target", "rate/s", "p50", "ms", "p99", "ms", "errors"]
    assert [line.split()[:2] for line in lines[3:]] == [
        ["chat", "direct"],
        ["chat", "gateway"],
        ["chat", "ratio"],
        ["stream", "direct"],
        ["stream", "gateway"],
        ["stream", "ratio"],
    ]
    assert all(line.split()[-1] == "0" for line in lines[3:] if "ratio" not in line)
    assert all(line.split()[-1].endswith("x") for line in lines[3:] if "ratio" in line)
    # stderr is a pipe: one line per finished run, no carriage-return updates.
    assert "bench: chat direct: 40 done in " in result.stderr
    assert "\r" not in result.stderr


@pytest.mark.parametrize(
    ("model", "stream_tokens", "error"),
    [
        ("status-500", 0, "Invalid: HTTP 500: "),
        ("cut", 4, "Invalid: stream cut short: "),  # an error event from the gateway, no [DONE]
        ("gpt-4o-mini", 64, "Invalid: stream cut short: "),  # [DONE], but fewer events than tokens asked for
    ],
)
def test_the_driver_counts_bad_answers(gateway: GatewayProcess, model: str, stream_tokens: int, error: str) -> None:
    load = Load(concurrency=2, duration=60, requests=6, stream_tokens=stream_tokens)
    tally = uvloop.run(drive(gateway.url + "/v1/chat/completions", model, load, lambda *_: None))
    assert tally.errors == 6 and tally.latencies == []
    assert tally.first_error.startswith(error), tally.first_error


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


def test_table_shows_first_errors_and_no_ratio_without_a_direct_rate() -> None:
    broken = Tally(errors=3, first_error="Invalid: HTTP 502: nope", seconds=1.0)
    good = Tally(latencies=[0.001, 0.002], seconds=1.0)
    options = {"workers": 1, "concurrency": 2, "streams": 0, "stream_tokens": 8}
    doc = document(options, "python", {}, [result("chat", "direct", broken), result("chat", "gateway", good)])
    assert doc["ratios"] == {"chat": {"rate": None, "p50_ms": None, "p99_ms": None}}
    lines = table(doc).splitlines()
    assert lines[5].split() == ["chat", "ratio", "-", "-", "-"]
    assert lines[-1] == "chat direct, first error: Invalid: HTTP 502: nope"


def test_a_child_that_fails_to_start_is_exit_2() -> None:
    result = run_cli("bench", "--duration", "1", env={"MINI_LLM_NO_EXTENSIONS": "maybe"}, timeout=90)
    assert result.returncode == 2
    assert result.stdout == ""
    # The mock server never touches the hot path, so the gateway is the child that refuses the flag.
    assert re.search(r"^mini-llm: gateway exited with status \d+ before it was ready", result.stderr, re.M)
    assert "MINI_LLM_NO_EXTENSIONS: is not a boolean" in result.stderr  # the child's own output


@LAUNCHES
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupted_bench_stops_its_children(sig: signal.Signals, launch: Launch) -> None:
    command = launch([sys.executable, "-m", "mini_llm.cli", "bench", "--duration", "60", *SMALL])
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as bench:
        try:
            assert bench.stderr is not None
            pids = []
            for line in bench.stderr:
                pids += [int(pid) for pid in re.findall(r"\(pid (\d+)\)", line)]
                if line.startswith(("bench: gateway on", "mini-llm:")):
                    break
            assert len(pids) == 2
            bench.send_signal(sig)
            out, err = bench.communicate(timeout=30)
        finally:
            if bench.poll() is None:  # a failed assertion above: still stop it, the clean way if it can
                bench.send_signal(signal.SIGINT)
                try:
                    bench.wait(30)
                except subprocess.TimeoutExpired:
                    bench.kill()  # its children are tied to it (parent-death signal): they stop too
                    bench.wait()
    assert bench.returncode == 130
    assert out == ""
    assert err.endswith("mini-llm: bench interrupted; its servers are stopped\n")
    for pid in pids:
        assert_gone(pid)
