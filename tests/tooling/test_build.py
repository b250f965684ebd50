"""The build: a pure wheel on request, and a loud one-line failure without a C compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copy_tree(target: Path) -> Path:
    """Build from a copy, so the developer's in-place extension modules stay untouched."""
    tree = target / "src-tree"
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.so", "*.c", "__pycache__", ".*_cache", "*.egg-info"),
    )
    return tree


def _wheel(source: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_no_extensions_builds_a_pure_wheel(tmp_path: Path) -> None:
    result = _wheel(_copy_tree(tmp_path), tmp_path / "dist", MINI_LLM_NO_EXTENSIONS="1")
    assert result.returncode == 0, result.stderr
    wheels = [p.name for p in (tmp_path / "dist").iterdir()]
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl"), wheels


def test_missing_compiler_fails_loudly(tmp_path: Path) -> None:
    result = _wheel(_copy_tree(tmp_path), tmp_path / "dist", CC="/bin/false", MINI_LLM_NO_EXTENSIONS="0")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "building the Cython hot path failed" in output or "compiling mini_llm." in output
    assert "install a C compiler" in output and "MINI_LLM_NO_EXTENSIONS=1" in output
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_sdist_ships_the_pyx_sources_and_builds_a_compiled_wheel(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    sdist = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "sdist")],
        cwd=tree,
        env={**os.environ, "MINI_LLM_NO_EXTENSIONS": "1"},  # packing needs no compiler
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert sdist.returncode == 0, sdist.stderr
    (archive,) = (tmp_path / "sdist").iterdir()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    for stem in ("_sse_c", "_buffer_c", "_http_c"):
        assert any(name.endswith(f"ext/{stem}.pyx") for name in names), stem
    assert not any(name.endswith((".c", ".so")) for name in names)
    assert not any("/ext/" in name and name.endswith(".html") for name in names)  # Cython's annotation
    assert any(name.endswith("src/mini_llm/static/playground.html") for name in names)  # package data
    result = _wheel(archive, tmp_path / "dist", MINI_LLM_NO_EXTENSIONS="0")
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").iterdir()
    assert "-cp3" in wheel.name and "linux" in wheel.name, wheel.name
    with zipfile.ZipFile(wheel) as built:
        members = built.namelist()
    for stem in ("_sse_c", "_buffer_c", "_http_c"):
        assert any(name.startswith(f"mini_llm/hotpath/{stem}.") and name.endswith(".so") for name in members), stem
        assert f"mini_llm/hotpath/{stem}.pyi" in members, stem
    assert "mini_llm/py.typed" in members
