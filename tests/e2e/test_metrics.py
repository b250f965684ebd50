"""GET /metrics on a real two-worker `mini-llm serve`: after scripted traffic, every counter equals what was sent.

Each worker counts its own requests and writes them for the others at most FLUSH_DELAY after a change,
so a scrape is polled until it shows the expected numbers (with a deadline) and then checked whole:
the same numbers from whichever worker answers, and still after a worker is killed and replaced.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.parser import text_string_to_metric_families

from mini_llm.metrics.recorder import FLUSH_DELAY, PENDING_LIMIT
from tests.e2e.conftest import gateway_env
from tests.e2e.failover_gateway import KEY_1, KEY_2, Gateways, call, on, refusing, stream_and_leave
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.scripted_provider import (
    ScriptedProvider,
    cut_after,
    error_after,
    ok,
    rate_limited,
    reply,
    slow_stream,
)

CHAT = "/v1/chat/completions"
# One scraped sample: its name and its labels, sorted.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]
COUNTERS = (
    "mini_llm_requests_total",
    "mini_llm_upstream_attempts_total",
    "mini_llm_key_cooldowns_total",
    "mini_llm_streams_total",
    "mini_llm_tokens_total",
)
ALIASES = {
    "m-ok": "a:m-ok-up",
    "m-err": "a:m-err-up",
    "m-retry": "a:m-retry-up",
    "m-slow": "a:m-slow-up",
    "m-cut": "a:m-cut-up",
    "m-broken": "a:m-broken-up",
    "m-down": "down:m-down-up",
}


def _key(name: str, **labels: str) -> SampleKey:
    return name, tuple(sorted(labels.items()))


def scrape(gateway: GatewayProcess, accept: str | None = None) -> dict[SampleKey, float]:
    answer = request(gateway.url, "GET", "/metrics", headers={"Accept": accept} if accept else None)
    assert answer.status == 200, answer.body
    assert answer.headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    families = text_string_to_metric_families(answer.body.decode())
    return {_key(sample.name, **sample.labels): sample.value for family in families for sample in family.samples}


def counters(samples: Mapping[SampleKey, float]) -> dict[SampleKey, float]:
    """The counters of the traffic under test: /health and /metrics requests (probes, scrapes) left out."""
    routes = {"/health", "/metrics"}
    return {
        key: value for key, value in samples.items() if key[0] in COUNTERS and dict(key[1]).get("route") not in routes
    }


def settle(gateway: GatewayProcess, expected: Callable[[Mapping[SampleKey, float]], bool]) -> dict[SampleKey, float]:
    """Scrape until `expected` holds (the other worker's numbers arrive within FLUSH_DELAY); the last scrape."""
    deadline = time.monotonic() + 15
    samples = scrape(gateway)
    while not expected(samples) and time.monotonic() < deadline:
        time.sleep(0.1)
        samples = scrape(gateway)
    return samples


def _stream_and_leave(gateway: GatewayProcess, model: str) -> None:
    """A stream the client reads two events of and then leaves (closes its connection)."""
    stream_and_leave(gateway, model, b"data: ", 2)


def _workers(gateway: GatewayProcess) -> list[int]:
    assert gateway.proc is not None
    with open(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children") as children:
        return [int(pid) for pid in children.read().split()]


def _traffic(gateway: GatewayProcess, server: ScriptedProvider) -> dict[SampleKey, float]:
    """Scripted requests of every kind; what the counters must say about them."""
    server.script("m-ok-up", ok())
    server.script("m-err-up", reply(400))  # the provider's own 400: relayed, never retried
    server.script("m-retry-up", rate_limited(), ok())  # one 429 (that key cools), then the other key answers
    server.script("m-slow-up", slow_stream(0.1))
    server.script("m-cut-up", cut_after(2))  # the provider drops the connection after the commit
    server.script("m-broken-up", error_after(2))  # an in-stream error after the commit
    for _ in range(5):
        assert call(gateway, "m-ok").status == 200
    assert call(gateway, "m-ok", stream=True).status == 200
    for _ in range(3):
        assert call(gateway, "m-err").status == 400
    assert call(gateway, "m-retry").status == 200
    assert call(gateway, "m-down").status == 502  # nothing listens: the first try and both retries fail
    assert call(gateway, "m-cut", stream=True).status == 200
    assert call(gateway, "m-broken", stream=True).status == 200
    _stream_and_leave(gateway, "m-slow")
    assert call(gateway, "a:m-unlisted").status == 400  # a model no configuration names; no script either
    chat = {"route": CHAT}
    ok_200 = {**chat, "provider": "a", "status": "200"}
    return {
        _key("mini_llm_requests_total", model="m-ok", **ok_200): 6,
        _key("mini_llm_requests_total", model="m-err", **{**ok_200, "status": "400"}): 3,
        _key("mini_llm_requests_total", model="m-retry", **ok_200): 1,
        _key("mini_llm_requests_total", model="m-down", route=CHAT, provider="", status="502"): 1,
        _key("mini_llm_requests_total", model="m-cut", **ok_200): 1,
        _key("mini_llm_requests_total", model="m-broken", **ok_200): 1,
        _key("mini_llm_requests_total", model="m-slow", **ok_200): 1,
        _key("mini_llm_requests_total", model="other", **{**ok_200, "status": "400"}): 1,  # a:m-unlisted
        _key("mini_llm_upstream_attempts_total", provider="a", outcome="200"): 6 + 1 + 3,
        _key("mini_llm_upstream_attempts_total", provider="a", outcome="400"): 3 + 1,
        _key("mini_llm_upstream_attempts_total", provider="a", outcome="429"): 1,
        _key("mini_llm_upstream_attempts_total", provider="down", outcome="unreachable"): 3,
        _key("mini_llm_key_cooldowns_total", provider="a", reason="rate_limit"): 1,
        _key("mini_llm_streams_total", outcome="complete"): 1,
        _key("mini_llm_streams_total", outcome="client_gone"): 1,
        _key("mini_llm_streams_total", outcome="cut"): 1,
        _key("mini_llm_streams_total", outcome="upstream_error"): 1,
        # The scripted provider's usage: 1 prompt and 3 completion tokens per JSON answer.
        _key("mini_llm_tokens_total", provider="a", model="m-ok-up", kind="input"): 5,
        _key("mini_llm_tokens_total", provider="a", model="m-ok-up", kind="output"): 15,
        _key("mini_llm_tokens_total", provider="a", model="m-retry-up", kind="input"): 1,
        _key("mini_llm_tokens_total", provider="a", model="m-retry-up", kind="output"): 3,
    }


def _gateway(gateways: Gateways, server: ScriptedProvider, **settings: str) -> GatewayProcess:
    providers = [on(server, "a", KEY_1, KEY_2), refusing("down")]
    return gateways.start(providers, ALIASES, workers="2", key_rate_limit_cooldown="60", **settings)


def _same(expected: Mapping[SampleKey, float]) -> Callable[[Mapping[SampleKey, float]], bool]:
    return lambda samples: counters(samples) == expected


def _show(samples: Iterable[tuple[SampleKey, float]]) -> str:
    return json.dumps(sorted((f"{name}{dict(labels)}", value) for (name, labels), value in samples), indent=1)


def test_after_scripted_traffic_every_counter_equals_what_was_sent_whichever_worker_answers(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    gateway = _gateway(gateways, server)
    expected = _traffic(gateway, server)
    samples = settle(gateway, _same(expected))
    assert counters(samples) == expected, _show(counters(samples).items())
    # The worker that answered showed its own numbers live; the other one reads them from the file
    # written within FLUSH_DELAY of the last change. Once that is past, either worker shows the same.
    time.sleep(2 * FLUSH_DELAY)
    for _ in range(6):
        again = scrape(gateway)
        assert counters(again) == expected, _show(counters(again).items())
    durations = sum(
        value
        for (name, labels), value in samples.items()
        if name == "mini_llm_request_duration_seconds_count" and dict(labels)["route"] == CHAT
    )
    assert durations == 15  # every chat request, however it ended
    ttfts = {
        dict(labels)["model"]: value
        for (name, labels), value in samples.items()
        if name == "mini_llm_time_to_first_token_seconds_count"
    }
    assert ttfts == {"m-ok-up": 1, "m-cut-up": 1, "m-broken-up": 1, "m-slow-up": 1}  # the four streams
    assert samples[_key("mini_llm_streams_active")] == 0
    # One of a's two keys cools for 60 s in the worker that got the 429: the fewest any worker can use.
    assert samples[_key("mini_llm_provider_keys_available", provider="a")] == 1
    assert samples[_key("mini_llm_provider_keys_available", provider="down")] == 1
    assert samples[_key("mini_llm_breaker_open", provider="a", model="m-ok-up")] == 0


def test_a_killed_workers_counts_stay_after_it_is_replaced(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = _gateway(gateways, server)
    server.script("m-ok-up", ok())
    for _ in range(8):
        assert call(gateway, "m-ok").status == 200
    sent = _key("mini_llm_requests_total", route=CHAT, model="m-ok", provider="a", status="200")
    assert settle(gateway, lambda samples: samples.get(sent) == 8).get(sent) == 8
    time.sleep(2 * FLUSH_DELAY)  # each worker has written what it counted
    workers = _workers(gateway)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (len(_workers(gateway)) < 2 or workers[0] in _workers(gateway)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers[0] not in _workers(gateway) and len(_workers(gateway)) == 2, "granian did not replace it"
    gateway.wait_healthy(15)
    for _ in range(6):
        assert scrape(gateway)[sent] == 8  # counters never go down: the gone worker's file still counts
    assert call(gateway, "m-ok").status == 200
    assert settle(gateway, lambda samples: samples.get(sent) == 9).get(sent) == 9


def test_a_scrape_right_after_the_traffic_shows_every_request(gateways: Gateways, server: ScriptedProvider) -> None:
    """One worker answers both: no file between them, so no wait either, past the recorder's pending limit too."""
    gateway = gateways.start([on(server, "a", KEY_1, KEY_2)], {"m-ok": "a:m-ok-up"}, workers="1")
    server.script("m-ok-up", ok())
    sent = PENDING_LIMIT + 5
    for _ in range(sent):
        assert call(gateway, "m-ok").status == 200
    samples = scrape(gateway)
    assert samples[_key("mini_llm_requests_total", route=CHAT, model="m-ok", provider="a", status="200")] == sent
    assert samples[_key("mini_llm_upstream_attempts_total", provider="a", outcome="200")] == sent


def test_metrics_need_no_gateway_key_and_a_head_gets_no_body(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = _gateway(gateways, server, api_keys="sk-gateway-client-key-123456")
    assert call(gateway, "m-ok").status == 401  # the API itself needs the key
    health = request(gateway.url, "GET", "/health").json()
    client = os.environ.get("MINI_LLM_UPSTREAM_CLIENT", "fast")  # the run's matrix switch, which gateways inherit
    build = _key("mini_llm_build_info", version=health["version"], hot_path=health["hot_path"], upstream_client=client)
    samples = scrape(gateway)  # no key: like /health
    assert [key for key in samples if key[0] == "mini_llm_build_info"] == [build]
    assert samples[build] == 1
    head = request(gateway.url, "HEAD", "/metrics")
    assert head.status == 200
    assert head.body == b""
    assert head.headers[b"content-type"].startswith(b"text/plain")


def test_an_openmetrics_scraper_gets_openmetrics(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = _gateway(gateways, server)
    answer = request(gateway.url, "GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status == 200
    assert answer.headers[b"content-type"].startswith(b"application/openmetrics-text")
    assert answer.body.endswith(b"# EOF\n")


def test_metrics_off_is_a_404_in_the_openai_error_shape(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = _gateway(gateways, server, metrics="off")
    answer = request(gateway.url, "GET", "/metrics")
    assert answer.status == 404
    error = json.loads(answer.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "MINI_LLM_METRICS" in error["message"]
    assert error["code"] == "not_found"


def test_a_worker_imports_prometheus_client_at_its_first_scrape_only(upstream: FakeUpstream) -> None:
    """Read from CPython's import log (PYTHONPROFILEIMPORTTIME: a stderr line per module as it is imported)."""
    gateway = GatewayProcess(gateway_env(upstream, PYTHONPROFILEIMPORTTIME="1")).start()
    try:

        def imported() -> bool:
            rows = [line.split("|") for line in list(gateway.lines) if line.startswith("import time:")]
            return any(row[-1].strip() == "prometheus_client" for row in rows)

        chat = b'{"model":"fast","messages":[{"role":"user","content":"x"}]}'
        answer = request(gateway.url, "POST", CHAT, chat, {"Content-Type": "application/json"})
        assert answer.status == 200, answer.body
        assert gateway.wait_for_log(CHAT)  # its access line: stderr has everything the worker wrote before
        assert not imported()
        scrape(gateway)
        assert gateway.wait_for_log("prometheus_client") and imported()
    finally:
        gateway.stop()
