"""Host names, the Host and Origin checks and the CORS headers, as pure functions of the request."""

from __future__ import annotations

import asyncio

import pytest

from mini_llm.asgi import Message
from mini_llm.errors import GatewayError
from mini_llm.gateway.browser_guard import (
    BrowserGuard,
    cors_headers,
    is_preflight,
    preflight_headers,
    with_headers,
)
from mini_llm.hosts import host_name, is_loopback

SCOPE = {"scheme": "http", "path": "/v1/chat/completions"}
ADDED = [(b"access-control-allow-origin", b"http://a.test")]


@pytest.mark.parametrize(
    ("authority", "name"),
    [
        ("Example.COM:8080", "example.com"),
        ("[::1]:3333", "::1"),
        ("[::1]", "::1"),
        ("localhost.", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost:", "localhost"),  # RFC 3986 3.2.3: the port may be empty
        ("mini_llm:3333", "mini_llm"),  # a Docker Compose service name
        ("[::1]:", "::1"),
    ],
)
def test_host_name(authority: str, name: str) -> None:
    assert host_name(authority) == name


@pytest.mark.parametrize(
    "authority",
    [
        "localhost:evil",
        "127.0.0.1:3333@evil.example",
        "user@localhost",
        "[::1]evil.example",
        "[::1]:x",
        "[::1",
        "[localhost]",
        "localhost:1:2",
        "localhost/x",
        "local host",
        "-x.test",
        "",
        "::1:evil",
    ],
)
def test_anything_but_host_and_digits_port_is_no_name(authority: str) -> None:
    assert host_name(authority) is None
    assert not is_loopback(host_name(authority))


@pytest.mark.parametrize("name", ["localhost", "a.b.localhost", "127.0.0.1", "127.255.0.9", "::1"])
def test_loopback_names(name: str) -> None:
    assert is_loopback(name)


@pytest.mark.parametrize("name", ["0.0.0.0", "::", "10.0.0.1", "localhost.example", "mylocalhost"])
def test_other_names(name: str) -> None:
    assert not is_loopback(name)


def refused(guard: BrowserGuard, headers: dict[bytes, bytes], path: str = "/v1/models") -> int:
    with pytest.raises(GatewayError) as info:
        guard.admit({**SCOPE, "path": path}, headers)
    return info.value.status


class TestHost:
    def test_loopback_bind_serves_loopback_names_and_the_listed_ones(self) -> None:
        guard = BrowserGuard("127.0.0.1", ["gw.internal"], [], keys_required=False)
        for host in (b"localhost:1", b"127.0.0.1:3333", b"[::1]:3", b"x.localhost", b"GW.internal:9"):
            assert guard.admit(SCOPE, {b"host": host}) is None
        assert refused(guard, {b"host": b"rebound.example:3333"}) == 421
        assert refused(guard, {b"host": b"rebound.example:3333"}, "/playground") == 421

    def test_verdicts_stay_right_past_the_remembered_bound(self) -> None:
        guard = BrowserGuard("127.0.0.1", [], [], keys_required=False)
        for index in range(1000):
            refused(guard, {b"host": f"h{index}.example".encode()})
        assert refused(guard, {b"host": b"h1.example"}) == 421
        assert guard.admit(SCOPE, {b"host": b"localhost:1"}) is None

    @pytest.mark.parametrize("path", ["/health", "/ready"])
    def test_probes_answer_any_host(self, path: str) -> None:
        assert (
            BrowserGuard("127.0.0.1", [], [], keys_required=False).admit(
                {**SCOPE, "path": path}, {b"host": b"10.0.0.1"}
            )
            is None
        )

    @pytest.mark.parametrize("host", [b"localhost:evil", b"127.0.0.1:3333@evil.example", b"[::1]evil.example"])
    def test_a_loopback_look_alike_is_misdirected(self, host: bytes) -> None:
        assert refused(BrowserGuard("127.0.0.1", [], [], keys_required=False), {b"host": host}) == 421

    def test_a_wide_bind_with_keys_serves_any_host_unless_hosts_are_listed(self) -> None:
        assert BrowserGuard("0.0.0.0", [], [], keys_required=True).admit(SCOPE, {b"host": b"anything.example"}) is None
        listed = BrowserGuard("0.0.0.0", ["gw.example"], [], keys_required=True)
        assert listed.admit(SCOPE, {b"host": b"gw.example:443"}) is None
        assert listed.admit(SCOPE, {b"host": b"127.0.0.1:80"}) is None
        assert refused(listed, {b"host": b"other.example"}) == 421

    @pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.0.0.5"])
    def test_a_wide_bind_without_keys_refuses_a_rebound_name(self, bind: str) -> None:
        # MINI_LLM_ALLOW_UNAUTHENTICATED=1: a page on evil.example, its name rebound to the gateway's address.
        guard = BrowserGuard(bind, [], [], keys_required=False)
        rebound = {b"host": b"evil.example:3333", b"origin": b"http://evil.example:3333"}
        assert refused(guard, rebound) == 421
        assert refused(guard, {b"host": b"evil.example:3333"}) == 421
        assert guard.admit(SCOPE, {b"host": b"localhost:3333"}) is None

    def test_a_wide_bind_without_keys_serves_its_own_address_and_the_listed_names(self) -> None:
        guard = BrowserGuard("10.0.0.5", ["gw.lan"], [], keys_required=False)
        for host in (b"10.0.0.5:3333", b"gw.lan", b"[::1]:3333"):
            assert guard.admit(SCOPE, {b"host": host}) is None
        own = {b"host": b"10.0.0.5:3333", b"origin": b"http://10.0.0.5:3333"}
        assert guard.admit(SCOPE, own) is None  # the playground, opened at the bind address

    @pytest.mark.parametrize("path", ["/health", "/ready"])
    def test_a_probe_on_a_rebound_name_is_not_the_gateways_own_origin(self, path: str) -> None:
        guard = BrowserGuard("0.0.0.0", [], [], keys_required=False)
        rebound = {b"host": b"evil.example", b"origin": b"http://evil.example"}
        assert refused(guard, rebound, path) == 403
        assert guard.admit({**SCOPE, "path": path}, {b"host": b"evil.example"}) is None  # the probe itself


class TestOrigin:
    guard = BrowserGuard("127.0.0.1", [], ["http://app.test:5173"], keys_required=False)

    def test_no_origin_and_the_own_origin_pass_without_cors(self) -> None:
        assert self.guard.admit(SCOPE, {b"host": b"localhost:3333"}) is None
        own = {b"host": b"LocalHost:3333", b"origin": b"http://localhost:3333"}
        assert self.guard.admit(SCOPE, own) is None

    def test_a_listed_origin_is_returned_to_be_echoed(self) -> None:
        headers = {b"host": b"localhost:3333", b"origin": b"http://app.test:5173"}
        assert self.guard.admit(SCOPE, headers) == b"http://app.test:5173"

    @pytest.mark.parametrize(
        "origin",
        [
            b"null",
            b"https://localhost:3333",
            b"http://localhost:3334",
            b"http://app.test:5173/",
            b"http://APP.test:5173",
        ],
    )
    def test_anything_else_is_forbidden(self, origin: bytes) -> None:
        assert refused(self.guard, {b"host": b"localhost:3333", b"origin": origin}) == 403

    def test_an_origin_without_host_is_never_its_own(self) -> None:
        assert refused(self.guard, {b"origin": b"http://localhost:3333"}) == 403


def test_preflight_detection() -> None:
    asking = {b"origin": b"http://a.test", b"access-control-request-method": b"POST"}
    assert is_preflight("OPTIONS", asking)
    assert not is_preflight("POST", asking)
    assert not is_preflight("OPTIONS", {b"origin": b"http://a.test"})


def test_preflight_headers_list_the_sdk_headers_and_echo_their_families() -> None:
    asked = {b"access-control-request-headers": b"X-Stainless-Lang, anthropic-dangerous-direct-browser-access, x-evil"}
    headers = dict(preflight_headers(b"http://a.test", b"POST", asked))
    assert headers[b"access-control-allow-origin"] == b"http://a.test"
    assert headers[b"access-control-allow-methods"] == b"POST"
    allowed = headers[b"access-control-allow-headers"].split(b", ")
    assert allowed[:3] == [b"authorization", b"x-api-key", b"content-type"]
    assert b"x-stainless-lang" in allowed
    assert b"anthropic-dangerous-direct-browser-access" in allowed
    assert b"x-evil" not in allowed


def test_preflight_headers_name_each_header_once_in_the_order_asked() -> None:
    asked = {b"access-control-request-headers": b"openai-b, X-Stainless-A, openai-b, anthropic-version, x-stainless-a"}
    allowed = dict(preflight_headers(b"http://a.test", b"POST", asked))[b"access-control-allow-headers"]
    fixed = b"authorization, x-api-key, content-type, anthropic-version, anthropic-beta, idempotency-key"
    assert allowed == fixed + b", openai-b, x-stainless-a"


def test_with_headers_adds_them_to_the_start_only() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def respond() -> None:
        wrapped = with_headers(send, cors_headers(b"http://a.test"))
        await wrapped({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]})
        await wrapped({"type": "http.response.body", "body": b"{}"})

    asyncio.run(respond())
    assert sent[0]["headers"] == [
        (b"content-type", b"x"),
        (b"access-control-allow-origin", b"http://a.test"),
        (b"access-control-expose-headers", b"*"),
    ]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


def test_with_headers_leaves_a_shared_header_list_alone() -> None:
    shared = [(b"content-type", b"application/json")]
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def respond() -> None:
        for _ in range(2):
            await with_headers(send, ADDED)({"type": "http.response.start", "status": 200, "headers": shared})

    asyncio.run(respond())
    assert shared == [(b"content-type", b"application/json")]
    assert sent[1]["headers"] == [(b"content-type", b"application/json"), *ADDED]
