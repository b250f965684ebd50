"""Start-up and shut-down: configuration errors, port retries, SIGTERM drain, the mock upstream server."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.conftest import Closing, gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, run_cli, write_config
from tests.e2e.http_client import request


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"MINI_LLM_PORT": "70000"}, "MINI_LLM_PORT"),
        ({"MINI_LLM_PORT": "abc"}, "MINI_LLM_PORT"),
        ({"MINI_LLM_MODEL_ALIASES": "{not json"}, "MINI_LLM_MODEL_ALIASES"),
        ({"MINI_LLM_MODEL_ALIASES": '{"a": "nowhere:model"}'}, "MINI_LLM_MODEL_ALIASES"),
        ({"MINI_LLM_MODEL_ALIASES": '{"a": "no-colon"}'}, "MINI_LLM_MODEL_ALIASES"),
        ({"MINI_LLM_MODEL_ALIASES": '["list"]'}, "MINI_LLM_MODEL_ALIASES"),
        ({"OPENAI_API_KEYS": "sk-a,,sk-b"}, "OPENAI_API_KEYS"),
        ({"MINI_LLM_CONFIG": "/nonexistent/mini-llm.toml"}, "MINI_LLM_CONFIG"),
        ({"MINI_LLM_MAX_BODY_BYTES": "-5"}, "MINI_LLM_MAX_BODY_BYTES"),
        ({"MINI_LLM_UPSTREAM_TIMEOUT": "0"}, "MINI_LLM_UPSTREAM_TIMEOUT"),
        ({"MINI_LLM_STREAM_BUFFER_BYTES": "0"}, "MINI_LLM_STREAM_BUFFER_BYTES"),
        ({"MINI_LLM_STREAM_BUFFER_BYTES": "64MiB"}, "MINI_LLM_STREAM_BUFFER_BYTES"),
        ({"MINI_LLM_LOG_REQUESTS": "perhaps"}, "MINI_LLM_LOG_REQUESTS"),
        ({"MINI_LLM_NO_EXTENSIONS": "maybe"}, "MINI_LLM_NO_EXTENSIONS"),
        ({"OPENAI_BASE_URL": "api.openai.com"}, "OPENAI_BASE_URL"),
    ],
)
def test_bad_configuration_stops_start_up(env: dict[str, str], setting: str) -> None:
    result = run_cli("serve", env={"MINI_LLM_PORT": "0", **env})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr
    assert "sk-a" not in result.stderr


def test_invalid_toml_config_file() -> None:
    path = write_config("port = [unclosed")
    result = run_cli("serve", "--config", path)
    assert result.returncode == 2
    assert "MINI_LLM_CONFIG" in result.stderr and "not valid TOML" in result.stderr


def test_config_file_and_env_precedence(upstream: FakeUpstream, closing: Closing) -> None:
    path = write_config(
        f"""
port_retries = 3
[aliases]
filed = "openai:from-file"
both = "openai:file-wins-not"
[providers.openai]
api_keys = ["sk-file-key-1"]
base_url = "{upstream.base}/v1"
"""
    )
    env = {"MINI_LLM_MODEL_ALIASES": '{"both": "openai:env-wins"}'}
    process = GatewayProcess({**env, "MINI_LLM_CONFIG": path}).start()
    try:
        client = closing(openai.OpenAI(base_url=process.url + "/v1", api_key="x", max_retries=0))
        client.chat.completions.create(model="both", messages=[{"role": "user", "content": "x"}])
        assert json.loads(upstream.last().body)["model"] == "env-wins"
        assert upstream.last().headers["Authorization"] == "Bearer sk-file-key-1"
        # The env's alias table replaces the file's whole table, so 'filed' is no alias any more.
        client.chat.completions.create(model="filed", messages=[{"role": "user", "content": "x"}])
        assert json.loads(upstream.last().body)["model"] == "filed"
        assert "openai=1 key" in process.log and "sk-file-key-1" not in process.log
    finally:
        process.stop()


def test_config_check_masks_keys() -> None:
    result = run_cli("config", "check", env={"OPENAI_API_KEYS": "sk-one,sk-two"})
    assert result.returncode == 0
    assert "openai=2 keys" in result.stdout
    assert "sk-one" not in result.stdout + result.stderr


def test_port_retries_move_to_the_next_free_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # GatewayProcess passes --port 0 first; the later flag wins in argparse.
        process = GatewayProcess({"MINI_LLM_PORT_RETRIES": "5"}, ("--port", str(port))).start()
        try:
            bound = int(process.url.rsplit(":", 1)[1])
            assert port < bound <= port + 5
        finally:
            process.stop()
        failed = run_cli("serve", "--port", str(port), env={"MINI_LLM_PORT_RETRIES": "0"})
        assert failed.returncode == 1
        assert f"port {port}" in failed.stderr and "in use" in failed.stderr


def test_serve_prints_the_running_line_on_stdout() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mini_llm.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.fullmatch(r"mini-llm gateway running on http://127\.0\.0\.1:\d+\n", line)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        proc.stdout.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_in_flight_streams(stop: signal.Signals, closing: Closing) -> None:
    process = GatewayProcess({"MINI_LLM_MOCK_TOKEN_DELAY": "0.05", "MINI_LLM_DRAIN_DELAY": "0.6"}).start()
    client = closing(openai.OpenAI(base_url=process.url + "/v1", api_key="x", max_retries=0))
    texts: list[str] = []

    def consume() -> None:
        stream = client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "x"}], stream=True, max_tokens=30
        )
        texts.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    assert request(process.url, "GET", "/ready").status == 200
    process.signal(stop)
    time.sleep(0.2)
    draining = request(process.url, "GET", "/ready")
    assert draining.status == 503
    assert draining.json() == {"status": "draining"}
    assert request(process.url, "GET", "/health").status == 200
    reader.join(20)
    assert process.wait(20) == 0
    assert len(texts) == 1
    assert texts[0].startswith("Hello from the mini-llm mock provider.")
    assert texts[0].count(" from") == 5  # all 30 tokens arrived


def test_a_stream_still_open_at_the_drain_timeout_ends_with_an_error_event() -> None:
    """Cut by the drain timeout, a stream still ends as a stream should: an error event, then its end."""
    process = GatewayProcess({"MINI_LLM_MOCK_TOKEN_DELAY": "0.2", "MINI_LLM_DRAIN_TIMEOUT": "1"}).start()
    host, port = process.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    body = json.dumps({"model": "mock", "stream": True, "max_tokens": 200, "messages": []})
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.read1(65536).startswith(b"data: ")  # the stream runs: 200 tokens, 40 s of them
    process.signal(signal.SIGTERM)
    rest = response.read()  # http.client raises IncompleteRead on a stream cut without its end
    connection.close()
    assert rest.endswith(b'"type":"server_error","param":null,"code":"gateway_shutting_down"}}\n\n'), rest[-300:]
    assert b"MINI_LLM_DRAIN_TIMEOUT" in rest
    assert process.wait(20) == 0


def test_a_stream_whose_provider_answers_after_the_drain_timeout_ends_at_once(upstream: FakeUpstream) -> None:
    """Its provider answers between the drain timeout and the kill: the stream ends at once, with the
    same error event the streams open at the timeout got, instead of running on until the kill cuts it.

    The kill comes ceil(0.2) + 1 = 2 s after the stop; the provider answers LATE_START (1 s) after the
    request, 0.8 s after the timeout ended the worker's streams.
    """
    env = gateway_env(upstream, MINI_LLM_DRAIN_TIMEOUT="0.2", MINI_LLM_UPSTREAM_TIMEOUT="5")
    process = GatewayProcess(env).start()
    host, port = process.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=20)
    body = json.dumps({"model": "late-start", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    asked = len(upstream.seen)
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert upstream.wait_for(lambda: len(upstream.seen) > asked)  # in flight: the provider holds it
    process.signal(signal.SIGTERM)
    response = connection.getresponse()
    assert response.status == 200
    answer = response.read()  # http.client raises IncompleteRead on a stream cut without its end
    connection.close()
    assert answer.startswith(b'data: {"error":'), answer[:300]
    assert answer.endswith(b'"type":"server_error","param":null,"code":"gateway_shutting_down"}}\n\n'), answer
    assert b"drain timeout of 0.2s" in answer
    assert process.wait(20) == 0


@pytest.fixture(scope="module")
def mock_upstream() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mini_llm.cli", "mock-upstream", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"running on (http://\S+)", line)
    assert match, line
    yield match.group(1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    proc.stdout.close()


def test_gateway_over_the_mock_upstream_server(mock_upstream: str, closing: Closing) -> None:
    env = {
        "OPENAI_API_KEY": "sk-mock",
        "OPENAI_BASE_URL": mock_upstream + "/v1",
        "ANTHROPIC_API_KEY": "sk-mock",
        "ANTHROPIC_BASE_URL": mock_upstream,
    }
    process = GatewayProcess(env).start()
    try:
        client = closing(openai.OpenAI(base_url=process.url + "/v1", api_key="x", max_retries=0))
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert answer.model == "gpt-4o" and answer.choices[0].message.content
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True, max_tokens=50
        )
        assert sum(1 for c in stream if c.choices and c.choices[0].delta.content) == 50
        claude = closing(anthropic.Anthropic(base_url=process.url, api_key="x", max_retries=0))
        with claude.messages.stream(model="claude-x", max_tokens=3, messages=[{"role": "user", "content": "x"}]) as s:
            assert "".join(s.text_stream) == "Hello from the"
    finally:
        process.stop()


def _listening(port: int) -> bool:
    """Whether any socket on this machine is in LISTEN state on `port` (Linux /proc/net/tcp)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def _alive(pid: int) -> bool:
    """Whether any thread of `pid` still runs; a zombie (not yet reaped by pid 1 in this sandbox)
    counts as gone. Its other threads can outlive the leader for a moment, holding its sockets."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except FileNotFoundError:
            continue
    return False


def test_workers_die_with_a_killed_main_process() -> None:
    """granian's workers would outlive a SIGKILLed main process and keep the port; ours follow it at
    once, even with a stream in flight (nobody is left to enforce a drain deadline)."""
    gateway = GatewayProcess({"MINI_LLM_MOCK_TOKEN_DELAY": "30"}).start()
    assert gateway.proc is not None
    main = gateway.proc.pid
    workers = [int(pid) for pid in subprocess.check_output(["pgrep", "-P", str(main)], text=True).split()]
    assert workers
    host, port = gateway.url.removeprefix("http://").split(":")
    body = b'{"model":"mock","stream":true,"messages":[]}'
    with socket.create_connection((host, int(port)), timeout=10) as stream:
        stream.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert stream.recv(12) == b"HTTP/1.1 200"  # the stream is open, its first token 30 s away
        gateway.proc.kill()
        gateway.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
    assert not _listening(int(port)), "a socket still listens on the gateway's port"
    gateway.stop()
