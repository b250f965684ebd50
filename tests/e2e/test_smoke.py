"""`mini-llm smoke` against a real gateway: a table, the hot path, and an exit status that tells."""

from __future__ import annotations

from tests.e2e.gateway_process import GatewayProcess, run_cli


def test_smoke_passes_every_listed_model(gateway: GatewayProcess) -> None:
    from mini_llm import hotpath

    result = run_cli("smoke", "--url", gateway.url, timeout=60)
    assert result.returncode == 0, result.stdout
    assert f"(hot path: {hotpath.IMPLEMENTATION})" in result.stdout
    lines = result.stdout.splitlines()
    for model in ("fast", "smart", "echo", "mock"):
        checked = [line for line in lines if f" {model} " in line]
        assert len(checked) == 4, result.stdout  # chat, chat stream, messages, messages stream
    # An OpenAI alias cannot answer /v1/messages: reported as n/a, not as a failure.
    assert any(line.startswith("messages ") and " fast " in line and " n/a " in line for line in lines)
    assert result.stdout.rstrip().endswith("checks passed")


def test_smoke_fails_loudly(gateway: GatewayProcess) -> None:
    result = run_cli("smoke", "--url", gateway.url, "--model", "status-500", timeout=60)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "HTTP 500" in result.stdout
    unreachable = run_cli("smoke", "--url", "http://127.0.0.1:9", "--timeout", "2", timeout=60)
    assert unreachable.returncode == 1
    assert "health" in unreachable.stdout and "FAIL" in unreachable.stdout
