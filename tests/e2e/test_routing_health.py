"""/health shows the answering worker's routing state: cooling keys (by number, never the key) and open breakers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import ALL_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stateful_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    env = gateway_env(
        upstream,
        MINI_LLM_RETRIES="0",
        MINI_LLM_KEY_AUTH_COOLDOWN="120",
        MINI_LLM_BREAKER_FAILURES="1",
        MINI_LLM_BREAKER_COOLDOWN="120",
    )
    process = GatewayProcess(env).start()
    yield process
    process.stop()


def _health(gateway: GatewayProcess) -> dict[str, object]:
    response = request(gateway.url, "GET", "/health")
    assert response.status == 200
    assert not any(key.encode() in response.body for key in ALL_KEYS)
    routing: dict[str, object] = json.loads(response.body)["routing"]
    return routing


def test_cooling_keys_and_open_breakers_show_in_health(stateful_gateway: GatewayProcess) -> None:
    fresh = _health(stateful_gateway)
    assert (fresh["keys_cooling"], fresh["breakers"]) == ({}, [])
    assert fresh["keys_available"] == {"openai": 2, "anthropic": 1, "local": 1, "mock": 1}  # keyless: one slot
    refused = request(stateful_gateway.url, "POST", "/v1/chat/completions", b'{"model":"status-401"}', JSON)
    assert refused.status == 401  # both keys refused: the last refusal goes back as it came
    assert refused.headers[b"x-mini-llm-attempts"] == b"2"
    failing = request(stateful_gateway.url, "POST", "/v1/messages", b'{"model":"anthropic:status-500"}', JSON)
    assert failing.status == 500
    # Both OpenAI keys cool now: nothing can be sent, and the client is told why and for how long.
    waiting = request(stateful_gateway.url, "POST", "/v1/chat/completions", b'{"model":"gpt-4o"}', JSON)
    assert waiting.status == 503
    assert waiting.json()["error"]["code"] == "keys_unavailable"
    assert 100 < int(waiting.headers[b"retry-after"]) <= 120
    assert waiting.headers[b"x-mini-llm-attempts"] == b"0"
    routing = _health(stateful_gateway)
    assert routing["keys_available"] == {"openai": 0, "anthropic": 1, "local": 1, "mock": 1}
    cooling = routing["keys_cooling"]
    assert isinstance(cooling, dict)
    assert [(entry["key"], entry["reason"]) for entry in cooling["openai"]] == [(1, "auth"), (2, "auth")]
    assert all(100 < entry["seconds_left"] <= 120 for entry in cooling["openai"])
    breakers = routing["breakers"]
    assert isinstance(breakers, list)
    assert [(b["target"], b["state"]) for b in breakers] == [("anthropic:status-500", "open")]
