"""Runs every file in examples/ against a real gateway on the embedded default (mock provider, no keys)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mini_llm.config import without_gateway_settings
from tests.e2e.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if path.suffix in {".py", ".sh"})
TIMEOUT = 90


def _command(path: Path) -> list[str]:
    """Scripts run as a user would run them; `test_*.py` files are pytest suites of their own."""
    relative = str(path.relative_to(ROOT))
    if path.suffix == ".sh":
        bash = shutil.which("bash")
        assert bash is not None, "bash is needed to run the shell examples"
        return [bash, relative]
    if path.name.startswith("test_"):
        return [sys.executable, "-m", "pytest", relative, "-p", "no:cacheprovider", "-q"]
    return [sys.executable, relative]


def _env(url: str) -> dict[str, str]:
    """The run's environment without gateway or provider settings (the hot-path switch stays)."""
    env = without_gateway_settings(os.environ)
    env["MINI_LLM_URL"] = url
    return env


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProcess]:
    process = GatewayProcess({}).start()
    yield process
    process.stop()


def test_every_kind_of_example_is_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert any(name.endswith(".sh") for name in names), names
    assert any(name.startswith("test_") for name in names), names
    scripts = [path for path in EXAMPLES if path.suffix == ".py" and not path.name.startswith("test_")]
    sources = "\n".join(path.read_text() for path in scripts)
    for sdk_use in ("openai.OpenAI(", "openai.AsyncOpenAI(", "stream=True", "tools=", "anthropic.Anthropic("):
        assert sdk_use in sources, f"no example uses {sdk_use}"
    assert shutil.which("curl") is not None, "curl is needed by examples/curl.sh"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(gateway: GatewayProcess, path: Path) -> None:
    done = subprocess.run(
        _command(path), cwd=ROOT, env=_env(gateway.url), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    report = f"{path.name} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, report
    if path.name.startswith("test_"):
        assert re.search(r"\b\d+ passed\b", done.stdout), report
        assert not re.search(r"\b(failed|error|skipped)\b", done.stdout), report
    else:  # every example talks to the mock provider, whose answers start with these words
        assert "Hello from" in done.stdout, report
    if path.name == "openai_tools.py":  # the mock calls the tool, then answers the tool result
        assert 'tool call: get_weather({"city":"mock"})' in done.stdout, report
