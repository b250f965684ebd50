"""The gateway as of an earlier git revision, in a venv of its own, so one run measures before and after.

The revision's tree comes out of this repository with `git archive` (read-only: no worktree, no
checkout) into a cache outside the repo, and installs as `make setup` does, with THAT revision's
constraints.txt and its own Cython build. A stamp holding the commit keeps the build until the
revision changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from . import peer_venv

DEFAULT: Final = "2f4dc1d"  # the commit before issue 11 (resilient routing)
VARIABLE: Final = "MINI_LLM_BENCH_BEFORE"  # overrides DEFAULT; --before overrides both
_REPO: Final = Path(__file__).resolve().parents[2]
_INSTALL_TIMEOUT_S: Final = 900


def cache_dir() -> Path:
    """Outside the repository (an ignored dir would be the lead's .gitignore to change): the XDG cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mini-llm" / "bench-before"


@dataclass(frozen=True)
class Build:
    """Where one revision lives: its source tree, its venv, and the stamp that says which commit they hold."""

    home: Path

    @property
    def tree(self) -> Path:
        return self.home / "tree"

    @property
    def python(self) -> Path:
        return self.home / "venv" / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.home / "commit"

    def holds(self, commit: str) -> bool:
        """Built for `commit` and still importable (a venv whose base Python went away is rebuilt)."""
        try:
            built = self.stamp.read_text().strip()
        except OSError:
            return False
        return built == commit and peer_venv.installed_version(self.python, "mini-llm") is not None


def resolve(revision: str, repo: Path = _REPO) -> str:
    """The full commit id `revision` names in `repo`; RuntimeError when git does not know it."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        raise RuntimeError(f"cannot run git to find revision {revision!r}: {exc}") from exc
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"revision {revision!r} is not a commit of {repo} (a shallow clone lacks it?)")
    return out.stdout.strip()


def export(commit: str, into: Path, repo: Path = _REPO) -> None:
    """The committed tree of `commit`, as files under `into` (which must not exist yet)."""
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    try:
        subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", f"--output={archive}", commit],
            capture_output=True,
            timeout=120,
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
        raise RuntimeError(f"git archive of {commit[:12]} failed: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)


def install_steps(build: Build) -> list[list[str]]:
    """`make setup` of that revision, less its test extra: pip and the build tools, then the package, each
    under the revision's own constraints; then the byte-compile, as the tree under test has it."""
    python = str(build.python)
    pip = [python, "-m", "pip", "install", "--quiet", "--constraint", "constraints.txt"]
    return [
        [sys.executable, "-m", "venv", str(build.home / "venv")],
        [*pip, "--upgrade", "pip"],
        [*pip, "setuptools>=77", "Cython>=3.1"],
        [*pip, "--no-build-isolation", "-e", "."],
        [python, "-m", "compileall", "-q", "src/mini_llm"],
    ]


def ensure(revision: str, log: Path, home: Path | None = None) -> tuple[str, Path]:
    """(commit, python) of the gateway at `revision`, building it first unless the cache holds that commit."""
    commit = resolve(revision)
    build = Build(home or cache_dir())
    if build.holds(commit):
        return commit, build.python
    print(f"building mini-llm at {commit[:12]} into {build.home} (once per revision)", file=sys.stderr, flush=True)
    shutil.rmtree(build.home, ignore_errors=True)
    export(commit, build.tree)
    peer_venv.run_steps(install_steps(build), f"mini-llm at {commit[:12]}", log, _INSTALL_TIMEOUT_S, cwd=build.tree)
    build.stamp.write_text(commit + "\n")
    return commit, build.python


def built_commit(home: Path | None = None) -> str | None:
    """The commit the cache holds now, for the machine description; None before the first build."""
    try:
        return Build(home or cache_dir()).stamp.read_text().strip() or None
    except OSError:
        return None
