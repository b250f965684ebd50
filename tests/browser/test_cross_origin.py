"""Pages on another origin, in headless Chromium, against real gateways: refused unless the origin is allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.fake_upstream import ANTHROPIC_KEY, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess

GATEWAY_KEY = "gw-cross-origin-key-0001"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "spend the operator's key"}]}
# What any page can send without a preflight: a "simple" request (Fetch standard 3.2.3), here text/plain.
NO_CORS_POST = """async ([url, body]) => {
  const headers = { "content-type": "text/plain" };
  const response = await fetch(url, { method: "POST", mode: "no-cors", headers, body });
  return response.type;
}"""
# A page that may read the answer: the key and JSON need a preflight first.
CORS_POST = """async ([url, key, body]) => {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-stainless-os": "Linux" },
      body,
    });
    return { status: response.status, body: await response.json(), requestId: response.headers.get("x-request-id") };
  } catch (error) {
    return { error: String(error) };
  }
}"""
# The classic cross-site form: text/plain encoding turns name=value into a JSON body.
FORM = """<!doctype html><form method="post" action="{action}" enctype="text/plain">
<input name='{{"model": "gpt-4o-mini", "messages": [], "padding": "' value='"}}'></form>
<script>document.forms[0].submit()</script>"""


@dataclass
class OtherSite:
    """A web site on another origin (another port of 127.0.0.1): what a page the operator opens can do."""

    url: str
    pages: dict[str, bytes]


@pytest.fixture(scope="module")
def other_site() -> Iterator[OtherSite]:
    """Serves `site.pages[path]` as HTML; tests put the pages they need in the dict."""
    pages: dict[str, bytes] = {"/": b"<!doctype html><title>another site</title>"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:  # quiet: the test output stays readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="other-site")
    thread.start()
    yield OtherSite(f"http://127.0.0.1:{server.server_address[1]}", pages)
    server.shutdown()
    server.server_close()
    thread.join(5)


def _gateway(upstream: FakeUpstream, **extra: str) -> GatewayProcess:
    env = {
        "OPENAI_API_KEYS": ",".join(OPENAI_KEYS),
        "OPENAI_BASE_URL": f"{upstream.base}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": upstream.base,
        "MINI_LLM_LOG_REQUESTS": "1",
        **extra,
    }
    return GatewayProcess(env).start()


@pytest.fixture(scope="module")
def open_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """The default: no gateway key, no allowed origin, on 127.0.0.1 with provider keys."""
    process = _gateway(upstream)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def allowing_gateway(upstream: FakeUpstream, other_site: OtherSite) -> Iterator[GatewayProcess]:
    """Keys required, and the other site listed in MINI_LLM_ALLOWED_ORIGINS."""
    process = _gateway(upstream, MINI_LLM_API_KEYS=GATEWAY_KEY, MINI_LLM_ALLOWED_ORIGINS=other_site.url)
    yield process
    process.stop()


@pytest.fixture
def page(browser: Browser, other_site: OtherSite) -> Iterator[Page]:
    """A tab showing the other site, so its scripts run with that origin."""
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(other_site.url + "/")
        yield tab
    finally:
        context.close()


def test_a_no_cors_text_plain_post_is_refused_before_the_provider(
    page: Page, open_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    before = len(upstream.seen)
    kind = page.evaluate(NO_CORS_POST, [open_gateway.url + "/v1/chat/completions", json.dumps(CHAT)])
    assert kind == "opaque"  # the page cannot read the answer either way; what matters is the provider
    assert open_gateway.wait_for_log("POST '/v1/chat/completions' ")  # answered (the line follows the answer)
    assert len(upstream.seen) == before, "the gateway spent a provider key for another site's page"
    assert "POST '/v1/chat/completions' 403" in open_gateway.log


def test_a_cross_site_form_post_is_refused(
    page: Page, other_site: OtherSite, open_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    other_site.pages["/form"] = FORM.format(action=open_gateway.url + "/v1/chat/completions").encode()
    before = len(upstream.seen)
    with page.expect_navigation(url=open_gateway.url + "/v1/chat/completions"):
        page.goto(other_site.url + "/form")
    assert json.loads(page.inner_text("body"))["error"]["code"] == "origin_not_allowed"
    assert len(upstream.seen) == before


def test_a_disallowed_origin_cannot_read_either(
    page: Page, open_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    before = len(upstream.seen)
    result = page.evaluate(CORS_POST, [open_gateway.url + "/v1/chat/completions", "any", json.dumps(CHAT)])
    assert result == {"error": "TypeError: Failed to fetch"}  # the preflight got a 403
    assert open_gateway.wait_for_log("OPTIONS '/v1/chat/completions' 403")
    assert len(upstream.seen) == before


def test_an_allowed_origin_passes_the_preflight_and_reads_the_answer(
    page: Page, allowing_gateway: GatewayProcess, upstream: FakeUpstream
) -> None:
    result = page.evaluate(CORS_POST, [allowing_gateway.url + "/v1/chat/completions", GATEWAY_KEY, json.dumps(CHAT)])
    assert result["status"] == 200, result
    assert result["body"]["choices"][0]["message"]["content"] == "fake openai answer"
    assert result["requestId"] == "req_fake_1"  # exposed to the page
    assert upstream.last().headers["Authorization"] in {f"Bearer {key}" for key in OPENAI_KEYS}
    assert allowing_gateway.wait_for_log("OPTIONS '/v1/chat/completions' 204")


def test_an_allowed_origin_still_needs_the_key(page: Page, allowing_gateway: GatewayProcess) -> None:
    result = page.evaluate(CORS_POST, [allowing_gateway.url + "/v1/chat/completions", "wrong", json.dumps(CHAT)])
    assert result["status"] == 401
    assert result["body"]["error"]["code"] == "invalid_api_key"
