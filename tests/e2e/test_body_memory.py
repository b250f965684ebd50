"""A non-stream answer of any size is relayed as it arrives: the worker's memory does not grow with it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import HUGE_BYTES, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.worker_memory import high_water_mib, worker_pid

# Far below HUGE_BYTES (200 MiB): buffering the answer would show as at least that much.
MAX_GROWTH_MIB = 64


@pytest.fixture(scope="module")
def memory_gateway(upstream: FakeUpstream) -> Iterator[tuple[GatewayProcess, float]]:
    """A gateway of its own, and its worker's high-water mark before any large answer.

    A long upstream timeout: the fake upstream shares this process (and its GIL) with the client.
    """
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_UPSTREAM_TIMEOUT="30")).start()
    yield process, high_water_mib(worker_pid(process))
    process.stop()


def _stream_answer(gateway: GatewayProcess, model: str) -> tuple[int, dict[str, str], int, int, int]:
    """POST a non-stream chat request and read the answer in pieces: status, headers, size, keys, masks."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]})
    size = keys = masks = 0
    tail = b""
    mask = b"*" * len(OPENAI_KEYS[0])
    try:
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        while piece := response.read(1 << 20):  # http.client raises IncompleteRead on a cut body
            window = tail + piece
            keys += sum(window.count(key.encode()) for key in OPENAI_KEYS)
            masks += window.count(mask)
            tail = window[-(len(mask) - 1) :]  # a match is counted once: no tail holds a whole one
            size += len(piece)
    finally:
        connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, size, keys, masks


@pytest.mark.parametrize("model", ["huge-length", "huge-chunked", "huge-sse"])
def test_a_huge_answer_streams_through_in_bounded_memory_and_scrubbed(
    memory_gateway: tuple[GatewayProcess, float], model: str
) -> None:
    gateway, baseline = memory_gateway
    status, headers, size, keys, masks = _stream_answer(gateway, model)
    growth = high_water_mib(worker_pid(gateway)) - baseline
    assert status == 200
    assert size == HUGE_BYTES
    assert (keys, masks) == (0, 1)  # the key cut across two upstream writes is masked, same length
    assert "content-encoding" not in headers
    assert growth < MAX_GROWTH_MIB, f"the worker's high-water mark grew {growth:.0f} MiB relaying {model}"


def test_a_small_answer_still_goes_out_whole_with_its_length(memory_gateway: tuple[GatewayProcess, float]) -> None:
    status, headers, size, _, _ = _stream_answer(memory_gateway[0], "gpt-4o")
    assert status == 200
    assert int(headers["content-length"]) == size  # one message: granian framed it with a length


def test_a_huge_answer_the_provider_breaks_off_reaches_the_client_cut_not_short(
    memory_gateway: tuple[GatewayProcess, float],
) -> None:
    with pytest.raises(http.client.IncompleteRead):
        _stream_answer(memory_gateway[0], "huge-cut")
    gateway = memory_gateway[0]
    # Each client names the failure in its own words: aiohttp by its exception, the fast client plainly.
    reason = (
        "ClientPayloadError" if gateway.env.get("MINI_LLM_UPSTREAM_CLIENT") == "aiohttp" else "the connection closed"
    )
    assert gateway.wait_for_log(f"provider 'openai' failed while sending its answer: {reason}")
    # The access line keeps the status the client got, and says what cut the answer.
    (line,) = [line for line in gateway.lines if "model='huge-cut'" in line]
    assert " '/v1/chat/completions' 200 model='huge-cut' " in line
    assert """error="provider 'openai' failed while sending its answer""" in line
