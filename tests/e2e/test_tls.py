"""Real TLS to a provider, on the client this run uses (MINI_LLM_UPSTREAM_CLIENT): verified, refused, pooled, streamed.

The fake providers serve certificates of a throwaway CA (trustme) that the gateway trusts only through
SSL_CERT_FILE, which both clients' `ssl.create_default_context()` loads (OpenSSL's default paths).
The base URLs name `localhost`, which resolves to 127.0.0.1 alone here (/etc/hosts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import openai
import pytest
import trustme

from tests.e2e.attempts import attempt_pattern, split_failure
from tests.e2e.conftest import Closing, gateway_env
from tests.e2e.fake_upstream import FakeUpstream, openai_stream
from tests.e2e.gateway_process import GatewayProcess, write_config
from tests.e2e.http_client import request
from tests.e2e.tls_upstream import TlsUpstream, tls_upstream

JSON = {"Content-Type": "application/json"}
PROVIDERS = ("secure", "pooled", "misnamed", "untrusted")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The CA the gateway trusts."""
    return trustme.CA()


@pytest.fixture(scope="module")
def providers(ca: trustme.CA) -> Iterator[dict[str, TlsUpstream]]:
    """One TLS server per provider: `pooled` has its own, so only its test's requests reach it."""
    servers = {
        "secure": tls_upstream(ca),
        "pooled": tls_upstream(ca),
        "misnamed": tls_upstream(ca, "provider.example"),  # a trusted certificate for another host
        "untrusted": tls_upstream(trustme.CA()),  # for localhost, from a CA the gateway does not know
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def tls_gateway(
    upstream: FakeUpstream, ca: trustme.CA, providers: dict[str, TlsUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    trusted = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(trusted))
    config = "".join(f'[providers.{name}]\nbase_url = "{server.base}/v1"\n' for name, server in providers.items())
    env = gateway_env(upstream, MINI_LLM_CONFIG=write_config(config), SSL_CERT_FILE=str(trusted))
    process = GatewayProcess(env).start()
    yield process
    process.stop()


def _chat(model: str, stream: bool = False) -> bytes:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}).encode()


def test_the_gateway_uses_the_client_this_run_tests(tls_gateway: GatewayProcess) -> None:
    """The other tests hold for MINI_LLM_UPSTREAM_CLIENT's client, whose name /health reports."""
    health = request(tls_gateway.url, "GET", "/health").json()
    client = tls_gateway.env.get("MINI_LLM_UPSTREAM_CLIENT", "fast")
    assert {health["upstream_clients"][name] for name in PROVIDERS} == {client}


def test_a_verified_connection_sends_sni_and_offers_http11_alone(
    tls_gateway: GatewayProcess, providers: dict[str, TlsUpstream], closing: Closing
) -> None:
    """Both clients offer ALPN `http/1.1` alone: the fast client by design, aiohttp in its default TLS
    context (since aio-libs/aiohttp#10156), so the assertion is the same for both."""
    server = providers["secure"]
    oai = closing(openai.OpenAI(base_url=tls_gateway.url + "/v1", api_key="client-key", max_retries=0))
    answer = oai.chat.completions.create(model="secure:gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content == "fake openai answer"
    assert json.loads(server.last().body)["model"] == "gpt-4o"
    assert {name.lower(): value for name, value in server.last().headers.items()}["host"] == f"localhost:{server.port}"
    seen = server.requests[-1]
    assert (seen.server_name, seen.alpn) == ("localhost", "http/1.1")


@pytest.mark.parametrize("provider", ["misnamed", "untrusted"])
def test_a_bad_certificate_is_a_502_that_says_so_and_nothing_else(
    tls_gateway: GatewayProcess, providers: dict[str, TlsUpstream], provider: str
) -> None:
    server = providers[provider]
    before = len(server.handshakes)
    response = request(tls_gateway.url, "POST", "/v1/chat/completions", _chat(f"{provider}:gpt-4o"), JSON)
    assert response.status == 502
    error = response.json()["error"]
    lead, attempts = split_failure(error.pop("message"))
    assert lead == f"cannot reach provider {provider!r} (certificate verify failed)"
    assert len(attempts) == 1 and re.fullmatch(attempt_pattern(f"{provider}:gpt-4o", "unreachable"), attempts[0])
    assert error == {
        "type": "server_error",
        "param": None,
        "code": "upstream_unreachable",
    }
    assert b"localhost" not in response.body and str(server.port).encode() not in response.body
    assert server.handshakes[before:] == ["localhost"]  # the gateway did reach it, and refused it
    assert not server.requests  # no byte of the request went to a server it does not trust
    assert tls_gateway.wait_for_log(f"WARNING mini_llm: cannot reach provider {provider!r} at localhost:{server.port}")


def test_sequential_requests_share_one_tls_connection(
    tls_gateway: GatewayProcess, providers: dict[str, TlsUpstream]
) -> None:
    """Keep-alive over TLS: one handshake for all, through the gateway's one worker."""
    server = providers["pooled"]
    for _ in range(5):
        response = request(tls_gateway.url, "POST", "/v1/chat/completions", _chat("pooled:gpt-4o"), JSON)
        assert response.status == 200
    assert server.handshakes == ["localhost"]
    assert [seen.connection for seen in server.requests] == [0] * 5


def test_a_tls_connection_the_provider_closed_while_idle_is_never_reused(
    tls_gateway: GatewayProcess, providers: dict[str, TlsUpstream]
) -> None:
    """What a provider's idle timeout does (close_notify, FIN): the next request goes on a new connection."""
    server = providers["secure"]
    assert request(tls_gateway.url, "POST", "/v1/chat/completions", _chat("secure:gpt-4o"), JSON).status == 200
    idle = server.requests[-1].connection  # the gateway's one connection to it: requests here come one at a time
    server.close_connection(idle)
    again = request(tls_gateway.url, "POST", "/v1/chat/completions", _chat("secure:gpt-4o"), JSON)
    assert again.status == 200
    assert server.requests[-1].connection != idle


def test_a_stream_over_tls_is_relayed_byte_for_byte(
    tls_gateway: GatewayProcess, providers: dict[str, TlsUpstream]
) -> None:
    body = _chat("secure:gpt-4o", stream=True)
    response = request(tls_gateway.url, "POST", "/v1/chat/completions", body, JSON)
    assert response.status == 200
    assert response.headers[b"content-type"].startswith(b"text/event-stream")
    assert response.body == openai_stream("gpt-4o")
    assert providers["secure"].requests[-1].alpn == "http/1.1"
