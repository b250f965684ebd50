"""Request ids and x-mini-llm-overhead-ms over real TCP: kept or made, sent upstream, on every answer."""

from __future__ import annotations

import json
import re

import openai
import pytest

from tests.e2e.conftest import Closing
from tests.e2e.fake_upstream import LATE_START, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.raw_http import Answer

JSON = {"Content-Type": "application/json"}
MADE = re.compile(r"req_[0-9a-f]{28}")
OVERHEAD = re.compile(rb"\d+\.\d{3}")


def _chat(gateway: GatewayProcess, model: str, headers: dict[str, str] | None = None, stream: bool = False) -> Answer:
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}).encode()
    return request(gateway.url, "POST", "/v1/chat/completions", body, {**JSON, **(headers or {})})


def _upstream_id(upstream: FakeUpstream) -> str:
    return {name.lower(): value for name, value in upstream.last().headers.items()}["x-request-id"]


def test_a_client_id_is_kept_sent_upstream_and_returned(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    answer = _chat(gateway, "status-400", {"X-Request-Id": "client id 42/abc"})
    assert answer.status == 400
    assert _upstream_id(upstream) == "client id 42/abc"
    assert answer.headers[b"x-mini-llm-request-id"] == b"client id 42/abc"
    # The provider's own x-request-id is relayed as it came: the gateway's id is in its own header.
    assert answer.headers[b"x-request-id"] == b"req_fake_err"
    assert gateway.wait_for_log("request_id='client id 42/abc' ")


@pytest.mark.parametrize(
    "sent",
    [None, "x" * 129, "tab\there", "caf\u00e9", ""],
    ids=["missing", "too-long", "control", "not-ascii", "empty"],
)
def test_a_missing_or_unusable_id_is_replaced(
    gateway: GatewayProcess, upstream: FakeUpstream, sent: str | None
) -> None:
    answer = _chat(gateway, "gpt-4o", {} if sent is None else {"X-Request-Id": sent})  # sent as UTF-8
    assert answer.status == 200
    made = answer.headers[b"x-mini-llm-request-id"].decode()
    assert MADE.fullmatch(made)
    assert _upstream_id(upstream) == made


def test_the_longest_usable_id_is_kept(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    longest = "a" + "~ " * 63 + "z"
    assert len(longest) == 128
    answer = _chat(gateway, "gpt-4o", {"X-Request-Id": longest})
    assert answer.headers[b"x-mini-llm-request-id"] == longest.encode()
    assert _upstream_id(upstream) == longest


def test_made_ids_differ(gateway: GatewayProcess) -> None:
    ids = {_chat(gateway, "gpt-4o").headers[b"x-mini-llm-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_the_gateway_id_goes_in_x_request_id_when_the_provider_sends_none(gateway: GatewayProcess) -> None:
    answer = request(gateway.url, "POST", "/v1/chat/completions", b"{not json", JSON)
    assert answer.status == 400  # the gateway's own error: no provider was asked
    made = answer.headers[b"x-mini-llm-request-id"]
    assert answer.headers[b"x-request-id"] == made
    assert MADE.fullmatch(made.decode())
    assert OVERHEAD.fullmatch(answer.headers[b"x-mini-llm-overhead-ms"])


@pytest.mark.parametrize("path", ["/health", "/ready", "/v1/models", "/nowhere"])
def test_gateway_answers_carry_the_id_and_the_overhead(gateway: GatewayProcess, path: str) -> None:
    answer = request(gateway.url, "GET", path, headers={"X-Request-Id": "probe-1"})
    assert answer.headers[b"x-mini-llm-request-id"] == b"probe-1"
    assert answer.headers[b"x-request-id"] == b"probe-1"
    assert OVERHEAD.fullmatch(answer.headers[b"x-mini-llm-overhead-ms"])


def test_the_overhead_is_the_gateways_own_time(gateway: GatewayProcess) -> None:
    # The fake answers `late-start` LATE_START seconds late: that wait is the provider's, not the gateway's.
    answer = _chat(gateway, "late-start")
    assert answer.status == 200
    overhead = float(answer.headers[b"x-mini-llm-overhead-ms"])
    assert 0 < overhead < LATE_START * 1000 / 2, overhead


def test_a_failed_answer_s_slow_body_is_the_provider_s_time(gateway: GatewayProcess) -> None:
    # The failover reads a failed answer's body before it decides (a kept answer holds no connection).
    answer = _chat(gateway, "slow-body-503")
    assert answer.status == 503
    assert 0 < float(answer.headers[b"x-mini-llm-overhead-ms"]) < LATE_START * 1000 / 2


def test_a_stream_carries_the_id_but_no_overhead(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    answer = _chat(gateway, "gpt-4o", {"X-Request-Id": "stream-7"}, stream=True)
    assert answer.status == 200
    assert b"data: [DONE]" in answer.body
    assert answer.headers[b"x-mini-llm-request-id"] == b"stream-7"
    assert answer.headers[b"x-request-id"] == b"req_fake_s"  # the provider's
    assert b"x-mini-llm-overhead-ms" not in answer.headers
    assert _upstream_id(upstream) == "stream-7"


def test_the_openai_sdk_sees_the_provider_id(gateway: GatewayProcess, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0))
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Request-Id": "sdk-1"}
    )
    assert raw.request_id == "req_fake_1"  # the provider's, for its support
    assert raw.headers["x-mini-llm-request-id"] == "sdk-1"
