"""Retries, key cooldowns, fallbacks, breakers and the budget, over real TCP against a scripted provider.

Each test names its own upstream models (scripts and breakers are per model) and, when it makes a
key cool, starts its own gateway (cooldowns are per provider and per worker). What the provider
received is the evidence: how many requests, with which key, and gaps as lower bounds only.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.failover_gateway import (
    KEY_1,
    KEY_2,
    AliasForm,
    Gateways,
    answered_by,
    assert_logged,
    attempts,
    call,
    on,
    refusing,
)
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.raw_http import Answer
from tests.e2e.scripted_provider import (
    ScriptedProvider,
    Step,
    Wire,
    answer_text,
    by_key,
    empty_stream,
    error_body,
    first_event_error,
    hang,
    ok,
    overloaded,
    rate_limited,
    reply,
    reset,
)


@pytest.fixture(scope="module")
def gateway(server: ScriptedProvider) -> Iterator[GatewayProcess]:
    """Retries on one target, no key state involved: one gateway serves every such case."""
    started = Gateways()
    yield started.start([on(server, "oa"), on(server, "an", protocol="anthropic")])
    started.stop_all()


def _text(answer: Answer, wire: Wire = "openai") -> str:
    data = answer.json()
    text: str = data["content"][0]["text"] if wire == "anthropic" else data["choices"][0]["message"]["content"]
    return text


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _gateway_error(answer: Answer) -> dict[str, str]:
    """The error of a gateway-made answer: OpenAI shape, and no provider answered it."""
    assert answered_by(answer) is None, answer.headers
    error: dict[str, str] = answer.json()["error"]
    return error


RETRYABLE: dict[str, Step] = {
    "408": reply(408),
    "500": reply(500),
    "502": reply(502),
    "503": reply(503),
    "504": reply(504),
    "529": overloaded(),
    "reset": reset(),
    "timeout": hang(10),  # longer than the MINI_LLM_UPSTREAM_TIMEOUT of these gateways
}


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("failure", RETRYABLE)
def test_a_retryable_failure_then_success_on_a_retry(
    gateway: GatewayProcess, server: ScriptedProvider, failure: str, wire: Wire
) -> None:
    model = f"retry-{failure}-{wire}"
    server.script(model, RETRYABLE[failure], ok())
    target = f"{'an' if wire == 'anthropic' else 'oa'}:{model}"
    answer = call(gateway, target, wire=wire)
    assert answer.status == 200, answer.body
    assert _text(answer, wire) == answer_text(model)
    assert len(server.seen(model)) == 2
    assert (answered_by(answer), attempts(answer)) == (target, 2)


def test_a_429_on_the_only_key_is_waited_out_then_retried(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "one")])
    server.script("wait-429", rate_limited("1"), ok())
    answer = call(gateway, "one:wait-429")
    assert answer.status == 200
    first, second = server.seen("wait-429")
    assert second.at - first.at >= 1.0  # the key's retry-after, waited out as the retry
    assert (answered_by(answer), attempts(answer)) == ("one:wait-429", 2)


def test_no_connection_falls_to_the_next_target(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([refusing("dead"), on(server, "live")], {"refused": ["dead:m-refused", "live:m-refused"]})
    server.script("m-refused", ok())
    answer = call(gateway, "refused")
    assert answer.status == 200
    assert _text(answer) == answer_text("m-refused")
    # Three tries on the refusing target (MINI_LLM_RETRIES=2), then the next one.
    assert (answered_by(answer), attempts(answer)) == ("live:m-refused", 4)
    assert len(server.seen("m-refused")) == 1


def test_fallback_to_the_second_target(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "a"), on(server, "b")], {"two": ["a:two-first", "b:two-second"]})
    server.script("two-first", reset())
    server.script("two-second", ok())
    answer = call(gateway, "two")
    assert answer.status == 200 and _text(answer) == answer_text("two-second")
    assert (len(server.seen("two-first")), len(server.seen("two-second"))) == (3, 1)
    assert (answered_by(answer), attempts(answer)) == ("b:two-second", 4)


def test_fallback_to_the_third_target(gateways: Gateways, server: ScriptedProvider) -> None:
    chain = ["a:three-first", "b:three-second", "c:three-third"]
    gateway = gateways.start([on(server, "a"), on(server, "b"), on(server, "c")], {"three": chain})
    server.script("three-first", reply(500))
    server.script("three-second", overloaded())
    server.script("three-third", ok())
    answer = call(gateway, "three")
    assert answer.status == 200 and _text(answer) == answer_text("three-third")
    first, second, third = (server.seen(model) for model in ("three-first", "three-second", "three-third"))
    assert (len(first), len(second), len(third)) == (3, 3, 1)
    assert first[-1].at <= second[0].at and second[-1].at <= third[0].at  # in chain order
    assert (answered_by(answer), attempts(answer)) == ("c:three-third", 7)


def test_a_weighted_alias_tries_the_others_heaviest_first(gateways: Gateways, server: ScriptedProvider) -> None:
    weights = {"light": 1, "heavy": 5, "middle": 2}
    alias: AliasForm = {"targets": [f"{name}:w-{name}" for name in weights], "weights": list(weights.values())}
    providers = [on(server, name) for name in weights]
    gateway = gateways.start(providers, {"spread": alias}, retries="0", breaker_failures="0")
    for name in weights:
        server.script(f"w-{name}", reply(503))
    for _ in range(12):
        answer = call(gateway, "spread")
        assert (answer.status, attempts(answer)) == (503, 3)
    seen = sorted((s for name in weights for s in server.seen(f"w-{name}")), key=lambda s: s.at)
    orders = [[s.model.removeprefix("w-") for s in seen[i : i + 3]] for i in range(0, len(seen), 3)]
    for order in orders:  # the first one drawn by weight, the others heaviest first
        assert order[1:] == sorted(order[1:], key=weights.__getitem__, reverse=True), orders
    assert "heavy" in {order[0] for order in orders}  # drawn first 5 times in 8: never in 12 is ~1e-5


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
def test_other_4xx_go_back_unchanged_with_no_retry_and_no_fallback(
    gateways: Gateways, server: ScriptedProvider, status: int
) -> None:
    model = f"refuse-{status}"
    gateway = gateways.start([on(server, "a"), on(server, "b")], {model: [f"a:{model}", f"b:{model}-next"]})
    refusal = {"error": {"message": "scripted refusal", "type": "invalid_request_error", "param": "x", "code": "c"}}
    server.script(model, reply(status, refusal, x_request_id="req_refusal"))
    server.script(f"{model}-next", ok())
    answer = call(gateway, model)
    assert answer.status == status
    assert answer.json() == refusal
    assert answer.headers[b"x-request-id"] == b"req_refusal"
    assert (answered_by(answer), attempts(answer)) == (f"a:{model}", 1)
    assert (len(server.seen(model)), len(server.seen(f"{model}-next"))) == (1, 0)


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_failure_on_key_1_goes_to_key_2_and_key_1_rests_for_its_cooldown(
    gateways: Gateways, server: ScriptedProvider, status: int
) -> None:
    cooldown = 3.0
    gateway = gateways.start([on(server, "keys", KEY_1, KEY_2)], key_auth_cooldown=str(cooldown))
    model = f"revoked-{status}"
    server.script(model, by_key({KEY_1: reply(status), KEY_2: ok()}))
    answer = call(gateway, f"keys:{model}")
    assert answer.status == 200
    assert server.keys(model) == [KEY_1, KEY_2]
    # The key swap is no retry, but it is an upstream request.
    assert (answered_by(answer), attempts(answer)) == (f"keys:{model}", 2)
    for _ in range(3):
        later = call(gateway, f"keys:{model}")
        assert (later.status, attempts(later)) == (200, 1)
    revoked = server.seen(model)[0].at
    resting = [seen.key for seen in server.seen(model)[2:] if seen.at < revoked + cooldown]
    assert resting and set(resting) == {KEY_2}
    _sleep_until(revoked + cooldown + 0.3)
    before = len(server.seen(model))
    for _ in range(2):
        assert call(gateway, f"keys:{model}").status == 200
    assert KEY_1 in server.keys(model)[before:]  # back in the rotation once its cooldown ended


def test_an_auth_failure_on_the_last_key_falls_to_the_next_target_and_skips_it_afterwards(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    """A key refused for 401 is not waited for, even when its cooldown (2 s) is within RETRY_AFTER_MAX (5 s)."""
    gateway = gateways.start([on(server, "solo"), on(server, "backup")], {"auth-chain": ["solo:au", "backup:au-b"]})
    server.script("au", reply(401))
    server.script("au-b", ok())
    answer = call(gateway, "auth-chain")
    assert (answer.status, answered_by(answer), attempts(answer)) == (200, "backup:au-b", 2)
    again = call(gateway, "auth-chain")
    assert (again.status, answered_by(again), attempts(again)) == (200, "backup:au-b", 1)
    assert len(server.seen("au")) == 1  # the cooling key was not tried again, nor retried


def test_an_auth_cooldown_skips_the_provider_for_its_whole_cooldown(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    cooldown = 2.5
    providers = [on(server, "revoked"), on(server, "spare")]
    settings = {"key_auth_cooldown": str(cooldown), "retry_after_max": "20"}  # a refused key is never waited for
    gateway = gateways.start(providers, {"skip": ["revoked:sk", "spare:sk-spare"]}, **settings)
    server.script("sk", reply(401), ok())
    server.script("sk-spare", ok())
    assert answered_by(call(gateway, "skip")) == "spare:sk-spare"
    cooled = server.seen("sk")[0].at
    while time.monotonic() < cooled + cooldown - 0.4:
        assert answered_by(call(gateway, "skip")) == "spare:sk-spare"
        time.sleep(0.2)
    _sleep_until(cooled + cooldown + 0.3)
    back = call(gateway, "skip")
    assert answered_by(back) == "revoked:sk"
    later = server.seen("sk")[1:]
    assert len(later) == 1 and later[0].at >= cooled + cooldown  # nothing reached it while it cooled


RATE_LIMITS: dict[str, Step] = {
    "retry-after": rate_limited("3"),
    "retry-after-ms": reply(429, retry_after_ms="3000"),
    "no-hint": rate_limited(),  # MINI_LLM_KEY_RATE_LIMIT_COOLDOWN applies
}


@pytest.mark.parametrize("hint", RATE_LIMITS)
def test_a_429_moves_to_the_next_key_at_once_and_that_key_rests(
    gateways: Gateways, server: ScriptedProvider, hint: str
) -> None:
    rest = 3.0  # what each hint asks for; with a hint the default cooldown is far longer, so only the hint frees key 1
    default = rest if hint == "no-hint" else 30.0
    gateway = gateways.start([on(server, "pair", KEY_1, KEY_2)], key_rate_limit_cooldown=str(default))
    model = f"busy-key-{hint}"
    server.script(model, by_key({KEY_1: RATE_LIMITS[hint], KEY_2: ok()}))
    answer = call(gateway, f"pair:{model}")
    assert (answer.status, attempts(answer)) == (200, 2)
    assert server.keys(model) == [KEY_1, KEY_2]
    limited = server.seen(model)[0].at
    for _ in range(2):
        assert attempts(call(gateway, f"pair:{model}")) == 1
    resting = [seen.key for seen in server.seen(model)[2:] if seen.at < limited + rest]
    assert resting and set(resting) == {KEY_2}
    _sleep_until(limited + rest + 0.3)
    before = len(server.seen(model))
    for _ in range(2):
        assert call(gateway, f"pair:{model}").status == 200
    assert KEY_1 in server.keys(model)[before:]


def test_429_with_retry_after_1_every_time_is_waited_out_once_then_relayed(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    """The issue's example: MINI_LLM_RETRIES=1, one key, 429 `retry-after: 1` every time."""
    gateway = gateways.start([on(server, "limited")], retries="1")
    server.script("always-429", rate_limited("1"))
    answer = call(gateway, "limited:always-429")
    first, second = server.seen("always-429")  # exactly two
    assert second.at - first.at >= 1.0
    assert answer.status == 429
    assert answer.headers[b"retry-after"] == b"1"
    assert answer.json() == error_body("openai", 429, "scripted 429")  # the provider's own answer
    assert (answered_by(answer), attempts(answer)) == ("limited:always-429", 2)


def test_429_with_retry_after_1_on_every_key_never_uses_a_key_before_it_is_free(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    gateway = gateways.start([on(server, "both", KEY_1, KEY_2)], retries="1")
    server.script("both-429", rate_limited("1"))
    answer = call(gateway, "both:both-429")
    assert answer.status == 429
    seen = server.seen("both-429")
    assert [s.key for s in seen[:2]] == [KEY_1, KEY_2]  # the second key at once
    assert len(seen) >= 3  # then the wait for a key, and the retry
    assert seen[2].at - seen[0].at >= 1.0
    for key in (KEY_1, KEY_2):
        times = [s.at for s in seen if s.key == key]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), (key, times)
    assert attempts(answer) == len(seen)


def test_a_429_longer_than_retry_after_max_goes_to_the_next_target_for_its_whole_cooldown(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    providers = [on(server, "cool"), on(server, "warm")]
    gateway = gateways.start(providers, {"cooling": ["cool:cl", "warm:cl-warm"]}, retry_after_max="1")
    server.script("cl", rate_limited("3"), ok())
    server.script("cl-warm", ok())
    first = call(gateway, "cooling")
    assert (answered_by(first), attempts(first)) == ("warm:cl-warm", 2)
    cooled = server.seen("cl")[0].at
    # While more than MINI_LLM_RETRY_AFTER_MAX of the cooldown is left, the next target answers at once;
    # in its last second a request may wait for the key instead, but none reaches it before it is free.
    while time.monotonic() < cooled + 3 - 1.4:
        during = call(gateway, "cooling")
        assert (answered_by(during), attempts(during)) == ("warm:cl-warm", 1)
        time.sleep(0.2)
    _sleep_until(cooled + 3 + 0.3)
    assert answered_by(call(gateway, "cooling")) == "cool:cl"
    later = server.seen("cl")[1:]
    assert len(later) == 1 and later[0].at >= cooled + 3


def test_every_key_cooling_gets_a_gateway_made_429_with_retry_after(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    gateway = gateways.start([on(server, "drained")], retry_after_max="1")
    server.script("drain", rate_limited("3"))
    relayed = call(gateway, "drained:drain")
    assert (relayed.status, relayed.headers[b"retry-after"]) == (429, b"3")
    assert relayed.json() == error_body("openai", 429, "scripted 429")
    made = call(gateway, "drained:drain")
    assert made.status == 429
    assert 1 <= int(made.headers[b"retry-after"]) <= 3  # integer seconds until the key frees up
    assert _gateway_error(made)["message"] != "scripted 429"
    assert attempts(made) == 0
    assert len(server.seen("drain")) == 1


def test_the_breaker_opens_probes_reopens_and_closes(gateways: Gateways, server: ScriptedProvider) -> None:
    cooldown = 1.5
    settings = {"retries": "1", "breaker_failures": "2", "breaker_cooldown": str(cooldown)}
    gateway = gateways.start([on(server, "flaky")], {"solo": ["flaky:brk"]}, **settings)
    server.script("brk", reply(500), reply(500), reply(500), ok())
    opened = call(gateway, "solo")
    assert (opened.status, attempts(opened)) == (500, 2)  # two failures in a row: open
    assert answered_by(opened) == "flaky:brk"  # the provider's last answer, relayed
    skipped = call(gateway, "solo")
    assert skipped.status == 503
    assert _gateway_error(skipped)["code"] == "circuit_open"
    assert int(skipped.headers[b"retry-after"]) >= 1
    assert attempts(skipped) == 0
    assert len(server.seen("brk")) == 2
    _sleep_until(server.seen("brk")[-1].at + cooldown + 0.3)
    failed_probe = call(gateway, "solo")
    assert (failed_probe.status, attempts(failed_probe)) == (500, 1)  # one probe, and it re-opens
    assert call(gateway, "solo").status == 503
    assert len(server.seen("brk")) == 3
    _sleep_until(server.seen("brk")[-1].at + cooldown + 0.3)
    probe = call(gateway, "solo")
    assert (probe.status, attempts(probe)) == (200, 1)
    closed = call(gateway, "solo")
    assert (closed.status, attempts(closed)) == (200, 1)
    assert len(server.seen("brk")) == 5


def test_only_one_request_probes_a_half_open_breaker(gateways: Gateways, server: ScriptedProvider) -> None:
    cooldown = 1.0
    settings = {"retries": "1", "breaker_failures": "2", "breaker_cooldown": str(cooldown), "upstream_timeout": "10"}
    gateway = gateways.start([on(server, "flaky")], {"solo": ["flaky:probe"]}, **settings)
    server.script("probe", reply(500), reply(500), ok(delay=3), ok())
    assert call(gateway, "solo").status == 500
    _sleep_until(server.seen("probe")[-1].at + cooldown + 0.3)
    answers: list[Answer] = []
    prober = threading.Thread(target=lambda: answers.append(call(gateway, "solo")))
    prober.start()
    assert server.wait_for(lambda: len(server.seen("probe")) == 3)
    meanwhile = call(gateway, "solo")
    assert prober.is_alive(), "the probe should still be out"
    prober.join(10)
    assert meanwhile.status == 503 and _gateway_error(meanwhile)["code"] == "circuit_open"
    assert [answer.status for answer in answers] == [200]
    assert call(gateway, "solo").status == 200
    assert len(server.seen("probe")) == 4


def test_an_open_breaker_sends_requests_to_the_next_target(gateways: Gateways, server: ScriptedProvider) -> None:
    settings = {"retries": "1", "breaker_failures": "2", "breaker_cooldown": "30"}
    gateway = gateways.start([on(server, "x"), on(server, "y")], {"pair": ["x:brk-x", "y:brk-y"]}, **settings)
    server.script("brk-x", reply(500))
    server.script("brk-y", ok())
    first = call(gateway, "pair")
    assert (first.status, answered_by(first), attempts(first)) == (200, "y:brk-y", 3)
    second = call(gateway, "pair")
    assert (second.status, answered_by(second), attempts(second)) == (200, "y:brk-y", 1)
    assert len(server.seen("brk-x")) == 2


def test_failures_that_are_not_consecutive_never_open_the_breaker(gateways: Gateways, server: ScriptedProvider) -> None:
    settings = {"retries": "1", "breaker_failures": "2", "breaker_cooldown": "30"}
    gateway = gateways.start([on(server, "uneven")], {"solo": ["uneven:alternate"]}, **settings)
    server.script("alternate", reply(500), ok(), reply(500), ok(), reply(500), ok())
    for _ in range(3):
        answer = call(gateway, "solo")
        assert (answer.status, attempts(answer)) == (200, 2)


def test_a_wait_that_would_end_past_the_budget_is_not_started(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "tight")], retries="3", retry_budget="1")
    server.script("over-budget", rate_limited("2"))
    answer = call(gateway, "tight:over-budget")
    assert (answer.status, answer.headers[b"retry-after"]) == (429, b"2")  # the last answer, as it came
    assert (answered_by(answer), attempts(answer)) == ("tight:over-budget", 1)
    assert len(server.seen("over-budget")) == 1


def test_a_budget_that_runs_out_between_timeouts_ends_with_the_last_failure(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    # Attempt 1 times out at 1 s; a backoff of at most 0.2 s ends within the 1.8 s budget, so attempt 2
    # goes out; it times out past the budget, so no third one starts although 5 retries are allowed.
    gateway = gateways.start([on(server, "slow")], retries="5", retry_budget="1.8", upstream_timeout="1")
    server.script("silent", hang(10))
    answer = call(gateway, "slow:silent")
    assert answer.status == 504
    assert _gateway_error(answer)["code"] == "upstream_timeout"
    assert len(server.seen("silent")) == 2
    assert attempts(answer) == 2


def test_no_upstream_answering_is_a_502_listing_every_attempt(gateways: Gateways) -> None:
    gateway = gateways.start([refusing("d1"), refusing("d2")], {"down": ["d1:gone", "d2:gone-too"]}, retries="1")
    answer = call(gateway, "down")
    assert answer.status == 502
    error = _gateway_error(answer)
    assert error["code"] == "upstream_unreachable"
    message = error["message"]
    assert message.count("d1:gone") == 2 and message.count("d2:gone-too") == 2
    assert message.index("d1:gone") < message.index("d2:gone-too")
    assert message.count("ms") >= 4
    assert attempts(answer) == 4


def test_a_timeout_as_the_last_failure_is_a_504(gateways: Gateways, server: ScriptedProvider) -> None:
    providers = [on(server, "r"), on(server, "h")]
    gateway = gateways.start(providers, {"broken": ["r:resets", "h:hangs"]}, retries="0")
    server.script("resets", reset())
    server.script("hangs", hang(10))
    answer = call(gateway, "broken")
    assert answer.status == 504
    error = _gateway_error(answer)
    assert error["code"] == "upstream_timeout"
    assert "r:resets" in error["message"] and "h:hangs" in error["message"]
    assert attempts(answer) == 2


def test_the_last_answer_is_relayed_scrubbed_of_the_key_it_was_sent_with(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    gateway = gateways.start([on(server, "echo", KEY_1, KEY_2)], retries="1")
    echoes = {
        key: reply(503, {"error": {"message": f"overloaded for key {key}", "type": "x"}}) for key in (KEY_1, KEY_2)
    }
    server.script("echo-key", by_key(echoes))
    answer = call(gateway, "echo:echo-key")
    assert answer.status == 503
    assert len(server.seen("echo-key")) == 2
    assert KEY_1.encode() not in answer.body and KEY_2.encode() not in answer.body
    assert b"overloaded for key ***" in answer.body


def test_the_attempt_headers_on_a_first_try_success(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "p")], {"named": "p:first-try"})
    server.script("first-try", ok())
    for model in ("named", "p:first-try"):
        answer = call(gateway, model)
        assert (answer.status, answered_by(answer), attempts(answer)) == (200, "p:first-try", 1)
    mock = call(gateway, "mock")
    assert (mock.status, answered_by(mock), attempts(mock)) == (200, "mock:mock", 1)


def test_the_access_log_lists_each_attempt_in_order(gateways: Gateways, server: ScriptedProvider) -> None:
    providers = [on(server, "a", KEY_1, KEY_2), on(server, "b")]
    gateway = gateways.start(providers, {"logged": ["a:log-a", "b:log-b"]}, retries="1")
    server.script("log-a", by_key({KEY_1: reply(401), KEY_2: reply(503)}))
    server.script("log-b", ok())
    answer = call(gateway, "logged")
    assert (answer.status, attempts(answer)) == (200, 4)
    expected = [("a:log-a", "key1", "401"), ("a:log-a", "key2", "503"), ("a:log-a", "key2", "503")]
    assert_logged(gateway, "logged", [*expected, ("b:log-b", "key1", "200")])
    assert KEY_1 not in gateway.log and KEY_2 not in gateway.log


def test_the_access_log_names_each_kind_of_failure(gateways: Gateways, server: ScriptedProvider) -> None:
    steps: dict[str, Step] = {
        "r:k-reset": reset(),
        "h:k-hang": hang(10),
        "c:k-cut": empty_stream(),  # a stream that ends before its first event
        "e:k-event": first_event_error(),
        "g:k-good": ok(),
    }
    providers = [refusing("dead"), *(on(server, target.partition(":")[0]) for target in steps)]
    chain = ["dead:k-dead", *steps]
    gateway = gateways.start(providers, {"kinds": chain}, retries="0")
    for target, step in steps.items():
        server.script(target.partition(":")[2], step)
    answer = call(gateway, "kinds", stream=True)
    assert (answer.status, answered_by(answer), attempts(answer)) == (200, "g:k-good", 6)
    # "unreachable" is a connection refused: no request went out at all.
    outcomes = ["unreachable", "reset", "timeout", "cut", "error-event", "200"]
    assert_logged(
        gateway, "kinds", [(target, "key1", outcome) for target, outcome in zip(chain, outcomes, strict=True)]
    )
