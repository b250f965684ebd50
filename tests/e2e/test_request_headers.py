"""Which client headers reach the provider, byte for byte as the fake upstream received them."""

from __future__ import annotations

from mini_llm.upstream.request_headers import WARNED_NAMES_LIMIT
from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.raw_http import send

BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'


def _forwarded(
    gateway: GatewayProcess, upstream: FakeUpstream, headers: list[tuple[bytes, bytes]]
) -> dict[bytes, bytes]:
    """Send BODY with `headers` to an OpenAI route; the headers the provider got, names lowercased."""
    answer = send(
        gateway.url, b"POST", b"/v1/chat/completions", [(b"Content-Type", b"application/json"), *headers], BODY
    )
    assert answer.status == 200, answer.body
    seen = upstream.last()
    assert seen.body == BODY
    return {name.lower(): value for name, value in seen.raw_headers}


def test_names_with_underscores_stay_behind(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    # nginx drops these by default; a server mapping `_` to `-` would read X_Api_Key as X-Api-Key.
    got = _forwarded(
        gateway,
        upstream,
        [(b"X_Api_Key", b"client-secret"), (b"X_Forwarded_For", b"10.0.0.1"), (b"My_Header", b"x"), (b"X-Kept", b"1")],
    )
    assert not [name for name in got if b"_" in name]
    assert b"client-secret" not in b"".join(got.values())
    assert got[b"x-kept"] == b"1"


def test_coding_via_and_method_overrides_stay_behind(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    # The body was read as plain JSON, so a Content-Encoding label would make the provider decode it again.
    got = _forwarded(
        gateway,
        upstream,
        [
            (b"Content-Encoding", b"gzip"),
            (b"Via", b"1.1 hidden-proxy"),
            (b"X-HTTP-Method-Override", b"DELETE"),
            (b"X-HTTP-Method", b"PUT"),
            (b"X-Method-Override", b"PATCH"),
            (b"X-Kept", b"1"),
        ],
    )
    for name in (b"content-encoding", b"via", b"x-http-method-override", b"x-http-method", b"x-method-override"):
        assert name not in got
    assert got[b"x-kept"] == b"1"


def test_utf8_values_go_on_byte_for_byte(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    values = [b"caf\xc3\xa9", "東京 😀".encode(), b"tab\tinside", b"plain"]
    got = _forwarded(gateway, upstream, [(b"X-Value-%d" % index, value) for index, value in enumerate(values)])
    assert [got[b"x-value-%d" % index] for index in range(len(values))] == values


def test_values_that_are_not_utf8_are_dropped_and_logged(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    # aiohttp writes header strings as UTF-8: these bytes cannot go out as sent, so they do not go out.
    got = _forwarded(
        gateway, upstream, [(b"X-Latin1", b"caf\xe9"), (b"X-Broken", b"\xff\xfe"), (b"X-Kept", b"caf\xc3\xa9")]
    )
    assert b"x-latin1" not in got and b"x-broken" not in got
    assert b"\xef\xbf\xbd" not in b"".join(got.values())  # nothing was turned into U+FFFD either
    assert got[b"x-kept"] == b"caf\xc3\xa9"
    assert gateway.wait_for_log("request header 'x-latin1' not forwarded: it is not valid UTF-8")
    assert gateway.wait_for_log("request header 'x-broken' not forwarded: it is not valid UTF-8")


def test_what_a_browser_says_about_the_page_stays_behind(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    # The playground's calls carry these; Anthropic's API treats a request with an Origin as a
    # browser's direct access and refuses it without an opt-in header.
    got = _forwarded(
        gateway,
        upstream,
        [
            (b"Origin", gateway.url.encode()),
            (b"Referer", gateway.url.encode() + b"/playground"),
            (b"Sec-Fetch-Mode", b"cors"),
            (b"Sec-Fetch-Site", b"same-origin"),
            (b"Sec-CH-UA-Platform", b'"Linux"'),
            (b"X-Kept", b"1"),
        ],
    )
    assert [name for name in got if name in (b"origin", b"referer") or name.startswith(b"sec-")] == []
    assert got[b"x-kept"] == b"1"


def test_the_warning_for_a_value_that_is_not_utf8_is_logged_once_per_name(upstream: FakeUpstream) -> None:
    """The client picks how often it sends a header and what it is called: neither may fill the log."""
    warning = "not forwarded: it is not valid UTF-8"
    gateway = GatewayProcess(gateway_env(upstream)).start()
    try:
        for _ in range(3):
            _forwarded(gateway, upstream, [(b"X-Repeated", b"caf\xe9")])
        _forwarded(gateway, upstream, [(b"X-Marker", b"\xff")])
        assert gateway.wait_for_log(f"request header 'x-marker' {warning}")  # so every earlier line is in
        assert gateway.log.count(f"request header 'x-repeated' {warning}") == 1
        _forwarded(gateway, upstream, [(b"X-Name-%02d" % index, b"\xff") for index in range(WARNED_NAMES_LIMIT)])
        assert gateway.wait_for_log("no further names are logged")
        assert gateway.log.count(warning) == WARNED_NAMES_LIMIT  # x-repeated, x-marker and the first 62 names
        assert f"request header 'x-name-{WARNED_NAMES_LIMIT - 3}' {warning}" in gateway.log
        assert f"request header 'x-name-{WARNED_NAMES_LIMIT - 2}' {warning}" not in gateway.log
    finally:
        gateway.stop()
