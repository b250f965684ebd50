"""Partial events held by many streams at once stay within the worker's budget (MINI_LLM_STREAM_BUFFER_BYTES)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import HOG_BYTES, HOG_FIRST_EVENT, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.worker_memory import high_water_mib, worker_pid

STREAMS = 20
BUDGET = 16 * 1024 * 1024
# Holding every partial event (STREAMS * HOG_BYTES = 120 MiB, twice: the relay's copy and the splitter's)
# would pass this.
MAX_GROWTH_MIB = 100


@pytest.fixture(scope="module")
def budget_gateway(upstream: FakeUpstream) -> Iterator[tuple[GatewayProcess, float]]:
    process = GatewayProcess(
        gateway_env(upstream, MINI_LLM_STREAM_BUFFER_BYTES=str(BUDGET), MINI_LLM_UPSTREAM_TIMEOUT="60")
    ).start()
    yield process, high_water_mib(worker_pid(process))
    process.stop()


@dataclass
class _Stream:
    connection: http.client.HTTPConnection
    body: bytes = b""
    ended: bool = False  # the body ended properly (http.client checks the chunked framing)

    def read(self) -> None:
        response = self.connection.getresponse()
        assert response.status == 200
        try:
            self.body = response.read()
            self.ended = True
        except (http.client.IncompleteRead, OSError):
            pass

    def cut(self) -> None:
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)


def _open(gateway: GatewayProcess) -> _Stream:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"model": "partial-hog", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    return _Stream(connection)


def test_streams_past_the_budget_end_with_an_error_event_and_let_go_of_their_provider(
    budget_gateway: tuple[GatewayProcess, float], upstream: FakeUpstream
) -> None:
    gateway, baseline = budget_gateway
    before = upstream.disconnects.count("partial-hog")
    streams = [_open(gateway) for _ in range(STREAMS)]
    readers = [threading.Thread(target=stream.read) for stream in streams]
    for reader in readers:
        reader.start()
    survivors = BUDGET // (2 * HOG_BYTES)  # as many partial events as the budget holds, both copies counted
    # The ended streams sit idle waiting for their provider; the budget ends them all the same.
    assert upstream.wait_for(
        lambda: upstream.disconnects.count("partial-hog") - before >= STREAMS - survivors, timeout=20
    ), f"the provider saw {upstream.disconnects.count('partial-hog') - before} streams closed"
    growth = high_water_mib(worker_pid(gateway)) - baseline
    for stream in streams:
        stream.cut()
    for reader in readers:
        reader.join(10)
    for stream in streams:
        stream.connection.close()
    ended = [stream for stream in streams if stream.ended]
    assert len(ended) >= STREAMS - survivors
    for stream in ended:
        # The stream was committed at its first event; the error event follows it, never half of the next.
        assert stream.body.startswith(HOG_FIRST_EVENT)
        error = stream.body.removeprefix(HOG_FIRST_EVENT)
        assert error.startswith(b'data: {"error":{"message":"the gateway ended this stream: its incomplete')
        assert b"MINI_LLM_STREAM_BUFFER_BYTES" in stream.body
        assert stream.body.endswith(b'"type":"server_error","param":null,"code":"stream_buffer_exhausted"}}\n\n')
        assert b"hhhh" not in stream.body  # never half an event
    assert growth < MAX_GROWTH_MIB, f"the worker's high-water mark grew {growth:.0f} MiB"
    assert gateway.wait_for_log("end=error")
