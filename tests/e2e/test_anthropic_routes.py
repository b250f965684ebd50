"""The Anthropic-compatible endpoints through the official anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import pytest

from tests.e2e.fake_upstream import ANTHROPIC_KEY, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key="client-own-key", max_retries=0) as sdk:
        yield sdk


def test_messages_through_alias(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    message = client.messages.create(model="smart", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text" and message.content[0].text == "fake anthropic answer"
    seen = upstream.last()
    assert seen.path == "/v1/messages"
    assert json.loads(seen.body)["model"] == "claude-sonnet-4"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert "Authorization" not in seen.headers
    assert "client-own-key" not in json.dumps(seen.headers)


def test_inferred_claude_model_and_beta_header(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    client.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=5,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "tools-2024-04-04", "anthropic-version": "2023-01-01"},
    )
    seen = upstream.last()
    assert json.loads(seen.body)["model"] == "claude-3-5-haiku-latest"
    assert seen.headers["anthropic-beta"] == "tools-2024-04-04"
    assert seen.headers["anthropic-version"] == "2023-01-01"


def test_anthropic_version_defaults_when_client_sends_none(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    from tests.e2e.http_client import request

    response = request(gateway.url, "POST", "/v1/messages", b'{"model":"smart","max_tokens":1,"messages":[]}')
    assert response.status == 200
    assert upstream.last().headers["anthropic-version"] == "2023-06-01"


def test_count_tokens(client: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    counted = client.messages.count_tokens(model="smart", messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens == 42
    assert upstream.last().path == "/v1/messages/count_tokens"


def test_mock_messages_stream_and_count(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="mock", max_tokens=4, messages=[{"role": "user", "content": "x"}]) as stream:
        assert "".join(stream.text_stream) == "Hello from the mini-llm"
    assert client.messages.count_tokens(model="mock", messages=[{"role": "user", "content": "x"}]).input_tokens > 0


def test_models_list_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    ids = [model.id for model in client.models.list()]
    assert "smart" in ids and "mock" in ids
    assert client.models.retrieve("smart").id == "smart"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nothing-here")


def test_upstream_error_keeps_status(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="anthropic:status-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
