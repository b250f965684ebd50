"""What the numbers were measured on: CPU, kernel, load, and the versions of every piece in the path."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

from . import before_venv, litellm_venv, nginx, tensorzero_venv, wrk


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def describe(load_average: list[float]) -> dict[str, Any]:
    """`load_average` as sampled when the run began (the machine may be shared)."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": load_average,
        "nofile_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "versions": {
            "mini-llm": f"{_version('mini-llm')} ({_git()})",
            "mini-llm-before": before_venv.built_commit() or "not built",
            "granian": _version("granian"),
            "aiohttp": _version("aiohttp"),
            "uvloop": _version("uvloop"),
            "msgspec": _version("msgspec"),
            "nginx": nginx.version(),
            "wrk": wrk.version(),
            "litellm": litellm_venv.installed_version() or "not installed",
            "tensorzero": tensorzero_venv.installed_version() or "not installed",
        },
    }
