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


def config_check_without_proxies(config: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`config check` in an environment whose only proxy variables are those in `env` (none inherited)."""
    clean = {k: v for k, v in without_gateway_settings(os.environ).items() if not k.lower().endswith("_proxy")}
    cli = [sys.executable, "-m", "mini_llm.cli", "config", "check", "--config", config]
    return subprocess.run(cli, env={**clean, **env}, capture_output=True, text=True, timeout=20, check=False)


def client_lines(out: str) -> dict[str, str]:
    """The `upstream clients:` section: provider name -> how its requests go."""
    section = out.split("\nupstream clients:\n", 1)[1]
    return dict(line.strip().split(maxsplit=1) for line in section.splitlines())


def test_config_check_names_the_client_of_each_provider_and_a_proxy_with_its_login_masked() -> None:
    config = write_config('[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\n')
    env = {"HTTPS_PROXY": "http://gw-user:hunter2proxy@127.0.0.1:3128", "NO_PROXY": "api.anthropic.com"}
    result = config_check_without_proxies(config, env)
    assert result.returncode == 0, result.stderr
    through_proxy = "aiohttp: HTTPS_PROXY sends it through the proxy http://***@127.0.0.1:3128"
    assert client_lines(result.stdout) == {
        "openai": through_proxy,
        "anthropic": "fast (MINI_LLM_UPSTREAM_CLIENT)",  # NO_PROXY
        "nebius": through_proxy,
        "deepinfra": through_proxy,
        "vllm": "fast (MINI_LLM_UPSTREAM_CLIENT)",  # http: HTTPS_PROXY is not its proxy
        "mock": "built in, no network",
    }
    for secret in ("gw-user", "hunter2proxy"):
        assert secret not in result.stdout + result.stderr


def test_config_check_shows_the_upstream_settings() -> None:
    config = write_config("upstream_pool_limit = 8\nupstream_idle_timeout = 2.5\n")
    result = config_check_without_proxies(config, {"MINI_LLM_UPSTREAM_CLIENT": "aiohttp"})
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["upstream_client", "aiohttp", "MINI_LLM_UPSTREAM_CLIENT"] in lines
    assert ["upstream_pool_limit", "8", "MINI_LLM_UPSTREAM_POOL_LIMIT"] in lines
    assert ["upstream_idle_timeout", "2.5s", "MINI_LLM_UPSTREAM_IDLE_TIMEOUT"] in lines
    assert client_lines(result.stdout)["openai"] == "aiohttp (MINI_LLM_UPSTREAM_CLIENT)"


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        ((), {"MINI_LLM_PORT": "http"}, "mini-llm: configuration error: MINI_LLM_PORT: 'http' is not an integer"),
        (("--config", "/nonexistent/mini-llm.toml"), {}, "mini-llm: configuration error: MINI_LLM_CONFIG: cannot read"),
        (
            (),
            {"MINI_LLM_UPSTREAM_CLIENT": "curl"},
            "mini-llm: configuration error: MINI_LLM_UPSTREAM_CLIENT: 'curl' is not 'fast' or 'aiohttp'",
        ),
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
