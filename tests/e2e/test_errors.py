"""Bad input and failing upstreams: a clear error in the route's protocol shape, and the gateway stays up."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.e2e.attempts import attempt_pattern, split_failure
from tests.e2e.conftest import Closing, gateway_env
from tests.e2e.fake_upstream import ALL_KEYS, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, write_config
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
        MINI_LLM_BODY_TIMEOUT="0.5",
        DEEPINFRA_API_KEY="sk-deepinfra-test-key-EEEE",
        DEEPINFRA_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1/openai",
        MINI_LLM_RETRIES="2",  # the 502's message lists every attempt
        MINI_LLM_RETRY_BACKOFF_BASE="0.01",
        # The status-* models ask for `retry-after: 7`: above this, so they are relayed without a wait.
        MINI_LLM_RETRY_AFTER_MAX="0",
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


def test_sdk_raises_its_own_classes(strict_gateway: GatewayProcess, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=strict_gateway.url + "/v1", api_key="k", max_retries=0))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="claude-3-opus", messages=[{"role": "user", "content": "x"}])
    claude = closing(anthropic.Anthropic(base_url=strict_gateway.url, api_key="k", max_retries=0))
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "openai" in caught.value.message and "/v1/messages" in caught.value.message


def _raw_exchange(gateway: GatewayProcess, head: bytes, timeout: float = 5.0) -> bytes:
    """Send `head` (and whatever body bytes it carries), then read until the server closes or answers."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        return sock.recv(65536)


def test_body_over_limit_by_content_length_before_reading(strict_gateway: GatewayProcess) -> None:
    # Only the headers go out: the 413 must come from Content-Length alone.
    answer = _raw_exchange(
        strict_gateway, b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"2000 bytes" in answer


def test_stalled_body_gets_408(strict_gateway: GatewayProcess) -> None:
    started = time.monotonic()
    answer = _raw_exchange(
        strict_gateway,
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + b'{"model":',
    )
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"type":"error"' in answer and b"MINI_LLM_BODY_TIMEOUT" in answer
    assert time.monotonic() - started < 4


def test_malformed_chunked_body_is_a_400_in_shape(strict_gateway: GatewayProcess) -> None:
    answer = _raw_exchange(
        strict_gateway,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"error":{"message":"the request body was cut off or malformed"' in answer


def test_client_giving_up_before_the_answer_closes_the_upstream_request(
    strict_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    before = upstream.disconnects.count("hang")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"hang"}', JSON, timeout=0.2)
    # The gateway's upstream timeout is 1 s here; the close must come from the client leaving.
    assert upstream.wait_for(lambda: upstream.disconnects.count("hang") > before, timeout=0.7)
    assert time.monotonic() - started < 0.9


def test_hop_by_hop_and_client_location_headers_stay_behind(
    strict_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    headers = {
        **JSON,
        "Connection": "keep-alive, X-Custom-Hop",
        "X-Custom-Hop": "zzz",
        "X-Forwarded-For": "10.1.2.3",
        "Forwarded": "for=10.1.2.3",
        "api-key": "client-azure-key",
        "Cookie": "a=b",
        "OpenAI-Organization": "org-client",
        "X-Kept": "yes",
    }
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"fast"}', headers)
    assert response.status == 200
    seen = {name.lower(): value for name, value in upstream.last().headers.items()}
    for gone in ("x-custom-hop", "x-forwarded-for", "forwarded", "api-key", "cookie", "openai-organization"):
        assert gone not in seen
    assert seen["x-kept"] == "yes"
    assert seen["content-type"] == "application/json"


def test_anthropic_version_header_does_not_change_an_openai_route(strict_gateway: GatewayProcess) -> None:
    response = request(
        strict_gateway.url,
        "POST",
        "/v1/chat/completions",
        b'{"model":"claude-3-haiku"}',
        {**JSON, "anthropic-version": "2023-06-01"},
    )
    assert response.status == 400
    error = response.json()["error"]
    assert error["code"] == "protocol_mismatch"
    assert "(openai protocol)" in error["message"]


def test_405_names_the_allowed_methods_and_head_probes_work(strict_gateway: GatewayProcess) -> None:
    wrong = request(strict_gateway.url, "PUT", "/v1/messages")
    assert wrong.status == 405
    assert wrong.headers[b"allow"] == b"POST"
    head = request(strict_gateway.url, "HEAD", "/health")
    assert head.status == 200
    assert head.body == b""


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
    # Each attempt (the first and MINI_LLM_RETRIES=2 more) is listed: target, key number, what happened, time.
    lead, attempts = split_failure(error["message"])
    assert lead == "cannot reach provider 'deepinfra' (Connection refused)"
    assert len(attempts) == 3
    for entry in attempts:
        assert re.fullmatch(attempt_pattern("deepinfra:some-model", "unreachable", key=1), entry), entry
    assert response.headers[b"x-mini-llm-attempts"] == b"3"
    assert b"x-mini-llm-target" not in response.headers  # no provider answered
    assert error["type"] == "server_error"
    # Where the provider is (host and port) is for the operator's log, never for the client.
    port = strict_gateway.env["DEEPINFRA_BASE_URL"].split(":")[2].split("/")[0]
    assert "127.0.0.1" not in error["message"] and port not in error["message"]
    assert strict_gateway.wait_for_log(f"WARNING mini_llm: cannot reach provider 'deepinfra' at 127.0.0.1:{port}")


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A TLS server context whose certificate no client trusts (made with the openssl CLI)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="module")
def untrusted_tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A local TLS server with a self-signed certificate: every handshake fails on the client's side."""
    context = _self_signed(tmp_path_factory.mktemp("tls"))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):  # the client refuses the certificate
                conn.settimeout(5)
                context.wrap_socket(conn, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(scope="module")
def failing_providers_gateway(upstream: FakeUpstream, untrusted_tls_port: int) -> Iterator[GatewayProcess]:
    """Providers that cannot be reached: a name that cannot resolve, TLS to a plain-HTTP port, an
    untrusted certificate. All on 127.0.0.1: glibc refuses `-provider.invalid` (a label may not
    start with a hyphen, RFC 1123 2.1) before it sends any query, and `.invalid` never resolves
    anyway (RFC 6761 6.4)."""
    config = write_config(
        f"""
[providers.nowhere]
base_url = "http://-provider.invalid/v1"
[providers.plaintext]
base_url = "https://127.0.0.1:{upstream.port}/v1"
[providers.untrusted]
base_url = "https://127.0.0.1:{untrusted_tls_port}/v1"
"""
    )
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_CONFIG=config)).start()
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        ("nowhere", "DNS lookup failed"),
        ("plaintext", "TLS handshake failed"),
        ("untrusted", "certificate verify failed"),
    ],
)
def test_an_unreachable_provider_502_says_why_in_plain_words(
    failing_providers_gateway: GatewayProcess, provider: str, reason: str
) -> None:
    body = f'{{"model":"{provider}:some-model","messages":[]}}'.encode()
    response = request(failing_providers_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 502
    error = response.json()["error"]
    lead, attempts = split_failure(error["message"])
    assert lead == f"cannot reach provider {provider!r} ({reason})"
    assert len(attempts) == 1 and re.fullmatch(attempt_pattern(f"{provider}:some-model", "unreachable"), attempts[0])
    assert error["code"] == "upstream_unreachable"
    assert failing_providers_gateway.wait_for_log(f"WARNING mini_llm: cannot reach provider {provider!r} at ")


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
    assert response.headers[b"retry-after"] == b"7"
    assert response.headers[b"x-request-id"] == b"req_fake_err"


def test_upstream_redirect_is_relayed_with_its_location_not_followed(
    upstream: FakeUpstream, strict_gateway: GatewayProcess
) -> None:
    seen = len(upstream.seen)
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"redirect"}', JSON)
    assert response.status == 307
    assert response.headers[b"location"] == b"https://moved.example/v1"
    assert len(upstream.seen) == seen + 1  # one request upstream, no second one to the new location


def test_upstream_error_echoing_the_key_is_scrubbed(strict_gateway: GatewayProcess) -> None:
    response = request(strict_gateway.url, "POST", "/v1/chat/completions", b'{"model":"echo-key"}', JSON)
    assert response.status == 401
    assert response.json()["error"]["message"] == "Incorrect API key provided: " + "*" * len(OPENAI_KEYS[0])


def test_rate_limit_reaches_the_sdk_as_rate_limit_error(strict_gateway: GatewayProcess, closing: Closing) -> None:
    client = closing(openai.OpenAI(base_url=strict_gateway.url + "/v1", api_key="k", max_retries=0))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="status-429", messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "7"


def test_invalid_content_length_is_rejected(strict_gateway: GatewayProcess) -> None:
    # granian itself refuses a malformed Content-Length; either way nobody hangs and the gateway lives on.
    host, port = strict_gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n{}")
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
    assert strict_gateway.wait_for_log("POST '/v1/chat/completions' 200")  # the access log is on
