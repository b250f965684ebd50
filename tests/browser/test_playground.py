"""/playground in headless Chromium (Debian's `chromium`, driven by Playwright) against real gateways."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from mini_llm.upstream.mock_provider import WORDS
from tests.e2e.fake_upstream import ANTHROPIC_KEY, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

MOCK_TEXT = "Hello from the mini-llm mock provider."
GATEWAY_KEY = "gw-playground-key-0001"
UNSET = "\N{EN DASH}"  # what a stat shows before it has a value
# Recorded from the page's first moment (init scripts are not subject to the page's CSP):
# every text the answer box showed, to prove the answer arrives piece by piece.
RECORD_OUTPUT = """
window.__outputs = [];
new MutationObserver(() => {
  const output = document.getElementById("output");
  if (output) window.__outputs.push(output.textContent);
}).observe(document, { childList: true, characterData: true, subtree: true });
"""


@pytest.fixture(scope="module")
def mock_gateway() -> Iterator[GatewayProcess]:
    """The embedded default (mock provider only), slowed down so a stream is visibly incremental."""
    process = GatewayProcess({"MINI_LLM_MOCK_TOKEN_DELAY": "0.02"}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def fake_gateway() -> Iterator[GatewayProcess]:
    """A gateway in front of the scripted fake provider, for streams a provider breaks off."""
    upstream = FakeUpstream()
    upstream.start()
    env = {
        "OPENAI_API_KEYS": ",".join(OPENAI_KEYS),
        "OPENAI_BASE_URL": f"{upstream.base}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": upstream.base,
    }
    process = GatewayProcess(env).start()
    yield process
    process.stop()
    upstream.stop()


@pytest.fixture(scope="module")
def keyed_gateway() -> Iterator[GatewayProcess]:
    """The embedded default behind a gateway API key."""
    process = GatewayProcess({"MINI_LLM_API_KEYS": GATEWAY_KEY}).start()
    yield process
    process.stop()


@dataclass
class Playground:
    page: Page
    problems: list[str] = field(default_factory=list)

    def send(self, model: str, protocol: str, max_tokens: int = 7) -> None:
        self.page.get_by_label("Model").fill(model)
        self.page.get_by_label("Protocol").select_option(protocol)
        self.page.get_by_label("Max tokens").fill(str(max_tokens))
        self.page.get_by_role("button", name="Send").click()

    def wait_idle(self) -> None:
        expect(self.page.get_by_role("button", name="Send")).to_be_enabled(timeout=15_000)

    def stat(self, name: str) -> str:
        return self.page.locator(f"#{name}").inner_text()

    def millis(self, name: str) -> int:
        match = re.fullmatch(r"(\d+) ms", self.stat(name))
        assert match, f"{name} shows {self.stat(name)!r}"
        return int(match.group(1))


def _on_console(problems: list[str], message: ConsoleMessage) -> None:
    # A CSP violation (a blocked script or style) shows up only here, so any such line fails.
    if "Content Security Policy" in message.text:
        problems.append(message.text)


@contextmanager
def _open(browser: Browser, gateway: GatewayProcess, *, loaded: bool = True) -> Iterator[Playground]:
    """A fresh browser context on the page, once the model list has loaded (if `loaded`); no CSP violation allowed."""
    context = browser.new_context()
    try:
        page = context.new_page()
        playground = Playground(page)
        page.on("console", lambda message: _on_console(playground.problems, message))
        page.on("pageerror", lambda error: playground.problems.append(f"uncaught: {error}"))
        page.add_init_script(RECORD_OUTPUT)
        page.goto(gateway.url + "/playground")
        if loaded:
            expect(page.locator("#models option")).not_to_have_count(0)
        yield playground
        assert playground.problems == []
    finally:
        context.close()


@pytest.fixture
def playground(browser: Browser, mock_gateway: GatewayProcess) -> Iterator[Playground]:
    with _open(browser, mock_gateway) as opened:
        yield opened


@pytest.fixture
def fake_playground(browser: Browser, fake_gateway: GatewayProcess) -> Iterator[Playground]:
    with _open(browser, fake_gateway) as opened:
        yield opened


def test_model_list_fills_the_picker(playground: Playground) -> None:
    page = playground.page
    options = page.locator("#models option")
    expect(options).to_have_count(1)
    assert options.first.get_attribute("value") == "mock"
    assert options.first.text_content() == "mock (mock)"
    expect(page.get_by_label("Model")).to_have_value("mock")
    expect(page.locator("#models-status")).to_have_text("1 listed; any model name works")
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.get_by_label("API key")).to_be_hidden()  # no gateway key configured: no key field


def test_a_keyed_gateway_gets_its_key_from_a_field_kept_in_the_tab(
    browser: Browser, keyed_gateway: GatewayProcess
) -> None:
    with _open(browser, keyed_gateway, loaded=False) as playground:
        page = playground.page
        field = page.get_by_label("API key")
        expect(field).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("HTTP 401 invalid_request_error (invalid_api_key)")
        expect(page.locator("#models option")).to_have_count(0)
        sent: list[str | None] = []

        def record(request: Request) -> None:
            if "/v1/" in request.url:
                sent.append(request.headers.get("authorization"))

        page.on("request", record)
        field.fill(GATEWAY_KEY)
        field.press("Tab")  # the change event: remembered, and the model list reloads with it
        expect(page.locator("#models option")).to_have_count(1)
        expect(page.get_by_role("alert")).to_be_hidden()
        playground.send("mock", "anthropic")
        playground.wait_idle()
        expect(page.locator("#output")).to_have_text(MOCK_TEXT)
        assert sent == [f"Bearer {GATEWAY_KEY}"] * 2  # the model list, then the message
        assert page.evaluate("sessionStorage.getItem('mini-llm-api-key')") == GATEWAY_KEY
        page.reload()
        expect(field).to_have_value(GATEWAY_KEY)
        expect(page.locator("#models option")).to_have_count(1)
    with _open(browser, keyed_gateway, loaded=False) as other_session:
        expect(other_session.page.get_by_label("API key")).to_have_value("")
        expect(other_session.page.get_by_role("alert")).to_contain_text("HTTP 401")


def test_a_wrong_key_is_shown_as_the_gateways_401(browser: Browser, keyed_gateway: GatewayProcess) -> None:
    with _open(browser, keyed_gateway, loaded=False) as playground:
        page = playground.page
        page.get_by_label("API key").fill("not-the-key")
        page.get_by_label("API key").press("Tab")
        expect(page.get_by_role("alert")).to_contain_text("is not a valid gateway API key")
        playground.send("mock", "openai")
        playground.wait_idle()
        expect(page.get_by_role("alert")).to_contain_text("HTTP 401 invalid_request_error (invalid_api_key)")
        expect(page.locator("#output")).to_be_empty()


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_streamed_answer_and_stats(playground: Playground, protocol: str) -> None:
    playground.send("mock", protocol)
    playground.wait_idle()
    page = playground.page
    expect(page.locator("#output")).to_have_text(MOCK_TEXT)
    expect(page.get_by_role("alert")).to_be_hidden()
    # The mock sends its first event at once and then one every 20 ms. Before the first word come
    # the role chunk (OpenAI), or message_start, content_block_start and ping (Anthropic); 7 words
    # follow. libuv's timers count whole milliseconds, so a 20 ms sleep may end up to 1 ms early,
    # and the page rounds to the millisecond.
    sleeps_before_first_word = {"openai": 1, "anthropic": 3}[protocol]
    ttft, total = playground.millis("ttft"), playground.millis("total")
    assert 19 * sleeps_before_first_word - 1 <= ttft <= total
    assert total >= 140
    assert playground.stat("provider") == "mock"
    assert playground.stat("served-model") == "mock"
    outputs: list[str] = page.evaluate("window.__outputs")
    partial = {text for text in outputs if text and text != MOCK_TEXT}
    assert partial, f"the answer never showed in pieces: {outputs}"
    assert all(MOCK_TEXT.startswith(text) for text in partial)


SSE_STREAM = 'event: a\r\ndata: 1\r\ndata:2\r\n\r\n: comment\n\ndata: {"x": "é"}\r\rid: 7\nretry\ndata\n\n'
SSE_EVENTS = [["a", "1\n2"], ["message", '{"x": "é"}'], ["message", ""]]
# Feeds the page's own parser the stream cut in two at every position (inside CRLF too).
SPLIT_EVERYWHERE = """(stream) => {
  const results = [];
  for (let cut = 0; cut <= stream.length; cut++) {
    const events = [];
    const feed = sseParser((name, data) => events.push([name, data]));
    feed(stream.slice(0, cut), false);
    feed(stream.slice(cut), false);
    feed("", true);
    results.push(events);
  }
  return results;
}"""


def test_sse_parser_handles_any_cut(playground: Playground) -> None:
    results: list[list[list[str]]] = playground.page.evaluate(SPLIT_EVERYWHERE, SSE_STREAM)
    assert len(results) == len(SSE_STREAM) + 1
    for cut, events in enumerate(results):
        assert events == SSE_EVENTS, f"cut at {cut}"


def test_unicode_split_across_events(fake_playground: Playground) -> None:
    """Multi-byte characters from a real provider stream come out whole (TextDecoderStream)."""
    fake_playground.send("gpt-4o-mini", "openai")
    fake_playground.wait_idle()
    expect(fake_playground.page.locator("#output")).to_have_text("fake streamed café 😀")
    assert fake_playground.stat("served-model") == "gpt-4o-mini"
    assert fake_playground.stat("provider") == "not in /v1/models"


@pytest.mark.parametrize(
    ("model", "protocol", "expected"),
    [
        (
            "claude-sonnet-4-5",
            "openai",
            "HTTP 400 invalid_request_error (protocol_mismatch): model 'claude-sonnet-4-5'",
        ),
        ("gpt-4o", "anthropic", "HTTP 400 invalid_request_error: model 'gpt-4o' resolves to provider 'openai'"),
        ("gpt-4o-mini", "openai", "(provider_not_configured): provider 'openai' has no API key configured"),
    ],
)
def test_error_answer_is_readable(playground: Playground, model: str, protocol: str, expected: str) -> None:
    playground.send(model, protocol)
    playground.wait_idle()
    alert = playground.page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(expected)
    expect(playground.page.locator("#output")).to_be_empty()
    assert playground.stat("ttft") == UNSET
    assert playground.stat("provider") == UNSET


@pytest.mark.parametrize(
    ("model", "protocol", "expected"),
    [
        ("cut", "openai", "Error in the stream: server_error (upstream_unreachable): provider 'openai' "),
        ("anthropic:cut", "anthropic", "Error in the stream: api_error: provider 'anthropic' "),
    ],
)
def test_in_stream_error_is_readable(fake_playground: Playground, model: str, protocol: str, expected: str) -> None:
    """The provider breaks off mid-stream after the 200: the gateway's error event is shown."""
    fake_playground.send(model, protocol)
    fake_playground.wait_idle()
    alert = fake_playground.page.get_by_role("alert")
    expect(alert).to_contain_text(expected)
    if protocol == "openai":  # the fake's one whole OpenAI event before the cut
        expect(fake_playground.page.locator("#output")).to_have_text("a")


def test_stop_keeps_the_partial_answer(playground: Playground) -> None:
    playground.send("mock", "openai", max_tokens=500)
    page = playground.page
    expect(page.locator("#output")).to_contain_text("Hello from")
    page.get_by_role("button", name="Stop").click()
    playground.wait_idle()
    expect(page.get_by_role("alert")).to_have_text("Stopped.")
    whole = "".join(WORDS[i % len(WORDS)] for i in range(500))
    shown = page.locator("#output").inner_text()
    assert whole.startswith(shown)
    assert len(shown) < len(whole)


def test_unreachable_gateway_is_a_readable_network_error(browser: Browser) -> None:
    gateway = GatewayProcess({}).start()
    try:
        with _open(browser, gateway) as playground:
            gateway.stop()
            playground.send("mock", "openai")
            playground.wait_idle()
            alert = playground.page.get_by_role("alert")
            expect(alert).to_contain_text("Network error: could not reach the gateway")
    finally:
        gateway.stop()


def _inline_hash(tag: str, html: str) -> str:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL)
    assert match is not None
    return "'sha256-" + base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode() + "'"


def test_page_headers_get_and_head(mock_gateway: GatewayProcess) -> None:
    page = request(mock_gateway.url, "GET", "/playground")
    assert page.status == 200
    assert page.headers[b"content-type"] == b"text/html; charset=utf-8"
    assert page.headers[b"x-content-type-options"] == b"nosniff"
    assert page.headers[b"cache-control"] == b"no-cache"
    html = page.body.decode()
    assert "<title>mini-llm playground</title>" in html
    assert re.search(r"""(?:src|href)=["'](?!data:)""", html) is None, "the page loads nothing from elsewhere"
    assert "url(" not in html
    assert "@import" not in html
    csp = page.headers[b"content-security-policy"].decode()
    policy = dict(part.split(" ", 1) for part in csp.split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == _inline_hash("script", html)
    assert policy["style-src"] == _inline_hash("style", html)
    assert policy["connect-src"] == "'self'"
    assert "unsafe" not in csp

    head = request(mock_gateway.url, "HEAD", "/playground")
    assert head.status == 200
    assert head.body == b""
    for name in (b"content-type", b"content-security-policy", b"x-content-type-options", b"cache-control"):
        assert head.headers[name] == page.headers[name]

    post = request(mock_gateway.url, "POST", "/playground", b"{}")
    assert post.status == 405
    assert post.headers[b"allow"] == b"GET, HEAD"
