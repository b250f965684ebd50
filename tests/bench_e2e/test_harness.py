"""The end-to-end benchmark harness, run for real (--quick, the baseline and the gateway of this test run's
hot path): it must finish, lose no stream or request, and report every number the tables need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mini_llm._flags import parse_flag

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_quick_run_reports_whole_streams_and_every_number(tmp_path: Path) -> None:
    pure = parse_flag("MINI_LLM_NO_EXTENSIONS", os.environ.get("MINI_LLM_NO_EXTENSIONS"))
    gateway = "mini-llm-pure" if pure else "mini-llm"
    argv = [
        "--quick",
        "--systems",
        f"direct,{gateway}",
        "--idle",
        "200",
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
    for key in ("rps", "x_direct", "cpu_ms_req", "streams_s", "cpu_ms_stream", "peak_rss_mb", "cold_start_s"):
        assert row[key] > 0, key
    for key in ("added_p50_1c_ms", "added_p99_1c_ms", "added_ttfb_p50_ms", "added_ttfb_p99_ms"):
        assert isinstance(row[key], float), key
    assert results["systems"][gateway]["errors"] == []
    [idle] = results["idle"]
    assert idle["system"] == gateway
    assert idle["opened"] == idle["streams"] == 200
    assert idle["rss_open_kb"] > idle["rss_before_kb"]
    assert set(results["machine"]["versions"]) >= {"mini-llm", "granian", "aiohttp", "nginx", "wrk", "litellm"}
    table = (tmp_path / "latest.md").read_text()
    assert f"| {gateway} |" in table
    assert "| direct |" in table
