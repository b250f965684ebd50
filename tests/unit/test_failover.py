"""The attempt loop's rules on a fake clock: what is retried, what moves to the next key or target, what commits.

The answers are scripted per attempt; the sleeps advance the clock instead of waiting. The same rules
run over real TCP in tests/e2e/test_failover*.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from mini_llm.config import load_settings
from mini_llm.errors import GatewayError, UpstreamTimeout, UpstreamUnreachable, clip
from mini_llm.gateway.failover import Failover, FailoverRun
from mini_llm.gateway.routing import Router
from mini_llm.providers import Target

KEYS = ("sk-first-key-000000000001", "sk-second-key-00000000002")


@dataclass
class Clock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Scripted:
    """One attempt's answer; `discarded` says the loop let it go."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    error_event: bool = False
    sent_to: Target | None = None  # filled in when it answers
    discarded: bool = False

    @property
    def target(self) -> Target:
        assert self.sent_to is not None
        return self.sent_to

    def discard(self) -> None:
        self.discarded = True

    async def detach(self) -> GatewayError | None:
        return None


Step = Scripted | Exception


@dataclass
class Loop:
    failover: Failover
    router: Router
    clock: Clock
    sent: list[tuple[str, str, str | None]] = field(default_factory=list)  # (provider, model, key)
    answers: list[Scripted] = field(default_factory=list)

    def run(self, model: str, script: list[Step] | Callable[[Target], Step]) -> tuple[Scripted, FailoverRun]:
        steps: Iterator[Step] | None = iter(script) if isinstance(script, list) else None

        async def attempt(target: Target) -> Scripted:
            self.sent.append((target.provider.name, target.model, target.key))
            step = next(steps) if steps is not None else script(target)  # type: ignore[operator]
            if isinstance(step, Exception):
                raise step
            step.sent_to = target
            self.answers.append(step)
            return step

        run = FailoverRun()
        hops = self.router.plan(model, "openai", "/v1/chat/completions")
        return asyncio.run(self.failover.run(hops, attempt, run)), run


def make_loop(aliases: dict[str, object] | None = None, **routing: str) -> Loop:
    env = {"OPENAI_API_KEYS": ",".join(KEYS), "NEBIUS_API_KEY": "nb-key-0000000000000000003"}
    env |= {f"MINI_LLM_{name.upper()}": value for name, value in routing.items()}
    if aliases:
        env["MINI_LLM_MODEL_ALIASES"] = json.dumps(aliases)
    settings = load_settings(env)
    clock = Clock()
    failover = Failover(settings, settings.providers, clock=clock, rng=random.Random(1), sleep=clock.sleep)
    return Loop(failover, Router(settings.providers, settings.aliases), clock)


def ok() -> Scripted:
    return Scripted(200)


def status(code: int, **headers: str) -> Scripted:
    return Scripted(code, [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()])


def refused() -> UpstreamUnreachable:
    return UpstreamUnreachable("cannot reach provider 'openai' (Connection refused)")


class TestRetries:
    @pytest.mark.parametrize("failure", [408, 429, 500, 502, 503, 504, 529, "refused", "timeout", "error-event"])
    def test_every_retryable_failure_then_a_success(self, failure: int | str) -> None:
        loop = make_loop(key_rate_limit_cooldown="0")
        first: Step
        if failure == "refused":
            first = refused()
        elif failure == "timeout":
            first = UpstreamTimeout("provider 'openai' went silent for 1s before answering")
        elif failure == "error-event":
            first = Scripted(200, error_event=True)
        else:
            first = status(int(failure))
        answer, run = loop.run("gpt-4o", [first, ok()])
        assert answer.status == 200 and not answer.error_event
        assert len(loop.sent) == 2
        assert run.answered_by is not None and run.answered_by.model == "gpt-4o"
        if isinstance(first, Scripted):
            assert first.discarded  # the failed answer was let go once the retry answered

    @pytest.mark.parametrize("code", [400, 404, 409, 413, 422])
    def test_other_client_errors_are_the_answer_at_once(self, code: int) -> None:
        loop = make_loop()
        answer, _run = loop.run("gpt-4o", [status(code), ok()])
        assert answer.status == code and len(loop.sent) == 1 and loop.clock.sleeps == []

    def test_retries_then_the_next_target(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b", "openai:c"]}, retries="1")
        _answer, run = loop.run("c", [status(503), status(503), refused(), refused(), ok()])
        assert [(p, m) for p, m, _ in loop.sent] == [("openai", "a")] * 2 + [("nebius", "b")] * 2 + [("openai", "c")]
        assert run.answered_by is not None and run.answered_by.model == "c"
        assert len(loop.clock.sleeps) == 2  # one backoff per retry, none between targets
        assert all(0 <= sleep <= 0.25 * 2**n for n, sleep in enumerate(loop.clock.sleeps))

    def test_a_retry_waits_at_least_the_retry_after(self) -> None:
        loop = make_loop()
        loop.run("gpt-4o", [status(503, retry_after="3"), ok()])
        assert loop.clock.sleeps == [3.0]

    def test_a_retry_after_beyond_the_maximum_moves_on_at_once(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, retry_after_max="2")
        _answer, _ = loop.run("c", [status(503, retry_after="30"), ok()])
        assert [m for _, m, _ in loop.sent] == ["a", "b"] and loop.clock.sleeps == []

    def test_should_retry_false_moves_on_without_a_retry(self) -> None:
        loop = make_loop()
        answer, _ = loop.run("gpt-4o", [status(503, x_should_retry="false"), ok()])
        assert answer.status == 503 and len(loop.sent) == 1  # no retry of that target: its answer goes back
        loop = make_loop({"c": ["openai:a", "nebius:b"]})
        answer, _ = loop.run("c", [status(503, x_should_retry="false"), ok()])
        assert answer.status == 200 and [m for _, m, _ in loop.sent] == ["a", "b"]  # the next target still is

    def test_a_429_that_says_not_to_retry_is_not_waited_for(self) -> None:
        loop = make_loop(retry_after_max="20")
        loop.failover.pools["openai"] = type(loop.failover.pools["openai"])(KEYS[:1], loop.clock)
        answer, _ = loop.run("gpt-4o", [status(429, retry_after="1", x_should_retry="false"), ok()])
        assert answer.status == 429 and len(loop.sent) == 1 and loop.clock.sleeps == []

    def test_a_full_pool_is_no_verdict_on_the_provider(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, breaker_failures="1")
        full = UpstreamTimeout("no connection to provider 'openai' came free within 1s", "pool-full")
        answer, run = loop.run("c", [full, ok()])
        assert answer.status == 200 and [m for _, m, _ in loop.sent] == ["a", "b"]  # not retried: the next target
        assert run.records[0].outcome == "pool-full"
        assert loop.failover.breakers.get("openai", "a").state == "closed"


class TestEverythingFails:
    def test_the_last_answer_is_relayed_and_the_earlier_ones_let_go(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, retries="0")
        answer, run = loop.run("c", [status(500), status(529)])
        assert answer.status == 529 and not answer.discarded
        assert loop.answers[0].discarded
        assert run.answered_by is not None and run.answered_by.provider.name == "nebius"

    def test_an_answer_beats_a_later_failure_without_one(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, retries="0")
        answer, _ = loop.run("c", [status(503), refused()])
        assert answer.status == 503

    def test_no_answer_at_all_lists_every_attempt(self) -> None:
        loop = make_loop(retries="1", retry_backoff_base="0.01")
        with pytest.raises(UpstreamTimeout) as info:
            loop.run("gpt-4o", [refused(), UpstreamTimeout("provider 'openai' went silent for 1s before answering")])
        message = info.value.message
        assert message.startswith("provider 'openai' went silent for 1s before answering [2 attempts: ")
        assert (
            "openai:gpt-4o key 1 unreachable after 0 ms: cannot reach provider 'openai' (Connection refused)" in message
        )
        assert message.endswith("openai:gpt-4o key 2 timeout after 0 ms]")
        assert KEYS[0] not in message and KEYS[1] not in message

    def test_a_wait_for_a_cooling_key_never_sleeps_past_the_budget(self) -> None:
        # Cooldowns off: the key is free at once, so the wait is the backoff, which must fit the budget too.
        loop = make_loop(key_rate_limit_cooldown="0", retry_backoff_base="8", retry_backoff_max="8", retry_budget="1")
        loop.failover._rng = random.Random(3)
        answer, run = loop.run("gpt-4o", lambda target: status(429))
        assert answer.status == 429 and len(loop.sent) == 2  # both keys, then no wait that would end past 1 s
        assert loop.clock.sleeps == [] and run.budget_ran_out

    def test_the_budget_stops_further_attempts(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, retry_budget="2")

        def slow_failure(target: Target) -> Step:
            loop.clock.now += 1.5
            return status(503)

        answer, _run = loop.run("c", slow_failure)
        assert answer.status == 503
        # 1.5 s used: a backoff may still fit; after the second, 3 s are gone and nothing more starts.
        assert len(loop.sent) == 2
        assert loop.clock.now - 1000.0 <= 2 + 1.5 + 0.25


class TestKeys:
    def test_a_refused_key_is_swapped_at_once_and_set_aside(self) -> None:
        loop = make_loop(retries="0")
        answer, _run = loop.run("gpt-4o", [status(401), ok()])
        assert answer.status == 200 and [k for _, _, k in loop.sent] == list(KEYS)
        assert loop.clock.sleeps == []  # not a retry: no backoff, and MINI_LLM_RETRIES=0 allowed it
        loop.sent.clear()
        for _ in range(3):
            loop.run("gpt-4o", [ok()])
        assert [k for _, _, k in loop.sent] == [KEYS[1]] * 3  # key 1 cools for 300 s
        loop.clock.now += 300
        loop.sent.clear()
        loop.run("gpt-4o", [ok()])
        loop.run("gpt-4o", [ok()])
        assert {k for _, _, k in loop.sent} == set(KEYS)

    def test_every_key_refused_relays_the_last_refusal(self) -> None:
        loop = make_loop()
        answer, _ = loop.run("gpt-4o", [status(401), status(403)])
        assert answer.status == 403 and len(loop.sent) == 2

    def test_with_cooldowns_off_a_refused_key_is_still_not_asked_twice(self) -> None:
        loop = make_loop(key_auth_cooldown="0")
        answer, _ = loop.run("gpt-4o", [status(401), status(401), ok()])
        assert answer.status == 401 and [k for _, _, k in loop.sent] == list(KEYS)
        answer, _ = loop.run("gpt-4o", [ok()])
        assert answer.status == 200  # and nothing cools: the next request may use either key

    def test_a_key_cooling_after_a_refusal_is_not_waited_for(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, key_auth_cooldown="2", retry_after_max="20")
        loop.run("c", [status(401), status(401), ok()])  # both OpenAI keys refused: nebius answers
        loop.sent.clear()
        answer, _ = loop.run("c", [ok()])
        assert answer.status == 200 and [p for p, _, _ in loop.sent] == ["nebius"]
        assert loop.clock.sleeps == []  # 2 s would fit MINI_LLM_RETRY_AFTER_MAX, but a refused key is no 429

    def test_the_429_example_of_the_issue(self) -> None:
        # MINI_LLM_RETRIES=1, one key, 429 retry-after 1 every time: two requests one second apart, the 429 back.
        loop = make_loop(retries="1")
        loop.failover.pools["openai"] = type(loop.failover.pools["openai"])(KEYS[:1], loop.clock)
        answer, _run = loop.run("gpt-4o", lambda target: status(429, retry_after="1"))
        assert answer.status == 429 and len(loop.sent) == 2
        assert len(loop.clock.sleeps) == 1 and 1.0 < loop.clock.sleeps[0] < 1.1  # a hair more: see WAKE_SLACK

    def test_every_key_cooling_without_an_answer_is_a_429_saying_when(self) -> None:
        loop = make_loop(retry_after_max="1")
        loop.run("gpt-4o", [status(429, retry_after="5"), status(429, retry_after="7")])
        with pytest.raises(GatewayError) as info:
            loop.run("gpt-4o", [ok()])
        assert (info.value.status, info.value.code) == (429, "rate_limited")
        assert (b"retry-after", b"5") in info.value.headers


class TestBreaker:
    def test_opens_is_skipped_probes_once_and_closes(self) -> None:
        loop = make_loop({"c": ["openai:a", "nebius:b"]}, retries="0", breaker_failures="2", breaker_cooldown="30")
        for _ in range(2):
            loop.run("c", [status(500), ok()])  # a fails, b answers
        loop.sent.clear()
        loop.run("c", [ok()])
        assert [m for _, m, _ in loop.sent] == ["b"]  # a's breaker is open
        loop.clock.now += 30
        loop.sent.clear()
        loop.run("c", [ok()])  # the probe
        loop.run("c", [ok()])
        assert [m for _, m, _ in loop.sent] == ["a", "a"]

    def test_every_breaker_open_is_a_503_saying_when(self) -> None:
        loop = make_loop(retries="0", breaker_failures="1", breaker_cooldown="30")
        loop.run("gpt-4o", [status(500)])
        with pytest.raises(GatewayError) as info:
            loop.run("gpt-4o", [ok()])
        assert (info.value.status, info.value.code) == (503, "circuit_open")
        assert (b"retry-after", b"30") in info.value.headers


def test_a_cancelled_wait_lets_go_of_the_answer_it_kept() -> None:
    loop = make_loop()
    held = status(503)

    async def scenario() -> None:
        async def attempt(target: Target) -> Scripted:
            held.sent_to = target
            return held

        async def never(seconds: float) -> None:
            await asyncio.Event().wait()

        loop.failover._sleep = never  # the client leaves during the backoff
        hops = loop.router.plan("gpt-4o", "openai", "/v1/chat/completions")
        task = asyncio.ensure_future(loop.failover.run(hops, attempt, FailoverRun()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert held.discarded


@pytest.mark.parametrize("model", ["x\n2026-12-01 12:00:00 INFO POST /v1/admin 200", "a; b", "a]", "m" * 300])
def test_a_model_that_could_forge_a_log_line_is_quoted_in_it(model: str) -> None:
    _, run = make_loop(retries="0").run(f"openai:{model}", [status(503)])
    line = run.log_fields()
    assert line == f"attempts=[openai:{clip(model)} key1 503 0.0ms]"  # quoted (repr) and cut, as `model=` is
    assert "\n" not in line and len(line) < 400
