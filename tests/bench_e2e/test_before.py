"""The before-and-after systems, without a benchmark run: the build of an earlier revision (resolved and
exported by the real git of this repository, reused while its stamp holds), the chain's alias as the
gateway's own config reads it, the options that pick the revision, and the start-up error a refused
setting gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email.message import Message
from pathlib import Path

import pytest

from e2e import before_venv, peer_venv, systems
from e2e.__main__ import parse_options
from e2e.procs import Launch, StartError, free_port, running
from e2e.run import expect_first_attempt, post

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def test_resolve_gives_the_full_commit_and_refuses_an_unknown_revision() -> None:
    commit = before_venv.resolve(before_venv.DEFAULT)
    assert len(commit) == 40
    assert commit.startswith(before_venv.DEFAULT)
    assert before_venv.resolve("HEAD") == _git("rev-parse", "HEAD").strip()
    with pytest.raises(RuntimeError, match="'no-such-revision' is not a commit"):
        before_venv.resolve("no-such-revision")


def test_export_writes_the_committed_tree_of_that_revision(tmp_path: Path) -> None:
    commit = before_venv.resolve(before_venv.DEFAULT)
    tree = tmp_path / "tree"
    before_venv.export(commit, tree)
    for name in ("constraints.txt", "pyproject.toml", "setup.py", "src/mini_llm/cli.py"):
        assert (tree / name).read_text() == _git("show", f"{commit}:{name}"), name
    assert not (tree / ".git").exists()
    assert list(tmp_path.iterdir()) == [tree]  # the archive itself is gone


def test_install_follows_make_setup_with_the_revisions_own_pins(tmp_path: Path) -> None:
    build = before_venv.Build(tmp_path)
    steps = before_venv.install_steps(build)
    assert steps[0] == [sys.executable, "-m", "venv", str(tmp_path / "venv")]
    pips = [step for step in steps if step[1:4] == ["-m", "pip", "install"]]
    assert [step[0] for step in pips] == [str(build.python)] * 3
    assert all(step[5:7] == ["--constraint", "constraints.txt"] for step in pips)  # relative: the tree's own
    assert [step[7:] for step in pips] == [
        ["--upgrade", "pip"],
        ["setuptools>=77", "Cython>=3.1"],
        ["--no-build-isolation", "-e", "."],
    ]
    assert steps[-1] == [str(build.python), "-m", "compileall", "-q", "src/mini_llm"]


def _fake_build(home: Path, stamp: str | None) -> before_venv.Build:
    """A build whose venv Python is this test run's (which has mini-llm installed), with `stamp`."""
    build = before_venv.Build(home)
    build.python.parent.mkdir(parents=True)
    build.python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    build.python.chmod(0o755)
    if stamp is not None:
        build.stamp.write_text(stamp + "\n")
    return build


def test_a_build_is_reused_only_for_its_own_commit(tmp_path: Path) -> None:
    commit = before_venv.resolve(before_venv.DEFAULT)
    assert not before_venv.Build(tmp_path / "none").holds(commit)
    assert not _fake_build(tmp_path / "unstamped", None).holds(commit)
    assert not _fake_build(tmp_path / "other", "0" * 40).holds(commit)
    held = _fake_build(tmp_path / "held", commit)
    assert held.holds(commit)
    held.python.write_text("#!/bin/sh\nexit 1\n")  # its base Python went away: rebuild
    assert not held.holds(commit)


def test_ensure_reuses_the_cached_build_without_building(tmp_path: Path) -> None:
    commit = before_venv.resolve(before_venv.DEFAULT)
    build = _fake_build(tmp_path, commit)
    got = before_venv.ensure(before_venv.DEFAULT, tmp_path / "install.log", home=tmp_path)
    assert got == (commit, build.python)
    assert not build.tree.exists()
    assert not (tmp_path / "install.log").exists()
    assert before_venv.built_commit(tmp_path) == commit
    assert before_venv.built_commit(tmp_path / "missing") is None


def test_ensure_names_a_revision_git_does_not_know(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="'v0-never' is not a commit"):
        before_venv.ensure("v0-never", tmp_path / "install.log", home=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing wiped or built for it


def test_run_steps_names_the_failed_step_and_its_last_line(tmp_path: Path) -> None:
    log = tmp_path / "install.log"
    ok = [sys.executable, "-c", "print('step one')"]
    bad = [sys.executable, "-c", "import sys; print('first'); print('pins clash'); sys.exit(2)"]
    never = [sys.executable, "-c", "open('ran', 'w')"]
    with pytest.raises(RuntimeError, match=r"^installing thing failed at `.*sys.exit\(2\)`: pins clash$"):
        peer_venv.run_steps([ok, bad, never], "thing", log, 60, cwd=tmp_path)
    assert log.read_text().splitlines() == ["step one", "first", "pins clash"]
    assert not (tmp_path / "ran").exists()


def test_the_chain_alias_is_a_two_target_list_on_one_upstream() -> None:
    aliases = json.loads(systems.chain_aliases("m"))
    assert aliases == {systems.CHAIN_MODEL: ["openai:m", "openai:m-b"]}


def test_the_gateway_accepts_the_chain_and_lists_both_targets() -> None:
    """`config check` of this tree reads the very setting mini-llm-chain starts with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINI_LLM_", "OPENAI_", "ANTHROPIC_"))}
    env |= {"MINI_LLM_MODEL_ALIASES": systems.chain_aliases(), "OPENAI_API_KEY": "dummy-key"}
    done = subprocess.run(
        [sys.executable, "-m", "mini_llm.cli", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.strip().startswith(systems.CHAIN_MODEL)]
    assert "openai:gpt-4o-mini" in line
    assert "openai:gpt-4o-mini-b" in line


def test_gateway_launch_takes_extra_settings_and_another_python(tmp_path: Path) -> None:
    seen: list[Path] = []

    def python(workdir: Path) -> str:
        seen.append(workdir)
        return "/opt/before/bin/python"

    launch = systems.gateway("g", "fast", env={"MINI_LLM_MODEL_ALIASES": "{}"}, python=python)(tmp_path, 8123, "u")
    assert seen == [tmp_path]
    assert launch.argv[:3] == ["/opt/before/bin/python", "-m", "mini_llm.cli"]
    assert launch.env["MINI_LLM_MODEL_ALIASES"] == "{}"
    assert launch.env["OPENAI_BASE_URL"] == "u/v1"
    assert systems.gateway("g", "fast")(tmp_path, 8123, "u").argv[0] == sys.executable


def test_before_and_chain_run_by_default_beside_the_gateway() -> None:
    table = systems.table("abc123")
    names = list(table)
    assert names[names.index("mini-llm") + 1 : names.index("mini-llm") + 3] == ["mini-llm-before", "mini-llm-chain"]
    assert "abc123" in table["mini-llm-before"].what
    assert table["mini-llm-chain"].model == systems.CHAIN_MODEL
    options, _ = parse_options([])
    assert {"mini-llm-before", "mini-llm-chain"} <= set(options.systems)
    quick, _ = parse_options(["--quick"])
    assert {"mini-llm-before", "mini-llm-chain"} <= set(quick.systems)
    assert (options.rounds, quick.rounds, parse_options(["--rounds", "0"])[0].rounds) == (5, 3, 0)


def test_the_before_revision_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(before_venv.VARIABLE, raising=False)
    assert parse_options([])[0].before == before_venv.DEFAULT == "2f4dc1d"
    monkeypatch.setenv(before_venv.VARIABLE, "v1.2")
    assert parse_options([])[0].before == "v1.2"
    assert parse_options(["--before", "abc"])[0].before == "abc"


def test_a_refused_setting_is_the_first_line_of_the_start_error(tmp_path: Path) -> None:
    code = "import sys; print('starting'); print('MINI_LLM_X: must be a number'); sys.exit(2)"
    launch = Launch("refuser", [sys.executable, "-c", code], free_port())
    with pytest.raises(StartError) as caught, running(launch, None, tmp_path):
        pass
    assert str(caught.value).splitlines()[0] == "refuser exited with status 2: MINI_LLM_X: must be a number"


def _headers(**fields: str) -> Message:
    message = Message()
    for name, value in fields.items():
        message[name.replace("_", "-")] = value
    return message


def test_first_attempt_needs_the_first_target_and_one_attempt() -> None:
    first = "openai:gpt-4o-mini"
    expect_first_attempt(_headers(x_mini_llm_target=first, x_mini_llm_attempts="1"), first)
    with pytest.raises(RuntimeError, match="answered by openai:gpt-4o-mini-b after 2 attempt"):
        expect_first_attempt(_headers(x_mini_llm_target="openai:gpt-4o-mini-b", x_mini_llm_attempts="2"), first)
    with pytest.raises(RuntimeError, match="answered by None after None"):  # a gateway that does not say
        expect_first_attempt(_headers(), first)


def test_the_chain_system_starts_and_its_first_target_answers_at_once(tmp_path: Path) -> None:
    """The real mini-llm-chain launch against the real raw upstream: the check the run makes before its load."""
    chain = systems.table()["mini-llm-chain"]
    assert chain.per_upstream is not None and chain.model is not None and chain.first_target is not None
    with running(systems.raw_upstream(tmp_path, free_port()), None, tmp_path) as upstream:
        launch = chain.per_upstream(tmp_path, free_port(), upstream.url)
        with running(launch, None, tmp_path) as gateway:
            headers = post(f"{gateway.url}{chain.path}", chain.model)
    expect_first_attempt(headers, chain.first_target)
