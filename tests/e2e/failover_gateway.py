"""Gateways for the failover tests: quick retry settings, providers on the scripted server, raw calls.

Retry state (key cooldowns, breakers) is per worker and per provider, so each test starts its own
one-worker gateway with exactly the providers and settings it is about; starting one takes a
fraction of a second.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tests.e2e.gateway_process import GatewayProcess, write_config
from tests.e2e.http_client import request
from tests.e2e.raw_http import Answer, address, exchange
from tests.e2e.scripted_provider import ScriptedProvider, Wire, closed_port

KEY_1 = "sk-scripted-key-one-11111111"
KEY_2 = "sk-scripted-key-two-22222222"

# Short times, so a test waits out a backoff or a cooldown in a second or two.
QUICK = {
    "MINI_LLM_RETRIES": "2",
    "MINI_LLM_RETRY_BACKOFF_BASE": "0.05",
    "MINI_LLM_RETRY_BACKOFF_MAX": "0.2",
    "MINI_LLM_RETRY_AFTER_MAX": "5",
    "MINI_LLM_RETRY_BUDGET": "20",
    "MINI_LLM_KEY_AUTH_COOLDOWN": "2",
    "MINI_LLM_KEY_RATE_LIMIT_COOLDOWN": "2",
    "MINI_LLM_BREAKER_FAILURES": "5",
    "MINI_LLM_BREAKER_COOLDOWN": "2",
    "MINI_LLM_UPSTREAM_TIMEOUT": "2",  # a `hang` step outlasts it; a loaded 2-core machine does not
    "MINI_LLM_LOG_REQUESTS": "1",
}
PATHS: Mapping[Wire, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
# An alias as MINI_LLM_MODEL_ALIASES takes it: one target, a chain, or {"targets": [...], "weights": [...]}.
AliasForm = str | list[str] | dict[str, list[str] | list[int]]


@dataclass(frozen=True, slots=True)
class ProviderTable:
    """One `[providers.NAME]` table of the gateway's config file."""

    name: str
    base_url: str
    keys: tuple[str, ...]
    protocol: Wire

    def toml(self) -> str:
        keys = ", ".join(json.dumps(key) for key in self.keys)
        return (
            f"[providers.{self.name}]\n"
            f'base_url = "{self.base_url}"\napi_keys = [{keys}]\nprotocol = "{self.protocol}"\n'
        )


def on(server: ScriptedProvider, name: str, *keys: str, protocol: Wire = "openai") -> ProviderTable:
    """A provider served by the scripted server (OpenAI-style base URLs end in /v1, Anthropic's do not)."""
    base = f"{server.base}/v1" if protocol == "openai" else server.base
    return ProviderTable(name, base, keys or (KEY_1,), protocol)


def refusing(name: str, protocol: Wire = "openai") -> ProviderTable:
    """A provider at a port nothing listens on: every connection is refused."""
    return ProviderTable(name, f"http://127.0.0.1:{closed_port()}/v1", (KEY_1,), protocol)


class Gateways:
    """Starts the gateways of one test and stops them after it."""

    def __init__(self) -> None:
        self.started: list[GatewayProcess] = []

    def start(
        self, providers: Sequence[ProviderTable], aliases: Mapping[str, AliasForm] | None = None, **settings: str
    ) -> GatewayProcess:
        """`retries="1"` sets MINI_LLM_RETRIES, on top of QUICK."""
        env = dict(QUICK)
        env["MINI_LLM_CONFIG"] = write_config("\n".join(table.toml() for table in providers))
        if aliases:
            env["MINI_LLM_MODEL_ALIASES"] = json.dumps(aliases)
        env.update({f"MINI_LLM_{name.upper()}": value for name, value in settings.items()})
        process = GatewayProcess(env)
        self.started.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


def body(wire: Wire, model: str, *, stream: bool = False) -> bytes:
    payload: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if wire == "anthropic":
        payload["max_tokens"] = 16
    if stream:
        payload["stream"] = True
    return json.dumps(payload).encode()


def call(gateway: GatewayProcess, model: str, *, wire: Wire = "openai", stream: bool = False) -> Answer:
    """One request on a fresh connection, answered in full."""
    headers = {"Content-Type": "application/json"}
    return request(gateway.url, "POST", PATHS[wire], body(wire, model, stream=stream), headers, timeout=30)


def raw_call(gateway: GatewayProcess, model: str, *, wire: Wire = "openai", stream: bool = False) -> bytes:
    """The same, as the bytes that came back (for the chunked framing itself)."""
    host, port = address(gateway.url)
    data = body(wire, model, stream=stream)
    head = (
        f"POST {PATHS[wire]} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return exchange(gateway.url, head.encode() + data, timeout=30)


def stream_request(gateway: GatewayProcess, model: str, wire: Wire = "openai") -> bytes:
    """The bytes of a streamed request for `model`, for a test that leaves it midway on a socket of its own."""
    host, port = address(gateway.url)
    data = body(wire, model, stream=True)
    head = (
        f"POST {PATHS[wire]} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


def stream_and_leave(gateway: GatewayProcess, model: str, marker: bytes, count: int, *, wire: Wire = "openai") -> bytes:
    """Stream `model`, read until `marker` came `count` times, then leave (close the connection); what came."""
    with socket.create_connection(address(gateway.url), timeout=10) as sock:
        sock.sendall(stream_request(gateway, model, wire))
        received = b""
        while received.count(marker) < count:
            piece = sock.recv(65536)
            assert piece, received
            received += piece
    assert received.startswith(b"HTTP/1.1 200"), received
    return received


def attempts(answer: Answer) -> int:
    return int(answer.headers[b"x-mini-llm-attempts"])


def answered_by(answer: Answer) -> str | None:
    value = answer.headers.get(b"x-mini-llm-target")
    return None if value is None else value.decode()


_ATTEMPTS = re.compile(r"attempts=\[([^\]]*)\]")


def _logged_attempts(gateway: GatewayProcess, model: str) -> list[str]:
    """The attempts the access log lists on the request line for `model`, quotes dropped.

    Entries may be separated by `;` or `,`: a model name has neither in these tests.
    """
    mark = f"model={model!r}"
    assert gateway.wait_for_log(mark), f"no access line for {model}:\n{gateway.log}"
    line = next(line for line in gateway.lines if mark in line)
    found = _ATTEMPTS.search(line)
    assert found is not None, line
    return [entry.strip().replace("'", "") for entry in re.split(r"[;,]", found.group(1)) if entry.strip()]


def assert_logged(gateway: GatewayProcess, model: str, expected: Sequence[tuple[str, str, str]]) -> None:
    """Each attempt's target, key number and outcome, in order, each with its time in ms."""
    entries = _logged_attempts(gateway, model)
    assert len(entries) == len(expected), entries
    for entry, (target, key, outcome) in zip(entries, expected, strict=True):
        pattern = rf"{re.escape(target)}\b.*\b{key}\b.*\b{re.escape(outcome)}\b.*\d+(\.\d+)?\s*ms"
        assert re.search(pattern, entry), (entry, target, key, outcome)
