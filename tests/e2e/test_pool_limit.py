"""MINI_LLM_UPSTREAM_POOL_LIMIT on the client this run uses: past the limit a request waits, within the timeout."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator

import pytest

from tests.e2e.attempts import attempt_pattern, split_failure
from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

TIMEOUT = "1.5"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def one_connection_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    env = gateway_env(upstream, MINI_LLM_UPSTREAM_POOL_LIMIT="1", MINI_LLM_UPSTREAM_TIMEOUT=TIMEOUT)
    process = GatewayProcess(env).start()
    yield process
    process.stop()


def _pool_wait_message(gateway: GatewayProcess) -> str:
    """The fast client tells a wait for a free connection apart; aiohttp reports it as a connect timeout."""
    if gateway.env.get("MINI_LLM_UPSTREAM_CLIENT", "fast") == "aiohttp":
        return f"provider 'openai' went silent for {TIMEOUT}s before answering"
    return f"no connection to provider 'openai' came free within {TIMEOUT}s (MINI_LLM_UPSTREAM_POOL_LIMIT)"


def _open_stream(gateway: GatewayProcess) -> http.client.HTTPConnection:
    """An `endless` stream (an event every 50 ms for 30 s), its first event read: it holds its connection."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"model": "endless", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    connection.request("POST", "/v1/chat/completions", body, JSON)
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"data: ")
    return connection


def test_a_request_past_the_limit_waits_then_gets_a_504_and_the_freed_slot_serves_the_next(
    one_connection_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    stream = _open_stream(one_connection_gateway)
    try:
        seen = len(upstream.seen)
        body = b'{"model":"gpt-4o-mini","messages":[]}'
        waited = request(one_connection_gateway.url, "POST", "/v1/chat/completions", body, JSON)
        assert waited.status == 504
        lead, attempts = split_failure(waited.json()["error"]["message"])
        assert lead == _pool_wait_message(one_connection_gateway)
        fast = one_connection_gateway.env.get("MINI_LLM_UPSTREAM_CLIENT", "fast") == "fast"
        outcome = "pool-full" if fast else "timeout"  # aiohttp cannot tell its pool wait from a silent provider
        assert len(attempts) == 1 and re.fullmatch(attempt_pattern("openai:gpt-4o-mini", outcome, key=2), attempts[0])
        assert len(upstream.seen) == seen  # it never reached the provider: no connection was free
    finally:
        stream.close()  # the client leaves: the gateway drops the stream's upstream connection
    assert upstream.wait_for(lambda: "endless" in upstream.disconnects)
    served = request(one_connection_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert served.status == 200
