"""Streaming relay in both hot-path modes: SDK streams, disconnects, broken and stalled upstreams."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.fake_upstream import OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.raw_http import Answer


@pytest.fixture
def oai(any_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=any_gateway.url + "/v1", api_key="client-key", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(any_gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=any_gateway.url, api_key="client-key", max_retries=0) as client:
        yield client


def _raw_stream(gateway: GatewayProcess, model: str) -> Answer:
    body = json.dumps({"model": model, "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
    return request(gateway.url, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})


def test_openai_sdk_stream(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    stream = oai.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "x"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "fake streamed café 😀"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 8
    assert json.loads(upstream.last().body)["model"] == "gpt-4o-mini"


def test_openai_completions_stream_from_mock(oai: openai.OpenAI) -> None:
    stream = oai.completions.create(model="mock", prompt="x", stream=True, max_tokens=3)
    assert "".join(c.choices[0].text for c in stream) == "Hello from the"


def test_anthropic_sdk_stream(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    with claude.messages.stream(model="smart", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "fake anthropic stream"
    assert final.usage.output_tokens == 3
    assert json.loads(upstream.last().body)["model"] == "claude-sonnet-4"


def test_stream_bytes_are_relayed_unchanged(any_gateway: GatewayProcess) -> None:
    response = _raw_stream(any_gateway, "gpt-4o")
    assert response.status == 200
    assert response.headers[b"content-type"].startswith(b"text/event-stream")
    assert response.headers[b"x-request-id"] == b"req_fake_s"
    assert response.body.startswith(b'data: {"id": "chatcmpl-fake"')
    assert response.body.endswith(b"data: [DONE]\n\n")
    assert "café 😀".encode() in response.body


def test_client_disconnect_closes_upstream(oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    before = len(upstream.disconnects)
    stream = oai.chat.completions.create(model="endless", messages=[{"role": "user", "content": "x"}], stream=True)
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(received) == 3:
            break
    stream.close()
    # "At once": the fake upstream writes every 50 ms and notices the close on its next write.
    assert upstream.wait_for(lambda: len(upstream.disconnects) > before, timeout=1.0), "upstream never saw the close"


def test_upstream_cut_mid_event_becomes_stream_error(oai: openai.OpenAI) -> None:
    with (
        oai.chat.completions.create(model="cut", messages=[{"role": "user", "content": "x"}], stream=True) as stream,
        pytest.raises(openai.APIError) as caught,
    ):
        for _ in stream:
            pass
    assert "provider" in str(caught.value)


def test_upstream_stall_mid_stream_becomes_stream_error(any_gateway: GatewayProcess) -> None:
    raw = _raw_stream(any_gateway, "stall")
    assert raw.status == 200
    assert raw.body.endswith(b'"code":"upstream_timeout"}}\n\n')
    assert b"went silent" in raw.body


def test_anthropic_stream_error_event_shape(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(
            model="anthropic:stall", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert "went silent" in str(caught.value)


def test_health_reports_the_hot_path(any_gateway: GatewayProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(any_gateway.url + "/health", timeout=5) as response:
        health = json.loads(response.read())
    disabled = any_gateway.env.get("MINI_LLM_NO_EXTENSIONS") == "1"
    assert health["hot_path"] == ("python" if disabled else _expected_default())
    assert f"hot path: {health['hot_path']}" in any_gateway.log


def _expected_default() -> str:
    from mini_llm import hotpath

    return hotpath.IMPLEMENTATION


def test_malformed_events_are_relayed_and_never_end_the_stream(any_gateway: GatewayProcess) -> None:
    raw = _raw_stream(any_gateway, "malformed")
    assert raw.status == 200
    assert raw.body.startswith(b'data: {"choices":[{"delta":{"content":"kept"}}]}\n\n')
    assert b"broken" in raw.body
    assert raw.body.endswith(b"data: [DONE]\n\n")  # the trailing comment is no cut event
    assert b'"error"' not in raw.body
    assert any_gateway.wait_for_log("malformed=1 end=done")


def test_in_stream_error_echoing_the_key_is_scrubbed(any_gateway: GatewayProcess) -> None:
    raw = _raw_stream(any_gateway, "stream-echo-key")
    assert raw.body == b'data: {"error":{"message":"bad key ' + b"*" * len(OPENAI_KEYS[0]) + b'"}}\n\n'
    for key in OPENAI_KEYS:
        assert key not in any_gateway.log


def test_a_deeply_nested_usage_never_ends_the_stream(any_gateway: GatewayProcess) -> None:
    raw = _raw_stream(any_gateway, "deep-usage")
    assert raw.status == 200
    assert raw.body.count(b"[" * 5000) == 1  # relayed as it came
    assert raw.body.endswith(b"data: [DONE]\n\n")
    assert any_gateway.wait_for_log("malformed=1 end=done")
    assert "unhandled error" not in any_gateway.log


def test_a_deeply_nested_anthropic_start_never_ends_the_stream(any_gateway: GatewayProcess) -> None:
    body = b'{"model":"anthropic:deep-usage","stream":true,"max_tokens":5,"messages":[]}'
    raw = request(any_gateway.url, "POST", "/v1/messages", body, {"Content-Type": "application/json"})
    assert raw.status == 200
    assert raw.body.count(b"[" * 5000) == 1
    assert raw.body.endswith(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
    assert "unhandled error" not in any_gateway.log


def test_an_event_stream_answering_a_plain_request_goes_out_as_it_arrives(
    any_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    """The provider sends one event, then waits: the client has it without waiting for a next read."""
    host, port = any_gateway.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "sse-unasked", "messages": [{"role": "user", "content": "x"}]}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b'"content":"one"' not in received:
            data = connection.recv(65536)  # before the fix, this waited for the provider's next read
            assert data, received
            received += data
    assert received.startswith(b"HTTP/1.1 200")
    assert upstream.wait_for(lambda: "sse-unasked" in upstream.disconnects)  # let go once the client left
