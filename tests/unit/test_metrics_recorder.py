"""The recorder: a request's facts become numbers, rendered by prometheus_client; off records nothing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mini_llm import __version__, hotpath
from mini_llm.asgi import Message
from mini_llm.config import load_settings
from mini_llm.gateway.context import Request
from mini_llm.gateway.failover import AttemptRecord, Failover
from mini_llm.metrics import METRICS_DIR_ENV
from mini_llm.metrics.exposition import Exposition
from mini_llm.metrics.recorder import FLUSH_DELAY, PENDING_LIMIT, Recorder
from mini_llm.metrics.series import OVERHEAD_BUCKETS
from mini_llm.metrics.snapshot import path_for, read_others, this_process, write
from mini_llm.providers import Target

ENV = {
    "OPENAI_API_KEYS": "sk-recorder-test-one,sk-recorder-test-two",
    "MINI_LLM_MODEL_ALIASES": json.dumps({"fast": ["openai:gpt-4o-mini", "mock:mock"]}),
    "MINI_LLM_BREAKER_FAILURES": "2",
}
CHAT = "/v1/chat/completions"


async def _receive() -> Message:
    return {"type": "http.disconnect"}


async def _send(message: Message) -> None:
    pass


def _recorder(**env: str) -> Recorder:
    settings = load_settings({**ENV, **env})
    return Recorder(settings, Failover(settings, settings.providers))


def _request(recorder: Recorder, model: str | None = "fast", status: int = 200, **facts: object) -> Request:
    """A finished request as the pipeline leaves it, answered by openai:gpt-4o-mini unless `target=None`."""
    req = Request({"type": "http", "path": CHAT}, _receive, _send, {}, "openai")
    provider = recorder.settings.providers["openai"]
    req.route, req.model, req.status = CHAT, model, status
    req.target = Target(provider, "gpt-4o-mini", provider.keys[0], provider.keys[0].encode())
    req.attempts = (AttemptRecord("openai", "gpt-4o-mini", 1, status, 12.0),)
    for name, value in facts.items():
        setattr(req, name, value)
    return req


def _samples(recorder: Recorder) -> dict[str, list[Sample]]:
    body, content_type = Exposition(recorder).render("")
    assert content_type.startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(body.decode())}


def _value(samples: Sequence[Sample], name: str, **labels: str) -> float:
    found = [sample.value for sample in samples if sample.name == name and sample.labels == labels]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


def test_every_fact_of_a_request_lands_in_its_metric() -> None:
    recorder = _recorder()
    recorder.stream_opened()
    recorder.finished(_request(recorder, input_tokens=11, output_tokens=7, ttft=0.2, stream_outcome="complete"), 1, 0)
    retried = (AttemptRecord("openai", "gpt-4o-mini", 1, 429, 3.0), AttemptRecord("openai", "gpt-4o-mini", 2, 200, 9.0))
    recorder.finished(_request(recorder, attempts=retried, cooldowns=(("openai", "rate_limit"),)), 0.5, 0.0002)
    recorder.finished(_request(recorder, model="gpt-5", status=502, target=None, attempts=()), 0.1, 0.0001)
    samples = _samples(recorder)
    requests = samples["mini_llm_requests"]
    labels = {"route": CHAT, "provider": "openai", "status": "200"}
    assert _value(requests, "mini_llm_requests_total", model="fast", **labels) == 2
    assert _value(requests, "mini_llm_requests_total", route=CHAT, model="other", provider="", status="502") == 1
    tokens = samples["mini_llm_tokens"]
    assert _value(tokens, "mini_llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="input") == 11
    assert _value(tokens, "mini_llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="output") == 7
    attempts = samples["mini_llm_upstream_attempts"]
    assert _value(attempts, "mini_llm_upstream_attempts_total", provider="openai", outcome="200") == 2
    assert _value(attempts, "mini_llm_upstream_attempts_total", provider="openai", outcome="429") == 1
    cooldowns = samples["mini_llm_key_cooldowns"]
    assert _value(cooldowns, "mini_llm_key_cooldowns_total", provider="openai", reason="rate_limit") == 1
    streams = samples["mini_llm_streams"]
    assert _value(streams, "mini_llm_streams_total", outcome="complete") == 1
    assert _value(streams, "mini_llm_streams_total", outcome="cut") == 0  # every outcome has its series
    assert _value(samples["mini_llm_streams_active"], "mini_llm_streams_active") == 0
    durations = samples["mini_llm_request_duration_seconds"]
    assert _value(durations, "mini_llm_request_duration_seconds_count", route=CHAT, provider="openai") == 2
    assert _value(durations, "mini_llm_request_duration_seconds_sum", route=CHAT, provider="openai") == 1.5
    overheads = samples["mini_llm_overhead_seconds"]
    assert _value(overheads, "mini_llm_overhead_seconds_count", route=CHAT) == 3
    ttfts = samples["mini_llm_time_to_first_token_seconds"]
    assert _value(ttfts, "mini_llm_time_to_first_token_seconds_count", provider="openai", model="gpt-4o-mini") == 1
    build = {"version": __version__, "hot_path": hotpath.IMPLEMENTATION, "upstream_client": "fast"}
    assert _value(samples["mini_llm_build_info"], "mini_llm_build_info", **build) == 1


def test_overhead_buckets_are_sub_millisecond_and_a_value_on_a_bound_is_in_that_bucket() -> None:
    recorder = _recorder()
    for overhead in (0.00005, 0.00006, 0.0004, 2.0):
        recorder.finished(_request(recorder), 0.01, overhead)
    buckets = {
        float(sample.labels["le"]): sample.value
        for sample in _samples(recorder)["mini_llm_overhead_seconds"]
        if sample.name == "mini_llm_overhead_seconds_bucket"
    }
    assert list(buckets) == [*OVERHEAD_BUCKETS, float("inf")]
    assert buckets[0.00005] == 1  # le: 50 us itself counts in the 50 us bucket
    assert buckets[0.0001] == 2
    assert buckets[0.0005] == 3
    assert buckets[1.0] == 3
    assert buckets[float("inf")] == 4  # cumulative, as the text format has them


def test_keys_and_breakers_are_read_from_the_failover_state_at_scrape() -> None:
    recorder = _recorder()
    samples = _samples(recorder)
    keys = samples["mini_llm_provider_keys_available"]
    assert _value(keys, "mini_llm_provider_keys_available", provider="openai") == 2
    assert _value(keys, "mini_llm_provider_keys_available", provider="mock") == 1
    assert {sample.labels["provider"] for sample in keys} == {"openai", "mock"}  # unusable ones (no key) are left out
    breakers = samples["mini_llm_breaker_open"]
    assert _value(breakers, "mini_llm_breaker_open", provider="openai", model="gpt-4o-mini") == 0  # configured: shown
    recorder.failover.pools["openai"].cool(1, 60, "rate_limit")
    breaker = recorder.failover.breakers.get("openai", "gpt-4o-mini")
    breaker.failed()
    breaker.failed()
    recorder.failover.breakers.get("openai", "client-chosen-model").failed()
    recorder.failover.breakers.get("openai", "client-chosen-model").failed()
    samples = _samples(recorder)  # no request since: the gauges still change
    keys = samples["mini_llm_provider_keys_available"]
    assert _value(keys, "mini_llm_provider_keys_available", provider="openai") == 1
    breakers = samples["mini_llm_breaker_open"]
    assert _value(breakers, "mini_llm_breaker_open", provider="openai", model="gpt-4o-mini") == 1
    assert _value(breakers, "mini_llm_breaker_open", provider="openai", model="other") == 1


def test_off_records_nothing() -> None:
    recorder = _recorder(MINI_LLM_METRICS="off")
    recorder.stream_opened()
    recorder.finished(_request(recorder, input_tokens=3, stream_outcome="cut"), 1.0, 0.001)
    assert recorder.requests == {}
    assert recorder.usage == {}
    assert recorder.attempts == {}
    assert recorder.streams_active == 0


def test_a_worker_writes_its_snapshot_after_a_change_and_marks_it_gone_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))
    recorder = _recorder()
    path = Path(path_for(str(tmp_path), os.getpid(), this_process()))

    def written() -> tuple[bool, list[int]]:
        [snapshot] = read_others(str(tmp_path), 0, "")
        return snapshot.live, [series.value for series in snapshot.counters["requests"]]

    async def traffic() -> None:
        recorder.finished(_request(recorder), 0.1, 0.0001)
        recorder.finished(_request(recorder), 0.1, 0.0001)
        # No await since the changes, so the loop cannot have run the write yet: not on the first change.
        assert not path.exists()  # noqa: ASYNC240 - a stat that must not yield to the loop
        deadline = asyncio.get_running_loop().time() + 10
        while not await asyncio.to_thread(path.exists):
            assert asyncio.get_running_loop().time() < deadline, "no snapshot was written"
            await asyncio.sleep(FLUSH_DELAY / 5)
        assert written() == (True, [2])
        recorder.finished(_request(recorder), 0.1, 0.0001)  # schedules the next write...
        recorder.close()  # ...which the last write at shutdown replaces
        assert written() == (False, [3])
        await asyncio.sleep(2 * FLUSH_DELAY)
        recorder.finished(_request(recorder), 0.1, 0.0001)  # after close: counted, never written
        await asyncio.sleep(2 * FLUSH_DELAY)

    asyncio.run(traffic())
    assert written() == (False, [3])


def test_without_a_folder_nothing_is_scheduled_or_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_DIR_ENV, raising=False)
    recorder = _recorder()
    recorder.finished(_request(recorder), 0.1, 0.0001)  # outside any event loop: it would raise if it scheduled
    recorder.close()
    assert recorder.merged().counters["requests"] != {}


def test_a_stream_without_usage_has_a_first_token_but_no_token_series() -> None:
    recorder = _recorder()
    recorder.stream_opened()
    recorder.finished(_request(recorder, ttft=0.05, stream_outcome="client_gone"), 1.0, 0.0001)
    samples = _samples(recorder)
    assert samples["mini_llm_tokens"] == []
    ttfts = samples["mini_llm_time_to_first_token_seconds"]
    assert _value(ttfts, "mini_llm_time_to_first_token_seconds_count", provider="openai", model="gpt-4o-mini") == 1
    assert _value(samples["mini_llm_streams"], "mini_llm_streams_total", outcome="client_gone") == 1


def test_a_scrape_right_after_requests_shows_every_one_and_the_pending_ones_stay_bounded() -> None:
    recorder = _recorder()
    sent = 2 * PENDING_LIMIT + 3  # over the limit twice, and some left pending
    for _ in range(sent):
        recorder.stream_opened()
        recorder.finished(_request(recorder, stream_outcome="complete", input_tokens=1), 0.1, 0.0001)
        assert len(recorder.pending) < PENDING_LIMIT
    assert recorder.pending != []  # the last few wait for the scrape...
    samples = _samples(recorder)  # ...which counts them
    assert recorder.pending == []
    labels = {"route": CHAT, "model": "fast", "provider": "openai", "status": "200"}
    assert _value(samples["mini_llm_requests"], "mini_llm_requests_total", **labels) == sent
    assert _value(samples["mini_llm_streams"], "mini_llm_streams_total", outcome="complete") == sent
    assert _value(samples["mini_llm_streams_active"], "mini_llm_streams_active") == 0
    tokens = samples["mini_llm_tokens"]
    assert _value(tokens, "mini_llm_tokens_total", provider="openai", model="gpt-4o-mini", kind="input") == sent
    recorder.finished(_request(recorder), 0.1, 0.0001)
    assert recorder.snapshot().counters["requests"][0].value == sent + 1  # every snapshot (the file writes too)


def test_a_worker_under_a_dead_workers_pid_keeps_its_counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new worker may get the pid of one that died: the dead one's file stays, and its counters with it."""
    dead = _recorder()  # made before the folder is set: it never writes on its own
    for _ in range(7):
        dead.finished(_request(dead), 0.1, 0.0001)
    # What the dead worker wrote under this same pid, with its own start time.
    write(str(tmp_path), msgspec.structs.replace(dead.snapshot(live=True), started="1"))
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))
    recorder = _recorder()

    async def traffic() -> None:
        recorder.finished(_request(recorder), 0.1, 0.0001)
        recorder.close()  # this worker's own write

    asyncio.run(traffic())
    assert len(list(tmp_path.iterdir())) == 2
    assert recorder.merged().counters["requests"] == {(CHAT, "fast", "openai", "200"): 8}
    [other] = read_others(str(tmp_path), os.getpid(), this_process())
    assert other.started == "1"
    assert not other.live  # the pid runs (this very process), but not the worker that wrote it
