"""`mini-llm smoke` against a real gateway: a table, the hot path, and an exit status that tells."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from mini_llm.config import without_gateway_settings
from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, run_cli, write_config
from tests.e2e.launch import LAUNCHES, Launch


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_smoke_passes_every_listed_model(gateway: GatewayProcess) -> None:
    from mini_llm import hotpath

    result = run_cli("smoke", "--url", gateway.url, timeout=60)
    assert result.returncode == 0, result.stdout
    assert f"(hot path: {hotpath.IMPLEMENTATION})" in result.stdout
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["check", "model", "result", "ms", "detail"]
    for model in ("fast", "smart", "echo", "mock"):
        checked = [line for line in lines if f" {model} " in line]
        assert len(checked) == 4, result.stdout  # chat, chat stream, messages, messages stream
    # An OpenAI alias cannot answer /v1/messages: reported as n/a, not as a failure.
    assert any(line.startswith("messages ") and " fast " in line and " n/a " in line for line in lines)
    assert lines[-1].startswith("all checks passed (") and lines[-1].endswith(" n/a)")


def test_smoke_fails_loudly(gateway: GatewayProcess) -> None:
    result = run_cli("smoke", "--url", gateway.url, "--model", "status-500", timeout=60)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "HTTP 500" in result.stdout


def test_alias_to_an_unreachable_provider_fails() -> None:
    config = write_config(f'[providers.dead]\nbase_url = "http://127.0.0.1:{closed_port()}/v1"\n')
    aliases = json.dumps({"broken": "dead:some-model"})
    process = GatewayProcess({"MINI_LLM_CONFIG": config, "MINI_LLM_MODEL_ALIASES": aliases}).start()
    try:
        result = run_cli("smoke", "--url", process.url, "--timeout", "10", timeout=60)
    finally:
        process.stop()
    assert result.returncode == 1, result.stdout
    rows = {tuple(line.split()[:3]) for line in result.stdout.splitlines()}
    assert ("chat", "broken", "FAIL") in rows
    assert ("chat", "mock", "pass") in rows  # the other models are still checked
    assert result.stdout.splitlines()[-1].startswith("2 failed, ")


def test_nothing_listening_is_one_line() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_cli("smoke", "--url", url, "--timeout", "2", timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"mini-llm: cannot reach the gateway at {url}: ")
    assert len(result.stderr.splitlines()) == 1


def test_bad_url_is_a_usage_error() -> None:
    result = run_cli("smoke", "--url", "127.0.0.1:3333")
    assert result.returncode == 2
    assert result.stderr == "mini-llm: --url '127.0.0.1:3333' is not an http(s) URL with a host\n"


@LAUNCHES
def test_ctrl_c_is_one_line_and_exit_130(launch: Launch) -> None:
    """Interrupted while it waits for an answer: no traceback, whatever SIGINT disposition it inherited."""
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(20)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        command = launch([sys.executable, "-m", "mini_llm.cli", "smoke", "--url", url])
        env = without_gateway_settings(os.environ)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as smoke:
            try:
                connection, _ = silent.accept()  # the health request is out: the event loop is running
                with connection:
                    smoke.send_signal(signal.SIGINT)
                    out, err = smoke.communicate(timeout=20)
            finally:
                if smoke.poll() is None:
                    smoke.kill()
    assert (smoke.returncode, out, err) == (130, "", "mini-llm: smoke interrupted\n")


def test_a_gateway_that_requires_keys_is_checked_with_the_one_in_the_environment(upstream: FakeUpstream) -> None:
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_API_KEYS="smoke-gateway-key")).start()
    try:
        refused = run_cli("smoke", "--url", process.url, "--model", "mock", timeout=60)
        key = {"MINI_LLM_SMOKE_API_KEY": "smoke-gateway-key"}
        passed = run_cli("smoke", "--url", process.url, "--model", "mock", env=key, timeout=60)
    finally:
        process.stop()
    assert refused.returncode == 1
    assert "HTTP 401" in refused.stdout
    assert passed.returncode == 0, passed.stdout
    assert passed.stdout.splitlines()[-1].startswith("all checks passed (")
