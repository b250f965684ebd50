"""mini_llm.hotpath picks the compiled twin unless MINI_LLM_NO_EXTENSIONS says otherwise, strictly parsed."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from mini_llm import hotpath

if TYPE_CHECKING:
    from conftest import HotPathImpl

PRINT_IMPLEMENTATION = "import mini_llm.hotpath as h; print(h.IMPLEMENTATION, h.SSESplitter.__module__)"


def run_selector(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MINI_LLM_NO_EXTENSIONS"}
    if value is not None:
        env["MINI_LLM_NO_EXTENSIONS"] = value
    return subprocess.run(
        [sys.executable, "-c", PRINT_IMPLEMENTATION], env=env, check=False, capture_output=True, text=True, timeout=60
    )


def test_selected_classes_belong_to_the_reported_twin(hotpath_impl: HotPathImpl) -> None:
    selected = hotpath_impl.name == hotpath.IMPLEMENTATION
    assert (hotpath.SSESplitter is hotpath_impl.SSESplitter) is selected
    assert (hotpath.SSEEvent is hotpath_impl.SSEEvent) is selected
    assert (hotpath.BodyBuffer is hotpath_impl.BodyBuffer) is selected
    assert (hotpath.ResponseParser is hotpath_impl.ResponseParser) is selected


@pytest.mark.cython
def test_compiled_twin_is_selected_in_this_process() -> None:
    assert not hotpath.NO_EXTENSIONS, "run with --no-extensions when MINI_LLM_NO_EXTENSIONS is set"
    assert hotpath.IMPLEMENTATION == "cython", hotpath.FALLBACK_REASON
    assert hotpath.FALLBACK_REASON == ""


@pytest.mark.cython
@pytest.mark.parametrize("value", [None, "", "0", "off", " False "])
def test_unset_or_false_selects_compiled(value: str | None) -> None:
    result = run_selector(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cython", "mini_llm.hotpath._sse_c"]


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_true_selects_pure(value: str) -> None:
    result = run_selector(value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "mini_llm.hotpath._sse_py"]


def test_unknown_word_is_a_startup_error() -> None:
    result = run_selector("maybe")
    assert result.returncode != 0
    assert "FlagError: MINI_LLM_NO_EXTENSIONS='maybe' is not a boolean" in result.stderr
    assert result.stdout == ""
