"""The Anthropic-compatible endpoints through the official anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

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


@pytest.mark.parametrize("model", ["us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock:claude-x", "My-Claude"])
def test_names_containing_claude_go_to_anthropic(
    client: anthropic.Anthropic, upstream: FakeUpstream, model: str
) -> None:
    client.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    seen = upstream.last()
    assert (seen.path, json.loads(seen.body)["model"]) == ("/v1/messages", model)
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY


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
    page = client.models.list()
    models = list(page)
    ids = [model.id for model in models]
    assert "smart" in ids and "mock" in ids
    assert (page.has_more, page.first_id, page.last_id) == (False, ids[0], ids[-1])
    for model in models:
        assert (model.type, model.display_name) == ("model", model.id)
        assert model.created_at.tzinfo is not None
    assert client.models.retrieve("smart").id == "smart"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nothing-here")


def test_models_list_shape_on_the_wire(gateway: GatewayProcess) -> None:
    from tests.e2e.http_client import request

    body = request(gateway.url, "GET", "/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert body["has_more"] is False
    assert (body["first_id"], body["last_id"]) == (body["data"][0]["id"], body["data"][-1]["id"])
    for model in body["data"]:
        assert set(model) == {"type", "id", "display_name", "created_at"}
        assert model["type"] == "model"
        assert datetime.fromisoformat(model["created_at"]).tzinfo == UTC
        assert model["created_at"].endswith("Z")


def test_models_errors_have_the_anthropic_shape(gateway: GatewayProcess) -> None:
    from tests.e2e.http_client import request

    answer = request(gateway.url, "POST", "/v1/models", b"{}", headers={"anthropic-version": "2023-06-01"})
    assert answer.status == 405
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "invalid_request_error"


def test_upstream_error_keeps_status(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="anthropic:status-429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
