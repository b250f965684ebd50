"""Bad input and failing upstreams: a clear error in the route's protocol shape, and the gateway stays up."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import ALL_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

JSON = {"Content-Type": "application/json"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def strict_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """A gateway with a small body limit and one provider whose upstream is down."""
    env = gateway_env(
        upstream,
        MINI_LLM_MAX_BODY_BYTES="2000",
        DEEPINFRA_API_KEY="sk-deepinfra-test-key-EEEE",
        DEEPINFRA_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1/openai",
    )
    process = GatewayProcess(env).start()
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"model"', "must be a JSON object"),
        (b"", "empty"),
        (b'{"messages": []}', "missing required field 'model'"),
        (b'{"model": 42, "messages": []}', "'model' must be a string"),
        (b'{"model": "", "messages": []}', "must not be empty"),
        (b'{"model": "gpt-4o", "stream": "yes"}', "'stream' must be a boolean"),
        (b'{"model": "gpt\xff"}', "not valid JSON"),
        (b'{"\xff": 1, "model": "gpt-4o"}', "not valid JSON"),
    ],
)
def test_bad_openai_bodies(strict_gateway: GatewayProcess, body: bytes, fragment: str) -> None:
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 400
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_bad_anthropic_body_has_anthropic_shape(strict_gateway: GatewayProcess) -> None:
    response = request(strict_gateway.url, "POST", "/v1/messages", b"{oops", JSON)
    assert response.status == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_sdk_raises_its_own_classes(strict_gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=strict_gateway.url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="claude-3-opus", messages=[{"role": "user", "content": "x"}])
    claude = anthropic.Anthropic(base_url=strict_gateway.url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "openai" in caught.value.message and "/v1/messages" in caught.value.message


def test_body_over_limit_by_content_length(strict_gateway: GatewayProcess) -> None:
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"' + b"x" * 3000 + b'"}]}'
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 413
    assert "2000 bytes" in response.json()["error"]["message"]


def test_body_over_limit_while_reading_chunked(strict_gateway: GatewayProcess) -> None:
    chunks = [b'{"model":"gpt-4o","messages":[{"role":"user","content":"'] + [b"y" * 500] * 8 + [b'"}]}']
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", headers=JSON, chunks=chunks)
    assert response.status == 413
    anthropic_response = request(strict_gateway.url, "POST", "/v1/messages", headers=JSON, chunks=chunks)
    assert anthropic_response.status == 413
    assert anthropic_response.json()["error"]["type"] == "request_too_large"


def test_chunked_body_under_limit_is_accepted(strict_gateway: GatewayProcess) -> None:
    chunks = [b'{"model":"mock",', b'"messages":[{"role":"user",', b'"content":"hi"}]}']
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", headers=JSON, chunks=chunks)
    assert response.status == 200
    assert response.json()["choices"][0]["message"]["content"].startswith("Hello")


def test_unknown_path_and_wrong_method(strict_gateway: GatewayProcess) -> None:
    missing = request(strict_gateway.url, "GET", "/v2/nothing")
    assert missing.status == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    wrong = request(strict_gateway.url, "GET", "/v1/chat/completions")
    assert wrong.status == 405
    assert "POST" in wrong.json()["error"]["message"]
    wrong_anthropic = request(strict_gateway.url, "DELETE", "/v1/messages")
    assert wrong_anthropic.status == 405
    assert wrong_anthropic.json()["type"] == "error"


def test_provider_without_keys_names_the_setting(strict_gateway: GatewayProcess) -> None:
    body = b'{"model":"nebius:meta-llama/Llama-3.3-70B","messages":[]}'
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 400
    assert "NEBIUS_API_KEY" in response.json()["error"]["message"]


def test_unreachable_upstream_is_502(strict_gateway: GatewayProcess) -> None:
    body = b'{"model":"deepinfra:some-model","messages":[]}'
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 502
    error = response.json()["error"]
    assert "cannot reach provider 'deepinfra'" in error["message"]
    assert error["type"] == "server_error"


def test_upstream_timeout_is_504(strict_gateway: GatewayProcess) -> None:
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"hang"}', JSON)
    assert response.status == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    anthropic_response = request(
        strict_gateway.url, "POST", "/v1/messages", b'{"model":"anthropic:hang","max_tokens":1}', JSON
    )
    assert anthropic_response.status == 504
    assert anthropic_response.json()["error"]["type"] == "timeout_error"


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
def test_upstream_http_errors_pass_through(strict_gateway: GatewayProcess, status: int) -> None:
    body = f'{{"model":"status-{status}","messages":[]}}'.encode()
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == status
    assert response.json()["error"]["message"] == f"upstream says {status}"
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-request-id"] == "req_fake_err"


def test_upstream_error_echoing_the_key_is_scrubbed(strict_gateway: GatewayProcess) -> None:
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"echo-key"}', JSON)
    assert response.status == 401
    assert response.json()["error"]["message"] == "Incorrect API key provided: ***"


def test_rate_limit_reaches_the_sdk_as_rate_limit_error(strict_gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=strict_gateway.url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="status-429", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "7"


def test_invalid_content_length_is_rejected(strict_gateway: GatewayProcess) -> None:
    # granian itself refuses a malformed Content-Length; either way nobody hangs and the gateway lives on.
    host, port = strict_gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}")
        assert sock.recv(100).startswith(b"HTTP/1.1 4")
    assert request(strict_gateway.url, "GET", "/health").status == 200


def test_nothing_leaks_keys_or_tracebacks(strict_gateway: GatewayProcess) -> None:
    responses = [
        request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"fast","messages":[]}', JSON),
        request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"deepinfra:x"}', JSON),
        request(strict_gateway.url, "POST", "/v1/messages", b'{"model":"smart","max_tokens":1}', JSON),
        request(strict_gateway.url, "GET", "/health"),
        request(strict_gateway.url, "GET", "/v1/models"),
    ]
    everything = b"".join(r.body + str(r.headers).encode() for r in responses).decode() + strict_gateway.log
    for key in (*ALL_KEYS, "sk-deepinfra-test-key-EEEE"):
        assert key not in everything
    assert "Traceback" not in everything
    assert "POST '/v1/chat/completions' 200" in strict_gateway.log  # the access log is on and did log
