"""The hand-written .pyi stubs match the compiled modules (mypy.stubtest catches renamed parameters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWLIST = Path(__file__).with_name("stubtest_allowlist.txt")


@pytest.mark.cython
def test_stubs_match_the_compiled_twins() -> None:
    command = [
        sys.executable,
        "-m",
        "mypy.stubtest",
        "mini_llm.hotpath._sse_c",
        "mini_llm.hotpath._buffer_c",
        "mini_llm.hotpath._http_c",
    ]
    result = subprocess.run(
        [*command, "--allowlist", str(ALLOWLIST)], cwd=ROOT, check=False, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, result.stdout + result.stderr
