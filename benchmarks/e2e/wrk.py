"""Non-stream load with wrk: one thread, a fixed number of keep-alive connections, POSTs from post.lua."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .procs import clean_env

_SCRIPT: Final = Path(__file__).with_name("post.lua")
BINARY: Final = shutil.which("wrk")
_TIMEOUT_S: Final = 10


@dataclass
class WrkResult:
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int  # connect, read, write and timeout errors plus non-2xx/3xx answers
    error_detail: dict[str, int]


def run(url: str, body: bytes, auth: str, connections: int, seconds: int) -> WrkResult:
    """Run wrk for `seconds` (whole seconds: wrk reads no fractions) and parse post.lua's summary line."""
    if BINARY is None:
        raise FileNotFoundError("wrk is not installed (Debian: apt-get install wrk)")
    argv = [BINARY, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={_TIMEOUT_S}s", "-s", str(_SCRIPT), url]
    env = clean_env({"BENCH_BODY": body.decode(), "BENCH_AUTH": auth})
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 3 * _TIMEOUT_S, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (status {out.returncode}): {(out.stderr or out.stdout)[-500:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    if not raw["requests"]:  # wrk reports zeros for the latencies of no requests
        raw.update(dict.fromkeys(("p50_us", "p90_us", "p99_us", "mean_us", "max_us"), math.nan))
    return WrkResult(
        connections=connections,
        requests=raw["requests"],
        seconds=seconds_run,
        rps=raw["requests"] / seconds_run,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=sum(raw["errors"].values()),
        error_detail=raw["errors"],
    )


def version() -> str:
    if BINARY is None:
        return "not installed"
    out = subprocess.run([BINARY, "-v"], capture_output=True, text=True, timeout=10, check=False)
    text = (out.stdout or out.stderr).strip()
    return text.split(" [", 1)[0].removeprefix("wrk ") if text else "unknown"
