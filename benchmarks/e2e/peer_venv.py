"""A peer system installed at an exact pin into a venv of its own, so the project's pins stay untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def installed_version(python: Path, distribution: str) -> str | None:
    """The version of `distribution` in the venv of `python`, or None when the venv or package is missing."""
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def install(venv: Path, requirement: str, name: str, log: Path, timeout_s: int) -> None:
    """Create `venv` afresh and pip-install `requirement` into it; RuntimeError with the reason on failure."""
    print(f"installing {requirement} into {venv} (first run only)", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
    ]
    run_steps(steps, name, log, timeout_s)


def run_steps(steps: list[list[str]], name: str, log: Path, timeout_s: int, cwd: Path | None = None) -> None:
    """Run each command in turn, all output to `log`; RuntimeError naming the failed step and its last line."""
    with log.open("wb") as out:
        for step in steps:
            try:
                done = subprocess.run(
                    step, check=False, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, cwd=cwd
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"installing {name} took over {timeout_s}s") from exc
            if done.returncode != 0:
                out.flush()
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"installing {name} failed at `{' '.join(step[-3:])}`: {tail[0][:200]}")
