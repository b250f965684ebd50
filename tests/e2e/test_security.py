"""Gateway API keys, the refusal to serve open beyond loopback, and the Host and Origin checks, over real TCP."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import anthropic
import openai
import pytest

from mini_llm.config import without_gateway_settings
from tests.e2e.conftest import Closing, gateway_env
from tests.e2e.fake_upstream import ANTHROPIC_KEY, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, run_cli
from tests.e2e.http_client import request
from tests.e2e.raw_http import Answer

GATEWAY_KEY = "gw-test-plaintext-key-0001"
HASHED_KEY = "gw-test-hashed-key-0002"  # configured only as its sha256: digest
WRONG_KEY = "gw-test-wrong-key-9999"
ALLOWED_ORIGIN = "http://app.example.test:5173"
CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
MESSAGE = b'{"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def keyed(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """A gateway that requires one of two keys, one given in plaintext and one as its digest."""
    keys = f"{GATEWAY_KEY}, sha256:{_sha256(HASHED_KEY)}"
    env = gateway_env(upstream, MINI_LLM_API_KEYS=keys, MINI_LLM_ALLOWED_ORIGINS=ALLOWED_ORIGIN)
    process = GatewayProcess(env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def open_local(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """No keys on a loopback bind (the default), with one extra host name and one allowed origin."""
    env = gateway_env(upstream, MINI_LLM_ALLOWED_HOSTS="gateway.internal", MINI_LLM_ALLOWED_ORIGINS=ALLOWED_ORIGIN)
    process = GatewayProcess(env).start()
    yield process
    process.stop()


def _post(gateway: GatewayProcess, path: str, body: bytes, **headers: str) -> Answer:
    return request(gateway.url, "POST", path, body, {"content-type": "application/json", **headers})


def _host_port(gateway: GatewayProcess) -> str:
    return gateway.url.removeprefix("http://")


def _port(gateway: GatewayProcess) -> str:
    return gateway.url.rsplit(":", 1)[1]


def _granian_command(host: str, port: int) -> list[str]:
    """The app started by granian itself, as a deployment may, bypassing `mini-llm serve` and its checks."""
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        host,
        "--port",
        str(port),
        "mini_llm.gateway.app:app",
    ]


@contextlib.contextmanager
def _granian(env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """granian serving the app on 0.0.0.0: its URL, and its output once the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {**without_gateway_settings(os.environ), **env}
    proc = subprocess.Popen(
        _granian_command("0.0.0.0", port), env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=1):
                break
            time.sleep(0.1)
        yield url, output
    finally:
        proc.terminate()
        output += proc.communicate(timeout=20)[0].splitlines()


class TestGatewayKeys:
    def test_openai_sdk_with_the_key_and_the_key_stays_behind(
        self, keyed: GatewayProcess, upstream: FakeUpstream, closing: Closing
    ) -> None:
        client = closing(openai.OpenAI(base_url=keyed.url + "/v1", api_key=GATEWAY_KEY, max_retries=0))
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "fake openai answer"
        seen = upstream.last()
        assert seen.headers["Authorization"] in {f"Bearer {key}" for key in OPENAI_KEYS}
        assert GATEWAY_KEY not in json.dumps(seen.headers)
        assert GATEWAY_KEY.encode() not in seen.body

    def test_anthropic_sdk_with_the_key_and_the_key_stays_behind(
        self, keyed: GatewayProcess, upstream: FakeUpstream, closing: Closing
    ) -> None:
        client = closing(anthropic.Anthropic(base_url=keyed.url, api_key=GATEWAY_KEY, max_retries=0))
        answer = client.messages.create(
            model="claude-sonnet-4", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.content[0].type == "text"
        assert answer.content[0].text == "fake anthropic answer"
        seen = upstream.last()
        assert seen.headers["x-api-key"] == ANTHROPIC_KEY
        assert "Authorization" not in seen.headers
        assert GATEWAY_KEY not in json.dumps(seen.headers)

    def test_a_key_configured_by_its_digest(self, keyed: GatewayProcess, closing: Closing) -> None:
        client = closing(openai.OpenAI(base_url=keyed.url + "/v1", api_key=HASHED_KEY, max_retries=0))
        assert [model.id for model in client.models.list()] == ["fast", "smart", "echo", "llama3:8b", "mock"]
        stream = client.chat.completions.create(
            model="mock", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=3
        )
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    def test_openai_sdk_wrong_key_is_invalid_api_key(self, keyed: GatewayProcess, closing: Closing) -> None:
        client = closing(openai.OpenAI(base_url=keyed.url + "/v1", api_key=WRONG_KEY, max_retries=0))
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"
        assert info.value.type == "invalid_request_error"

    def test_anthropic_sdk_wrong_key_is_authentication_error(self, keyed: GatewayProcess, closing: Closing) -> None:
        client = closing(anthropic.Anthropic(base_url=keyed.url, api_key=WRONG_KEY, max_retries=0))
        with pytest.raises(anthropic.AuthenticationError) as info:
            client.messages.create(model="claude-sonnet-4", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 401
        body = info.value.body
        assert isinstance(body, dict)
        assert body["type"] == "error"
        assert body["error"]["type"] == "authentication_error"
        assert "x-api-key" in body["error"]["message"]

    @pytest.mark.parametrize(
        ("path", "body", "headers"),
        [
            ("/v1/chat/completions", CHAT, {}),
            ("/v1/chat/completions", CHAT, {"authorization": f"Basic {GATEWAY_KEY}"}),
            ("/v1/chat/completions", CHAT, {"authorization": f"Bearer {GATEWAY_KEY}x"}),
            ("/v1/embeddings", b'{"model": "m", "input": "x"}', {"x-api-key": ""}),
            ("/v1/messages", MESSAGE, {"x-api-key": WRONG_KEY}),
            ("/v1/messages/count_tokens", MESSAGE, {"authorization": f"Bearer {HASHED_KEY[:-1]}"}),
            ("/v1/no-such-endpoint", b"{}", {}),
        ],
    )
    def test_every_v1_route_needs_a_key_and_nothing_reaches_the_provider(
        self, keyed: GatewayProcess, upstream: FakeUpstream, path: str, body: bytes, headers: dict[str, str]
    ) -> None:
        before = len(upstream.seen)
        response = _post(keyed, path, body, **headers)
        assert response.status == 401
        if path.startswith("/v1/messages"):
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "authentication_error"
        else:
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
        assert len(upstream.seen) == before

    def test_get_routes_need_a_key_too(self, keyed: GatewayProcess) -> None:
        assert request(keyed.url, "GET", "/v1/models").status == 401
        assert request(keyed.url, "GET", "/v1/models/mock").status == 401
        listed = request(keyed.url, "GET", "/v1/models", headers={"x-api-key": GATEWAY_KEY})
        assert listed.status == 200

    @pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
    def test_either_header_and_any_case_of_bearer(self, keyed: GatewayProcess, header: str) -> None:
        value = f"bEaReR {GATEWAY_KEY}" if header == "Authorization" else HASHED_KEY
        response = _post(keyed, "/v1/chat/completions", b'{"model": "mock", "messages": []}', **{header: value})
        assert response.status == 200, response.body

    def test_a_valid_key_in_either_header_is_enough(self, keyed: GatewayProcess) -> None:
        """The Anthropic SDK sends an ANTHROPIC_AUTH_TOKEN from the shell as Bearer beside its x-api-key."""
        headers = {"authorization": "Bearer some-oauth-token", "x-api-key": GATEWAY_KEY}
        assert (
            _post(keyed, "/v1/messages", b'{"model": "mock", "max_tokens": 1, "messages": []}', **headers).status == 200
        )

    @pytest.mark.parametrize("path", ["/health", "/ready", "/playground"])
    def test_probes_and_the_playground_page_need_no_key(self, keyed: GatewayProcess, path: str) -> None:
        assert request(keyed.url, "GET", path).status == 200

    def test_no_presented_key_reaches_the_log(self, keyed: GatewayProcess) -> None:
        _post(keyed, "/v1/chat/completions", CHAT, authorization=f"Bearer {WRONG_KEY}")
        _post(keyed, "/v1/chat/completions", CHAT, authorization=f"Bearer {GATEWAY_KEY}")
        assert keyed.wait_for_log("POST '/v1/chat/completions' 401")
        assert keyed.wait_for_log("POST '/v1/chat/completions' 200")
        for secret in (WRONG_KEY, GATEWAY_KEY, HASHED_KEY, _sha256(GATEWAY_KEY)):
            assert secret not in keyed.log


class TestOpenBeyondLoopback:
    """Beyond loopback a gateway without keys would spend its provider keys for the whole network."""

    @pytest.mark.parametrize(
        ("args", "env"),
        [(("--host", "0.0.0.0"), {}), ((), {"MINI_LLM_HOST": "0.0.0.0"}), (("--host", "::"), {})],
    )
    def test_serve_refuses_with_one_line_saying_what_to_set(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        result = run_cli("serve", "--port", "0", *args, env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("mini-llm: configuration error: MINI_LLM_API_KEYS: required to serve on ")
        assert "MINI_LLM_ALLOW_UNAUTHENTICATED=1" in lines[0]
        assert "running on" not in result.stdout

    def test_the_explicit_opt_out_serves_and_warns(self) -> None:
        process = GatewayProcess({"MINI_LLM_ALLOW_UNAUTHENTICATED": "1"}, ("--host", "0.0.0.0")).start()
        try:
            assert "WARNING" in process.log
            assert "serving on 0.0.0.0 without gateway API keys (MINI_LLM_ALLOW_UNAUTHENTICATED=1)" in process.log
            # Beyond loopback without MINI_LLM_ALLOWED_HOSTS, any Host is served (a load balancer's name, say).
            health = request(process.url, "GET", "/health", headers={"Host": "gateway.example.com"})
            assert health.status == 200
        finally:
            process.stop()

    def test_keys_make_a_wide_bind_fine_and_allowed_hosts_narrow_it(self) -> None:
        env = {"MINI_LLM_API_KEYS": GATEWAY_KEY, "MINI_LLM_ALLOWED_HOSTS": "gateway.internal"}
        process = GatewayProcess(env, ("--host", "0.0.0.0")).start()
        try:
            assert "without gateway API keys" not in process.log
            auth = {"x-api-key": GATEWAY_KEY}
            assert (
                request(process.url, "GET", "/v1/models", headers={"Host": "gateway.internal:443", **auth}).status
                == 200
            )
            assert request(process.url, "GET", "/v1/models", headers={"Host": "rebound.example", **auth}).status == 421
            assert request(process.url, "GET", "/v1/models", headers={"Host": "localhost", **auth}).status == 200
        finally:
            process.stop()

    def test_config_check_refuses_and_warns_as_serve_would(self) -> None:
        refused = run_cli("config", "check", env={"MINI_LLM_HOST": "0.0.0.0"})
        assert refused.returncode == 2
        assert refused.stderr.startswith("mini-llm: configuration error: MINI_LLM_API_KEYS: required to serve on")
        allowed = run_cli("config", "check", env={"MINI_LLM_HOST": "0.0.0.0", "MINI_LLM_ALLOW_UNAUTHENTICATED": "1"})
        assert allowed.returncode == 0, allowed.stderr
        assert "\nwarning: serving on 0.0.0.0 without gateway API keys" in allowed.stdout

    def test_config_check_counts_gateway_keys_and_never_shows_one(self) -> None:
        keys = f"{GATEWAY_KEY},sha256:{_sha256(HASHED_KEY)}"
        result = run_cli("config", "check", env={"MINI_LLM_API_KEYS": keys, "MINI_LLM_ALLOWED_ORIGINS": ALLOWED_ORIGIN})
        assert result.returncode == 0, result.stderr
        assert "gateway API keys: 2" in result.stdout.splitlines()[0]
        lines = [line.split() for line in result.stdout.splitlines()]
        assert ["api_keys", "2", "keys", "MINI_LLM_API_KEYS"] in lines
        assert ["allowed_origins", ALLOWED_ORIGIN, "MINI_LLM_ALLOWED_ORIGINS"] in lines
        assert ["allow_unauthenticated", "false", "MINI_LLM_ALLOW_UNAUTHENTICATED"] in lines
        for secret in (GATEWAY_KEY, _sha256(HASHED_KEY), GATEWAY_KEY[:3] + "..."):
            assert secret not in result.stdout

    def test_the_opt_out_still_refuses_a_rebound_name(self, upstream: FakeUpstream) -> None:
        """A page whose name was rebound to the gateway's address has no key to present: Host is its only tell."""
        env = gateway_env(upstream, MINI_LLM_ALLOW_UNAUTHENTICATED="1", MINI_LLM_ALLOWED_HOSTS="gateway.lan")
        process = GatewayProcess(env, ("--host", "0.0.0.0")).start()
        try:
            port = _port(process)
            before = len(upstream.seen)
            for name in ("evil.example", "localhost:evil"):
                host = f"{name}:{port}" if ":" not in name else name
                rebound = _post(process, "/v1/chat/completions", CHAT, Host=host, origin=f"http://{host}")
                assert rebound.status == 421, rebound.body
                assert request(process.url, "GET", "/v1/models", headers={"Host": host}).status == 421
            assert len(upstream.seen) == before
            # The names it is reached by: loopback, the listed one, the bind address; each its own origin.
            for host in (f"gateway.lan:{port}", f"127.0.0.1:{port}", f"0.0.0.0:{port}"):
                own = _post(process, "/v1/chat/completions", CHAT, Host=host, origin=f"http://{host}")
                assert own.status == 200, (host, own.body)
                assert b"access-control-allow-origin" not in own.headers
        finally:
            process.stop()

    def test_loopback_binds_need_no_keys(self) -> None:
        for host in ("127.0.0.1", "localhost"):
            result = run_cli("config", "check", env={"MINI_LLM_HOST": host})
            assert result.returncode == 0, result.stderr


class TestStartedByAnotherServer:
    """`granian mini_llm.gateway.app:app` skips `mini-llm serve`: the app checks the address it really serves on."""

    def test_a_wide_bind_without_keys_fails_startup_with_the_line_serve_prints(self) -> None:
        result = subprocess.run(
            _granian_command("0.0.0.0", 0),
            env=without_gateway_settings(os.environ),  # MINI_LLM_HOST unset: only the socket says 0.0.0.0
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "MINI_LLM_API_KEYS" in line]
        assert len(lines) == 1, result.stdout + result.stderr
        assert (
            "mini-llm: configuration error: MINI_LLM_API_KEYS: required to serve on 0.0.0.0, beyond loopback"
            in (lines[0])
        )
        assert "MINI_LLM_ALLOW_UNAUTHENTICATED=1" in lines[0]

    def test_the_opt_out_warns_and_the_host_check_knows_the_bind(self, upstream: FakeUpstream) -> None:
        with _granian(gateway_env(upstream, MINI_LLM_ALLOW_UNAUTHENTICATED="1")) as (url, output):
            port = url.rsplit(":", 1)[1]
            assert request(url, "GET", "/v1/models", headers={"Host": f"127.0.0.1:{port}"}).status == 200
            assert request(url, "GET", "/v1/models", headers={"Host": f"evil.example:{port}"}).status == 421
        assert any("serving on 0.0.0.0 without gateway API keys" in line for line in output), output

    def test_keys_make_the_wide_bind_fine(self, upstream: FakeUpstream) -> None:
        with _granian(gateway_env(upstream, MINI_LLM_API_KEYS=GATEWAY_KEY)) as (url, output):
            assert request(url, "GET", "/v1/models", headers={"x-api-key": GATEWAY_KEY}).status == 200
        assert not any("MINI_LLM_API_KEYS" in line or "without gateway API keys" in line for line in output), output


class TestHost:
    """A page whose name was rebound to 127.0.0.1 sends its own name as Host (DNS rebinding)."""

    @pytest.mark.parametrize(
        ("path", "body", "shape"),
        [
            ("/v1/chat/completions", CHAT, "openai"),
            ("/v1/messages", MESSAGE, "anthropic"),
            ("/playground", None, "openai"),
        ],
    )
    def test_a_foreign_host_is_misdirected(
        self, open_local: GatewayProcess, upstream: FakeUpstream, path: str, body: bytes | None, shape: str
    ) -> None:
        before = len(upstream.seen)
        method = "GET" if body is None else "POST"
        headers = {"Host": f"rebound.attacker.example:{_port(open_local)}", "content-type": "application/json"}
        response = request(open_local.url, method, path, body, headers)
        assert response.status == 421
        if shape == "anthropic":
            assert response.json()["error"]["type"] == "invalid_request_error"
        else:
            assert response.json()["error"]["code"] == "host_not_allowed"
        assert "MINI_LLM_ALLOWED_HOSTS" in response.body.decode()
        assert len(upstream.seen) == before

    @pytest.mark.parametrize(
        "host",
        [
            "localhost",
            "LOCALHOST:{port}",
            "localhost.:{port}",
            "api.localhost:{port}",
            "127.0.0.1",
            "127.9.9.9:{port}",
            "[::1]:{port}",
            "gateway.internal:8443",
        ],
    )
    def test_loopback_names_and_allowed_hosts_are_served(self, open_local: GatewayProcess, host: str) -> None:
        response = request(open_local.url, "GET", "/v1/models", headers={"Host": host.format(port=_port(open_local))})
        assert response.status == 200, response.body

    @pytest.mark.parametrize(
        "host",
        [
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.1.nip.io",
            "localhost.example.com",
            "[::2]",
            "localhost:evil",
            "127.0.0.1:3333@evil.example",
            "[::1]evil.example",
            "gateway.internal:8443@evil.example",
        ],
    )
    def test_other_names_and_addresses_are_refused(self, open_local: GatewayProcess, host: str) -> None:
        assert request(open_local.url, "GET", "/v1/models", headers={"Host": host}).status == 421

    @pytest.mark.parametrize("path", ["/health", "/ready"])
    def test_probes_answer_any_host(self, open_local: GatewayProcess, path: str) -> None:
        assert request(open_local.url, "GET", path, headers={"Host": "10.1.2.3:3333"}).status == 200


class TestOrigin:
    @pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", ALLOWED_ORIGIN + "0"])
    @pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGE)])
    def test_a_foreign_origin_is_refused_before_the_body_is_read(
        self, open_local: GatewayProcess, upstream: FakeUpstream, origin: str, path: str, body: bytes
    ) -> None:
        before = len(upstream.seen)
        response = request(open_local.url, "POST", path, body, {"content-type": "text/plain", "origin": origin})
        assert response.status == 403
        if path == "/v1/messages":
            assert response.json()["type"] == "error"
            assert response.json()["error"]["type"] == "permission_error"
        else:
            error = response.json()["error"]
            assert (error["type"], error["code"]) == ("permission_error", "origin_not_allowed")
        assert "MINI_LLM_ALLOWED_ORIGINS" in response.body.decode()
        assert b"access-control-allow-origin" not in response.headers
        assert len(upstream.seen) == before

    def test_the_gateways_own_origin_passes_without_cors_headers(self, open_local: GatewayProcess) -> None:
        response = _post(open_local, "/v1/chat/completions", CHAT, origin=open_local.url)
        assert response.status == 200
        assert b"access-control-allow-origin" not in response.headers

    def test_an_allowed_origin_gets_cors_headers_on_answers_and_errors(self, open_local: GatewayProcess) -> None:
        answer = _post(open_local, "/v1/chat/completions", CHAT, origin=ALLOWED_ORIGIN)
        assert answer.status == 200
        assert answer.json()["choices"][0]["message"]["content"] == "fake openai answer"
        missing = request(open_local.url, "GET", "/v1/models/nope", headers={"origin": ALLOWED_ORIGIN})
        streamed = _post(
            open_local,
            "/v1/chat/completions",
            b'{"model": "mock", "stream": true, "messages": []}',
            origin=ALLOWED_ORIGIN,
        )
        assert (missing.status, streamed.status) == (404, 200)
        for response in (answer, missing, streamed):
            assert response.headers[b"access-control-allow-origin"] == ALLOWED_ORIGIN.encode()
            assert response.headers[b"vary"] == b"Origin"
            assert response.headers[b"access-control-expose-headers"] == b"*"
        assert streamed.body.endswith(b"data: [DONE]\n\n")

    def test_preflight_from_an_allowed_origin_needs_no_key(self, keyed: GatewayProcess) -> None:
        """Browsers never send credentials on a preflight (Fetch standard 4.8)."""
        asked = "authorization, content-type, x-stainless-os, X-Stainless-Retry-Count, openai-beta, x-other"
        response = request(
            keyed.url,
            "OPTIONS",
            "/v1/chat/completions",
            headers={
                "origin": ALLOWED_ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": asked,
            },
        )
        assert response.status == 204
        assert response.body == b""
        assert response.headers[b"access-control-allow-origin"] == ALLOWED_ORIGIN.encode()
        assert response.headers[b"access-control-allow-methods"] == b"POST"  # the path's methods
        allowed = response.headers[b"access-control-allow-headers"].decode().split(", ")
        for name in ("authorization", "x-api-key", "content-type", "anthropic-version", "anthropic-beta"):
            assert name in allowed
        for name in ("x-stainless-os", "x-stainless-retry-count", "openai-beta"):
            assert name in allowed
        assert "x-other" not in allowed
        assert int(response.headers[b"access-control-max-age"]) > 0
        assert response.headers[b"vary"] == b"Access-Control-Request-Method, Access-Control-Request-Headers, Origin"

    def test_preflight_from_another_origin_is_refused(self, open_local: GatewayProcess) -> None:
        headers = {"origin": "http://evil.example", "access-control-request-method": "POST"}
        response = request(open_local.url, "OPTIONS", "/v1/messages", headers=headers)
        assert response.status == 403
        assert response.json()["error"]["type"] == "permission_error"
        assert b"access-control-allow-origin" not in response.headers

    def test_preflight_lists_the_methods_of_its_path(self, open_local: GatewayProcess) -> None:
        headers = {"origin": ALLOWED_ORIGIN, "access-control-request-method": "GET"}
        response = request(open_local.url, "OPTIONS", "/v1/models/gpt-4o", headers=headers)
        assert response.status == 204
        assert response.headers[b"access-control-allow-methods"] == b"GET"

    @pytest.mark.parametrize(
        ("path", "method", "status"),
        [
            ("/nonexistent", "POST", 404),
            ("/v1/chat/completion", "POST", 404),
            ("/v1/chat/completions", "DELETE", 405),
            ("/v1/chat/completions", "GET", 405),
            ("/health", "POST", 405),
        ],
    )
    def test_preflight_for_an_unknown_path_or_method_gets_the_404_or_405(
        self, keyed: GatewayProcess, path: str, method: str, status: int
    ) -> None:
        headers = {"origin": ALLOWED_ORIGIN, "access-control-request-method": method}
        response = request(keyed.url, "OPTIONS", path, headers=headers)
        assert response.status == status  # not the 401 of a keyless request either: a preflight has no key
        assert b"access-control-allow-methods" not in response.headers
        if status == 405:
            assert response.headers[b"allow"] in (b"POST", b"GET, HEAD")

    def test_options_that_is_not_a_preflight_is_still_a_405(self, open_local: GatewayProcess) -> None:
        assert request(open_local.url, "OPTIONS", "/v1/chat/completions").status == 405


class TestVaryOrigin:
    """Whether an answer is a 403 depends on Origin, so every answer says so to caches (RFC 9110 12.5.5)."""

    def test_answers_to_requests_without_origin_vary_on_it(
        self, open_local: GatewayProcess, keyed: GatewayProcess
    ) -> None:
        streamed = b'{"model": "mock", "stream": true, "messages": []}'
        responses = [
            _post(open_local, "/v1/chat/completions", CHAT),
            _post(open_local, "/v1/chat/completions", streamed),
            _post(open_local, "/v1/messages", MESSAGE),
            request(open_local.url, "GET", "/v1/models"),
            request(open_local.url, "GET", "/health"),
            request(open_local.url, "GET", "/playground"),
            request(open_local.url, "GET", "/nonexistent"),
            request(open_local.url, "GET", "/v1/models", headers={"Host": "rebound.example"}),
            request(keyed.url, "GET", "/v1/models"),
        ]
        assert [response.status for response in responses] == [200, 200, 200, 200, 200, 200, 404, 421, 401]
        for response in responses:
            assert response.headers[b"vary"] == b"Origin"

    def test_a_refused_origin_and_the_own_origin_vary_on_it(self, open_local: GatewayProcess) -> None:
        refused = _post(open_local, "/v1/chat/completions", CHAT, origin="http://evil.example")
        own = _post(open_local, "/v1/chat/completions", CHAT, origin=open_local.url)
        assert (refused.status, own.status) == (403, 200)
        assert refused.headers[b"vary"] == own.headers[b"vary"] == b"Origin"
