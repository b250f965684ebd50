"""Gateway: real `mini-llm serve` children, reached over TCP with the official SDKs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import anthropic
import openai
import pytest

import mini_llm
from mini_llm.sdk import Gateway, GatewayStartError
from tests.sdk.processes import get_json, gone, marked, new_mark, process_group

ANSWER = "Hello from the mini-llm mock provider."


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with Gateway() as started:
        yield started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def chat(base_url: str, model: str = "mock") -> str | None:
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content


def test_package_exports_the_sdk() -> None:
    assert mini_llm.Gateway is Gateway
    assert mini_llm.GatewayStartError is GatewayStartError
    assert issubclass(GatewayStartError, RuntimeError)


def test_urls_point_at_the_running_gateway(gateway: Gateway) -> None:
    assert gateway.url.startswith("http://127.0.0.1:")
    assert not gateway.url.endswith(":0")
    assert gateway.openai_base_url == f"{gateway.url}/v1"
    assert gateway.anthropic_base_url == gateway.url
    assert get_json(f"{gateway.url}/health")["status"] == "ok"


def test_openai_sdk_through_openai_base_url(gateway: Gateway) -> None:
    assert chat(gateway.openai_base_url) == ANSWER


def test_anthropic_sdk_through_anthropic_base_url(gateway: Gateway) -> None:
    with anthropic.Anthropic(base_url=gateway.anthropic_base_url, api_key="unused", max_retries=0) as client:
        message = client.messages.create(model="mock", max_tokens=3, messages=[{"role": "user", "content": "hi"}])
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == "Hello from the"


def test_a_given_port_then_a_clean_idempotent_stop() -> None:
    port, env = free_port(), new_mark()
    gateway = Gateway(port, env=env).start()
    assert gateway.url == f"http://127.0.0.1:{port}"
    assert get_json(f"{gateway.url}/health")["status"] == "ok"
    assert gateway.stop() == 0  # drained on SIGTERM
    assert gateway.stop() is None
    assert marked(env) == []  # stop() waited for the gateway and its workers
    with pytest.raises(RuntimeError, match="not running"):
        _ = gateway.url


def test_config_mapping_and_aliases_reach_the_gateway() -> None:
    config = {"log_requests": True, "providers": {"local": {"base_url": "http://127.0.0.1:9/v1", "models": ["m1"]}}}
    with Gateway(config=config, aliases={"fast": "mock:mock"}) as gateway:
        models = {model["id"] for model in get_json(f"{gateway.openai_base_url}/models")["data"]}
        assert {"fast", "m1", "mock"} <= models
        assert chat(gateway.openai_base_url, "fast") == ANSWER


def test_a_chain_alias_falls_back_from_a_provider_that_is_down() -> None:
    config = {"providers": {"local": {"base_url": "http://127.0.0.1:9/v1"}}}  # port 9: nothing listens
    weighted = MappingProxyType({"targets": ["mock:mock"], "weights": (1,)})  # any mapping, any sequence
    with Gateway(config=config, aliases={"chain": ("local:m1", "mock:mock"), "spread": weighted}) as gateway:
        assert chat(gateway.openai_base_url, "chain") == ANSWER
        assert chat(gateway.openai_base_url, "spread") == ANSWER


def test_inherit_env_false_drops_settings_and_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-developers-shell")
    monkeypatch.setenv("MINI_LLM_MODEL_ALIASES", '{"inherited": "mock:mock"}')
    with Gateway() as inheriting:
        assert "openai" in get_json(f"{inheriting.url}/health")["providers"]
        assert "inherited" in {model["id"] for model in get_json(f"{inheriting.openai_base_url}/models")["data"]}
    with Gateway(inherit_env=False, env={"ANTHROPIC_API_KEY": "sk-ant-given"}) as clean:
        providers = get_json(f"{clean.url}/health")["providers"]
        assert "openai" not in providers
        assert "anthropic" in providers  # what `env` passes still arrives
        assert "inherited" not in {model["id"] for model in get_json(f"{clean.openai_base_url}/models")["data"]}


def test_config_file_path(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[aliases]\nquick = "mock:mock"\n')
    with Gateway(config=config) as gateway:
        assert chat(gateway.openai_base_url, "quick") == ANSWER


def test_bad_configuration_raises_with_the_config_error_line() -> None:
    env = new_mark()
    with pytest.raises(GatewayStartError) as caught:
        Gateway(config={"bogus": 1}, env=env).start()
    assert caught.value.returncode == 2
    assert "exited with status 2" in str(caught.value)
    assert "configuration error" in str(caught.value) and "unknown key(s) bogus" in str(caught.value)
    assert any("unknown key(s) bogus" in line for line in caught.value.stderr_tail)
    assert gone(env) == []


def test_a_taken_port_without_retries_raises() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GatewayStartError, match=f"port {port} on 127.0.0.1 is in use") as caught:
            Gateway(port, env={"MINI_LLM_PORT_RETRIES": "0"}).start()
    assert caught.value.returncode == 1


def test_startup_timeout_kills_the_child() -> None:
    env = new_mark()
    with pytest.raises(GatewayStartError, match=r"not ready within 0\.01 s, so it was killed") as caught:
        Gateway(env=env, startup_timeout=0.01).start()
    assert caught.value.returncode == -signal.SIGKILL
    assert gone(env) == []


def test_stop_escalates_to_sigkill_and_leaves_no_worker() -> None:
    env = new_mark()
    gateway = Gateway(env=env, stop_timeout=0.5).start()
    os.kill(gateway.pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    assert gateway.stop() == -signal.SIGKILL
    assert gone(env) == []  # the worker of the killed main process too


def test_restart_on_crash_keeps_the_url() -> None:
    env = new_mark()
    with Gateway(env=env, restart_on_crash=True) as gateway:
        url, crashed = gateway.url, gateway.pid
        os.kill(crashed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while gateway.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gateway.restarts == 1
        assert gateway.url == url and gateway.pid != crashed
        assert chat(gateway.openai_base_url) == ANSWER
        # The killed main process's orphaned worker was swept: all that is left is the new group.
        assert {process_group(pid) for pid in marked(env)} == {gateway.pid}
    assert gone(env) == []


KILLED_PARENT = """
import sys, time
from mini_llm import Gateway
gateway = Gateway(env={"SDK_TEST_MARK": sys.argv[1]}).start()
print(gateway.pid, flush=True)
time.sleep(120)
"""


def test_a_killed_parent_leaves_no_gateway_behind(tmp_path: Path) -> None:
    env = new_mark()
    command = [sys.executable, "-c", KILLED_PARENT, env["SDK_TEST_MARK"]]
    # A killed parent cannot remove its temporary directory: put it in pytest's tmp_path.
    with subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)}) as parent:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert pid in marked(env)
        parent.kill()
        parent.wait()
    assert gone(env) == []


EXITING_PARENT = """
import sys
from mini_llm import Gateway
gateway = Gateway(env={"SDK_TEST_MARK": sys.argv[1]}).start()
print(gateway.pid, flush=True)
"""
# The same without keeping a reference: the gateway object is gone long before the exit.
DROPPING_PARENT = """
import gc, sys
from mini_llm import Gateway
print(Gateway(env={"SDK_TEST_MARK": sys.argv[1]}).start().pid, flush=True)
gc.collect()
"""


@pytest.mark.parametrize("parent", [EXITING_PARENT, DROPPING_PARENT], ids=["kept", "dropped"])
def test_interpreter_exit_stops_the_gateway(parent: str) -> None:
    env = new_mark()
    result = subprocess.run(
        [sys.executable, "-c", parent, env["SDK_TEST_MARK"]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout)
    # atexit stopped and waited for it: nothing is left even for a moment (the kernel's SIGTERM
    # alone would leave the gateway draining for a while).
    assert marked(env) == []
