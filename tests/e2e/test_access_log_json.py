"""MINI_LLM_LOG_FORMAT=json over real TCP: every line the gateway logs is one JSON object, with fixed fields."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import ALL_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.raw_http import address

JSON = {"Content-Type": "application/json"}
FIELDS = {
    "ts",
    "request_id",
    "method",
    "path",
    "status",
    "model",
    "provider",
    "upstream_model",
    "attempts",
    "duration_ms",
    "overhead_ms",
    "ttft_ms",
    "events",
    "input_tokens",
    "output_tokens",
    "stream_outcome",
    "client_gone",
    "error",
}
BANNER = "mini-llm gateway running on"


@pytest.fixture(scope="module")
def json_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_LOG_FORMAT="json")).start()
    yield process
    process.stop()


def _chat(gateway: GatewayProcess, model: str, request_id: str, stream: bool = False) -> int:
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}).encode()
    return request(gateway.url, "POST", "/v1/chat/completions", body, {**JSON, "X-Request-Id": request_id}).status


def _lines(gateway: GatewayProcess, request_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Every line parsed (each must be JSON), once the access lines of `request_ids` are all in."""
    for request_id in request_ids:
        assert gateway.wait_for_log(f'"request_id":"{request_id}"')
    records = [json.loads(line) for line in gateway.lines if not line.startswith(BANNER)]
    assert all(isinstance(record, dict) for record in records)
    return {record["request_id"]: record for record in records if record.get("request_id") in request_ids}


def test_every_line_is_an_object_with_the_fixed_fields(json_gateway: GatewayProcess) -> None:
    sent = {
        "ok": _chat(json_gateway, "gpt-4o", "ok"),
        "stream": _chat(json_gateway, "gpt-4o", "stream", stream=True),
        "failed": _chat(json_gateway, "status-503", "failed"),
        "key": _chat(json_gateway, "echo-key", "key"),
        "health": request(json_gateway.url, "GET", "/health", headers={"X-Request-Id": "health"}).status,
        "bad": request(json_gateway.url, "POST", "/v1/chat/completions", b"{", {**JSON, "X-Request-Id": "bad"}).status,
    }
    assert sent == {"ok": 200, "stream": 200, "failed": 503, "key": 401, "health": 200, "bad": 400}
    access = _lines(json_gateway, set(sent))
    for request_id, record in access.items():
        assert set(record) == FIELDS, request_id
        assert record["status"] == sent[request_id]
        assert record["ts"].endswith("Z") and "T" in record["ts"]
        assert record["duration_ms"] >= record["overhead_ms"] >= 0
    ok = access["ok"]
    assert (ok["method"], ok["path"], ok["model"], ok["provider"], ok["upstream_model"]) == (
        "POST",
        "/v1/chat/completions",
        "gpt-4o",
        "openai",
        "gpt-4o",
    )
    assert (ok["input_tokens"], ok["output_tokens"], ok["stream_outcome"], ok["events"], ok["ttft_ms"]) == (
        1,
        3,
        None,
        None,
        None,
    )
    [attempt] = ok["attempts"]
    assert (attempt["provider"], attempt["model"], attempt["outcome"]) == ("openai", "gpt-4o", 200)
    assert attempt["key"] in (1, 2) and attempt["ms"] > 0  # the key's number in the rotation, never the key
    stream = access["stream"]
    assert (stream["stream_outcome"], stream["events"], stream["input_tokens"], stream["output_tokens"]) == (
        "complete",
        7,
        5,
        3,
    )
    assert 0 < stream["ttft_ms"] <= stream["duration_ms"]
    failed = access["failed"]
    assert [a["outcome"] for a in failed["attempts"]] == [503]
    assert failed["provider"] == "openai" and failed["input_tokens"] is None
    bad = access["bad"]
    assert (bad["model"], bad["provider"], bad["attempts"]) == (None, None, [])
    assert "JSON" in bad["error"] or "json" in bad["error"]
    health = access["health"]
    assert (health["path"], health["model"], health["client_gone"]) == ("/health", None, False)
    for key in ALL_KEYS:
        assert key not in json_gateway.log


def test_long_values_are_cut(json_gateway: GatewayProcess) -> None:
    model = "m" * 5000
    assert _chat(json_gateway, model, "long") == 200
    record = _lines(json_gateway, {"long"})["long"]
    assert record["model"] == "m" * 200
    assert record["upstream_model"] == "m" * 200


def test_a_stream_the_client_leaves_keeps_its_provider_wait_out_of_the_overhead(json_gateway: GatewayProcess) -> None:
    body = json.dumps({"model": "endless", "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {json_gateway.url[7:]}\r\nContent-Type: application/json\r\n"
    head += f"X-Request-Id: leaves\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(address(json_gateway.url)) as client:
        client.sendall(head.encode() + body)
        received = b""
        while received.count(b"data: ") < 10:  # the provider sends an event every 50 ms
            received += client.recv(65536)
    record = _lines(json_gateway, {"leaves"})["leaves"]
    assert (record["stream_outcome"], record["client_gone"], record["status"]) == ("client_gone", True, 200)
    assert record["duration_ms"] >= 400
    assert record["overhead_ms"] < record["duration_ms"] / 4, record


def test_a_stream_cut_after_its_commit_logs_what_cut_it(json_gateway: GatewayProcess) -> None:
    assert _chat(json_gateway, "cut", "cut", stream=True) == 200
    record = _lines(json_gateway, {"cut"})["cut"]
    assert record["stream_outcome"] == "cut"
    assert "provider" in record["error"]
