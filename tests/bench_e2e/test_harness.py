"""The end-to-end benchmark harness, run for real (--quick, the baseline and the gateway of this test run's
hot path, against the mock and the raw upstream): it must finish, lose no stream or request, and report
every number the tables and the targets need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from e2e import summary
from mini_llm._flags import parse_flag

ROOT = Path(__file__).resolve().parents[2]
# More than the fast client's default pool of 256 connections: the harness must lift the cap to hold them.
IDLE_STREAMS = 300


@pytest.mark.timeout(300)
def test_quick_run_reports_whole_streams_and_every_number(tmp_path: Path) -> None:
    pure = parse_flag("MINI_LLM_NO_EXTENSIONS", os.environ.get("MINI_LLM_NO_EXTENSIONS"))
    gateway = "mini-llm-pure" if pure else "mini-llm"
    argv = [
        "--quick",
        "--systems",
        f"direct,{gateway}",
        "--idle",
        str(IDLE_STREAMS),
        "--idle-system",
        gateway,
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.e2e", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    row = results["summary"][gateway]
    assert row["streams_run"] > 0
    assert row["streams_whole"] == row["streams_run"]
    assert row["wrk_errors"] == 0
    for up in ("mock", "raw"):
        for key in ("rps", "x_direct", "cpu_ms_req", "streams_s", "streams_x_direct", "cpu_ms_stream"):
            assert row[f"{key}_{up}"] > 0, (key, up)
        for key in ("added_p50_1c_ms", "added_p99_1c_ms"):
            assert isinstance(row[f"{key}_{up}"], float), (key, up)
    for key in ("peak_rss_mb", "cold_start_s"):
        assert row[key] > 0, key
    for key in ("added_ttfb_p50_ms", "added_ttfb_p99_ms", "other_core_max", "steal_core_max"):
        assert isinstance(row[key], float), key
    assert results["systems"][gateway]["errors"] == []
    assert [s["workers"] for s in results["scaling"]] == [1, 2]
    assert all(s["rps"] > 0 and s["errors"] == 0 for s in results["scaling"])
    assert [t["target"] for t in results["targets"]] == [label for label, _ in summary.TARGETS]
    [idle] = results["idle"]
    assert idle["system"] == gateway
    assert idle["opened"] == idle["streams"] == IDLE_STREAMS
    assert idle["rss_open_kb"] > idle["rss_before_kb"]
    versions = {"mini-llm", "granian", "aiohttp", "nginx", "wrk", "litellm", "tensorzero"}
    assert set(results["machine"]["versions"]) >= versions
    table = (tmp_path / "latest.md").read_text()
    assert f"| {gateway} |" in table
    assert "| direct |" in table
    assert "## Targets" in table
