"""The Makefile itself: `make test` runs every check and fails if any did; set-up follows the pins.

The real Makefile runs under real make, with the checked tools replaced by scripts that record
their call and exit as told: what is under test is make's control flow, not ruff or pytest.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("ruff check", "ruff format", "mypy", "pytest compiled", "pytest pure", "pytest aiohttp")
_TOOL = """#!/bin/sh
# Record the call as "<tool> <first argument or 'compiled'/'pure'/'aiohttp'>", then exit 1 if told to fail.
case "$(basename "$0")" in
  pytest)
    if [ -n "$MINI_LLM_NO_EXTENSIONS" ]; then call="pytest pure"
    elif [ -n "$MINI_LLM_UPSTREAM_CLIENT" ]; then call="pytest aiohttp"
    else call="pytest compiled"; fi ;;
  ruff) call="ruff $1" ;;
  *) call="$(basename "$0")" ;;
esac
echo "$call" >> "$CALLS"
[ "$call" != "$FAIL" ]
"""


def _fake_venv(tmp_path: Path) -> Path:
    """A venv whose stamp is newer than every source, so `setup` has nothing to do."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("ruff", "mypy", "pytest"):
        script = venv / "bin" / tool
        script.write_text(_TOOL)
        script.chmod(0o755)
    stamp = venv / ".mini-llm-installed"
    stamp.touch()
    future = time.time() + 86400  # a source edited meanwhile by someone else must not trigger an install
    os.utime(stamp, (future, future))
    return venv


def _make(*args: str, venv: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # The make running this suite hands down its flags (-k, a jobserver) and, in the pure run,
    # MINI_LLM_NO_EXTENSIONS or MINI_LLM_UPSTREAM_CLIENT: the make here starts clean of them.
    inherited = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MINI_LLM_NO_EXTENSIONS", "MINI_LLM_UPSTREAM_CLIENT")
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        ["make", "-C", str(ROOT), *args, f"VENV={venv}", "CHROMIUM=/bin/sh", "WRK=/bin/sh"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("failing", [*CHECKS, None])
def test_make_test_runs_every_check_and_fails_if_any_failed(tmp_path: Path, failing: str | None) -> None:
    venv = _fake_venv(tmp_path)
    calls = tmp_path / "calls"
    result = _make("test", venv=venv, CALLS=str(calls), FAIL=failing or "")
    assert calls.read_text().splitlines() == list(CHECKS), result.stdout + result.stderr
    if failing is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert "Error 1" in result.stderr  # make names the failed target


def test_setup_installs_with_the_constraints_and_reinstalls_when_a_pin_changes(tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path)
    assert "Nothing to be done" in _make("-n", "setup", venv=venv).stdout
    changed = _make("-n", "-W", "constraints.txt", "setup", venv=venv)  # -W: as if constraints.txt were edited
    installs = [line for line in changed.stdout.splitlines() if " pip install " in line]
    assert len(installs) == 3, changed.stdout  # pip itself, the build tools, the package with its test extras
    assert all("--constraint constraints.txt" in line for line in installs), installs
