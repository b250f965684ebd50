"""The `mini-llm` command line: help texts with exit codes, `config check`, usage errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mini_llm.config import without_gateway_settings
from tests.e2e.gateway_process import run_cli, write_config

LONG_KEY = "sk-proj-cli0123456789abcdefWXYZ"
FILE_KEY = "sk-file-0123456789abcdefQRST"


@pytest.mark.parametrize(
    "command", [(), ("serve",), ("mock-upstream",), ("smoke",), ("bench",), ("config",), ("config", "check")]
)
def test_every_help_lists_exit_codes(command: tuple[str, ...]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mini-llm {' '.join(command)}".rstrip())
    codes = result.stdout.split("exit status")[1]
    assert "  0  " in codes and "  2  " in codes


def test_config_check_prints_the_effective_configuration_with_masked_keys() -> None:
    config = write_config(
        f'workers = 3\n[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\napi_key = "{FILE_KEY}"\n'
    )
    env = {
        "OPENAI_API_KEYS": f"{LONG_KEY},sk-short",
        "MINI_LLM_MODEL_ALIASES": '{"fast": "openai:gpt-4o-mini"}',
        "MINI_LLM_PORT": "8080",
    }
    result = run_cli("config", "check", "--config", config, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("configuration OK: providers: openai=2 keys,")
    assert f"config file: {config}" in out
    assert any(line.split() == ["port", "8080", "MINI_LLM_PORT"] for line in out.splitlines())
    assert any(line.split() == ["workers", "3", "MINI_LLM_WORKERS"] for line in out.splitlines())
    assert "keys: sk-...WXYZ, ***" in out
    assert "vllm       openai protocol, http://127.0.0.1:8000/v1" in out
    assert "keys: sk-...QRST" in out
    assert "fast -> openai:gpt-4o-mini" in out
    for secret in (LONG_KEY, FILE_KEY, "sk-short", LONG_KEY[:-4], FILE_KEY[:-4]):
        assert secret not in out + result.stderr


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        ((), {"MINI_LLM_PORT": "http"}, "mini-llm: configuration error: MINI_LLM_PORT: 'http' is not an integer"),
        (("--config", "/nonexistent/mini-llm.toml"), {}, "mini-llm: configuration error: MINI_LLM_CONFIG: cannot read"),
    ],
)
def test_config_check_fails_with_one_line(args: tuple[str, ...], env: dict[str, str], line: str) -> None:
    result = run_cli("config", "check", *args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(line)
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("bench", "--concurrency", "0"), "argument --concurrency: '0' is not an integer in 1..4096"),
        (("bench", "--duration", "soon"), "argument --duration: 'soon' is not a number"),
        (("smoke", "--timeout", "-1"), "argument --timeout: '-1' is not a number"),
        (("launch",), "invalid choice: 'launch'"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], problem: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert problem in result.stderr


@pytest.mark.parametrize(
    ("command", "unbuffered"),
    [
        (("config", "check"), ""),  # block-buffered: the error shows on the last flush
        (("config", "check"), "1"),  # unbuffered: on the first print
        (("--help",), ""),  # only block-buffered: unbuffered, argparse drops the failed write itself (exit 0)
    ],
    ids=["config-check", "config-check-unbuffered", "help"],
)
def test_a_reader_gone_early_ends_quietly(command: tuple[str, ...], unbuffered: str) -> None:
    """`mini-llm config check | head -1`: the reader may leave before the output is written."""
    env = {**without_gateway_settings(os.environ), "PYTHONUNBUFFERED": unbuffered}
    cli = [sys.executable, "-m", "mini_llm.cli", *command]
    with subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # gone before the first byte: the child is still starting Python
        err = proc.stderr.read()
    assert (proc.returncode, err) == (141, b"")
