"""examples/grafana-dashboard.json against a real scrape: every series it queries is there, with the labels it reads.

A gateway over real TCP gets a little of each kind of traffic (a mock answer, a stream from the fake upstream,
a 429 that cools both OpenAI keys), then GET /metrics is parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard_queries import TARGET_LABELS, documented_metrics, expressions, load, read, series_name
from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

EXPRESSIONS = expressions(load())
DOCUMENTED = documented_metrics()
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


@dataclass
class Scrape:
    """The series one GET /metrics showed: each sample name with the label names its samples carry."""

    labels: dict[str, set[str]] = field(default_factory=dict)
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)
    histograms: set[str] = field(default_factory=set)

    def value(self, name: str, **labels: str) -> float:
        """The sum over the samples of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(value for (sample, have), value in self.values.items() if sample == name and wanted <= have)


def scrape(url: str) -> Scrape:
    answer = request(url, "GET", "/metrics")
    assert answer.status == 200, answer.body
    found = Scrape()
    for family in text_string_to_metric_families(answer.body.decode()):
        if family.type == "histogram":
            found.histograms.add(family.name)
        for sample in family.samples:
            found.labels.setdefault(sample.name, set()).update(sample.labels)
            found.values[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def scrape_when_counted(url: str, timeout: float = 5.0) -> Scrape:
    """The scrape once the traffic below is all in: a request is recorded just after its answer's last byte."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(url)
        counted = (
            found.value("mini_llm_streams_total", outcome="complete") >= 1
            and found.value("mini_llm_key_cooldowns_total", reason="rate_limit") >= 1
            and found.value("mini_llm_requests_total", model="mock") >= 1
        )
        if counted or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(scope="module")
def scraped(upstream: FakeUpstream) -> Iterator[Scrape]:
    # Key cooldowns on (the shared gateway_env turns them off), so the 429 below cools the keys.
    gateway = GatewayProcess(gateway_env(upstream, MINI_LLM_KEY_RATE_LIMIT_COOLDOWN="10")).start()
    try:
        client = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        try:
            client.chat.completions.create(model="mock", messages=HELLO)
            stream = client.chat.completions.create(
                model="fast",
                messages=HELLO,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "fake streamed café 😀"
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="openai:status-429", messages=HELLO)
        finally:
            client.close()
        yield scrape_when_counted(gateway.url)
    finally:
        gateway.stop()


def test_the_traffic_was_counted(scraped: Scrape) -> None:
    """Without it the checks below would pass on families that merely exist; these are the samples they read."""
    assert scraped.value("mini_llm_requests_total", model="mock", status="200") == 1
    assert scraped.value("mini_llm_requests_total", model="fast", provider="openai", status="200") == 1
    assert scraped.value("mini_llm_requests_total", provider="openai", status="429") == 1
    assert scraped.value("mini_llm_streams_total", outcome="complete") == 1
    assert scraped.value("mini_llm_tokens_total", provider="mock", model="mock", kind="input") > 0
    assert scraped.value("mini_llm_tokens_total", provider="mock", model="mock", kind="output") > 0
    # The fake's stream reports its usage in its last chunk, as `"usage": {...}` (json.dumps spacing).
    assert scraped.value("mini_llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="input") == 5
    assert scraped.value("mini_llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="output") == 3
    assert scraped.value("mini_llm_key_cooldowns_total", provider="openai", reason="rate_limit") == 2
    assert scraped.value("mini_llm_upstream_attempts_total", provider="openai", outcome="429") == 2
    assert scraped.value("mini_llm_provider_keys_available", provider="openai") == 0
    assert scraped.value("mini_llm_time_to_first_token_seconds_count", provider="openai") == 1


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_series_the_dashboard_queries_is_scraped(scraped: Scrape, expr: str) -> None:
    query = read(expr)
    assert query.metrics <= scraped.labels.keys(), query.metrics - scraped.labels.keys()


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_label_the_dashboard_reads_is_on_its_series(scraped: Scrape, expr: str) -> None:
    query = read(expr)
    allowed = set(TARGET_LABELS) | query.made_labels
    for metric in query.metrics:
        allowed |= scraped.labels.get(metric, set())
    assert query.labels <= allowed, query.labels - allowed


def test_the_scrape_has_the_readme_metrics_exactly(scraped: Scrape) -> None:
    """The README table the unit test holds the dashboard to is the one the gateway really exposes."""
    exposed: dict[str, set[str]] = {}
    for sample, labels in scraped.labels.items():
        name = series_name(sample, scraped.histograms)
        exposed.setdefault(name, set()).update(labels - {"le"})
    assert {name: (exposed.get(name) or set()) for name in DOCUMENTED} == {
        name: set(labels) for name, (_, labels) in DOCUMENTED.items()
    }
    assert {name for name in exposed if name.startswith("mini_llm_")} == DOCUMENTED.keys()
