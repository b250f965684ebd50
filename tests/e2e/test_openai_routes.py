"""The OpenAI-compatible endpoints through the official openai SDK, over real TCP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.e2e.fake_upstream import OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-own-key", max_retries=0) as sdk:
        yield sdk


def test_chat_completion_through_alias(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "fake openai answer"
    seen = upstream.last()
    assert seen.path == "/v1/chat/completions"
    assert json.loads(seen.body)["model"] == "gpt-4o-mini"
    assert seen.headers["Authorization"] in {f"Bearer {key}" for key in OPENAI_KEYS}
    assert "client-own-key" not in json.dumps(seen.headers)


def test_chat_completion_response_headers(gateway: GatewayProcess, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-request-id"] == "req_fake_1"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    assert raw.headers["content-type"].startswith("application/json")
    assert "openai-organization" not in raw.headers
    assert "set-cookie" not in raw.headers


def test_completions(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.completions.create(model="fast", prompt="say")
    assert answer.choices[0].text == "fake completion"
    assert upstream.last().path == "/v1/completions"


def test_embeddings(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert answer.data[0].embedding == [0.5, -0.5]
    assert upstream.last().path == "/v1/embeddings"
    assert json.loads(upstream.last().body)["model"] == "text-embedding-3-small"


def test_image_generation(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.images.generate(model="dall-e-3", prompt="a cat")
    assert answer.data is not None
    assert answer.data[0].url == "https://example.invalid/fake.png"
    assert upstream.last().path == "/v1/images/generations"


def test_image_generation_without_model_goes_to_openai(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    import urllib.request

    request = urllib.request.Request(gateway.url + "/v1/images/generations", data=b'{"prompt":"a dog"}', method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["data"][0]["url"].endswith("fake.png")
    assert upstream.last().body == b'{"prompt":"a dog"}'


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = {model.id: model.owned_by for model in client.models.list()}
    assert ids["fast"] == "openai"
    assert ids["smart"] == "anthropic"
    assert ids["llama3:8b"] == "local"
    assert ids["mock"] == "mock"
    assert client.models.retrieve("fast").owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert "no-such-model" in caught.value.message


def test_models_list_shape_on_the_wire(gateway: GatewayProcess) -> None:
    from tests.e2e.http_client import request

    body = request(gateway.url, "GET", "/v1/models").json()
    assert set(body) == {"object", "data"} and body["object"] == "list"
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model" and isinstance(model["created"], int)


def test_key_rotation_round_robin(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    used = []
    for _ in range(4):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        used.append(upstream.last().headers["Authorization"].removeprefix("Bearer "))
    assert set(used) == set(OPENAI_KEYS)
    assert used[0] != used[1] and used[0] == used[2] and used[1] == used[3]


@pytest.mark.parametrize(
    ("model", "path", "upstream_model"),
    [
        ("local:llama3:8b", "/v1/chat/completions", "llama3:8b"),  # configured provider prefix
        ("llama3:8b", "/v1/chat/completions", "llama3:8b"),  # 'llama3' is no provider: whole name, openai
        ("ft:gpt-4o-mini:acme::abc", "/v1/chat/completions", "ft:gpt-4o-mini:acme::abc"),
        ("openai:gpt-4.1", "/v1/chat/completions", "gpt-4.1"),
        ("gpt-4o", "/v1/chat/completions", "gpt-4o"),
    ],
)
def test_model_resolution(
    client: openai.OpenAI, upstream: FakeUpstream, model: str, path: str, upstream_model: str
) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    seen = upstream.last()
    assert seen.path == path
    assert json.loads(seen.body)["model"] == upstream_model
    expected_key = "sk-local" if model.startswith("local:") else "sk-test-openai"
    assert seen.headers["Authorization"].startswith(f"Bearer {expected_key}")


def test_anthropic_model_on_openai_route_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude-3-5-haiku", messages=[{"role": "user", "content": "x"}])
    message = caught.value.message
    assert "anthropic" in message and "/v1/chat/completions" in message and "claude-3-5-haiku" in message


def test_mock_model_answers_without_keys(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content == "Hello from the mini-llm mock provider."
    echoed = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}], max_tokens=3)
    assert echoed.model == "mock-echo"
    assert echoed.choices[0].message.content == "Hello from the"
