"""Breaker and Breakers: open at the threshold, one probe at a time, a failed probe's full cooldown, bounded map."""

from __future__ import annotations

import pytest

from mini_llm.gateway.breaker import Breaker, Breakers


class FakeClock:
    """A clock the test moves by hand, so no test sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def opened(clock: FakeClock, threshold: int = 3, cooldown: float = 30) -> Breaker:
    breaker = Breaker(threshold, cooldown, clock)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "open"
    return breaker


def test_it_opens_after_threshold_consecutive_failures_only() -> None:
    breaker = Breaker(3, 30, FakeClock())
    for _ in range(2):
        breaker.failed()
    breaker.succeeded()  # the run is broken: counting starts again
    for _ in range(2):
        breaker.failed()
    assert (breaker.state, breaker.allow()) == ("closed", True)
    breaker.failed()
    assert (breaker.state, breaker.allow()) == ("open", False)


def test_threshold_zero_never_opens() -> None:
    breaker = Breaker(0, 30, FakeClock())
    for _ in range(100):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "closed"
    assert breaker.retry_in() == 0.0


def test_open_refuses_everyone_until_the_cooldown_is_over() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    assert breaker.retry_in() == 30
    clock.now += 29.999
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.001)
    clock.now += 0.001
    assert breaker.retry_in() == 0.0


def test_exactly_one_probe_goes_out_and_its_success_closes() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.now += 30
    assert [breaker.allow() for _ in range(5)] == [True, False, False, False, False]
    assert breaker.state == "half_open"
    assert breaker.retry_in() == 30
    breaker.succeeded()
    assert (breaker.state, breaker.failures, breaker.allow()) == ("closed", 0, True)


def test_a_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.now += 100  # long after the cooldown: the new one counts from the probe's failure
    assert breaker.allow()
    clock.now += 5
    breaker.failed()
    assert breaker.state == "open"
    assert breaker.retry_in() == 30
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_a_released_probe_lets_the_next_caller_probe_at_once() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.now += 30
    assert breaker.allow()
    assert not breaker.allow()
    breaker.released()
    assert breaker.state == "open"
    assert breaker.retry_in() == 0.0
    assert breaker.allow()
    assert not breaker.allow()


def test_release_while_closed_changes_nothing() -> None:
    breaker = Breaker(2, 30, FakeClock())
    breaker.failed()
    breaker.released()
    assert (breaker.state, breaker.failures) == ("closed", 1)
    breaker.failed()
    assert breaker.state == "open"


def test_late_failures_while_open_do_not_extend_the_cooldown() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.now += 20
    breaker.failed()  # an attempt allowed before it opened, ending now
    clock.now += 10
    assert breaker.allow()


def test_bad_settings_are_refused() -> None:
    for threshold, cooldown in ((-1, 30.0), (3, -1.0), (3, float("nan"))):
        with pytest.raises(ValueError, match="threshold"):
            Breaker(threshold, cooldown)
        with pytest.raises(ValueError, match="threshold"):
            Breakers(threshold, cooldown)


def test_breakers_are_one_per_target_and_created_lazily() -> None:
    breakers = Breakers(2, 30, FakeClock())
    assert len(breakers) == 0
    first = breakers.get("openai", "gpt-4o")
    assert breakers.get("openai", "gpt-4o") is first
    assert breakers.get("openai", "gpt-4o-mini") is not first
    assert breakers.get("other", "gpt-4o") is not first
    assert len(breakers) == 3


def test_open_ones_lists_targets_not_closed_for_health() -> None:
    clock = FakeClock()
    breakers = Breakers(1, 30, clock)
    breakers.get("openai", "gpt-4o").failed()
    breakers.get("anthropic", "claude-haiku-4-5").failed()
    breakers.get("anthropic", "claude-sonnet-4-5")
    clock.now += 30
    assert breakers.get("anthropic", "claude-haiku-4-5").allow()
    assert breakers.open_ones() == [
        ("openai", "gpt-4o", "open", 0.0),
        ("anthropic", "claude-haiku-4-5", "half_open", 30),
    ]


def test_breakers_off_share_one_breaker_and_keep_no_map() -> None:
    breakers = Breakers(0, 30, FakeClock())
    breaker = breakers.get("openai", "gpt-4o")
    assert breakers.get("openai", "other") is breaker
    breaker.failed()
    assert breaker.allow()
    assert len(breakers) == 0
    assert breakers.open_ones() == []


def full_map(blank: int, failing: int, open_: int) -> Breakers:
    """A full map, oldest first: `open_` open breakers, `failing` closed ones with a failure, `blank` ones."""
    breakers = Breakers(2, 30, FakeClock(), capacity=blank + failing + open_)
    for index in range(open_):
        breaker = breakers.get("p", f"open-{index}")
        breaker.failed()
        breaker.failed()
    for index in range(failing):
        breakers.get("p", f"failing-{index}").failed()
    for index in range(blank):
        breakers.get("p", f"blank-{index}")
    return breakers


def models(breakers: Breakers) -> list[str]:
    return [model for _, model, _, _ in breakers.open_ones()]


def test_a_full_map_drops_blank_breakers_first_down_to_three_quarters() -> None:
    breakers = full_map(blank=3, failing=2, open_=3)
    breakers.get("p", "new")  # 8 full: drop to 6 (blank-0, blank-1), then add
    assert len(breakers) == 7
    assert models(breakers) == ["open-0", "open-1", "open-2"]
    assert [breakers.get("p", f"failing-{index}").failures for index in range(2)] == [1, 1]
    assert len(breakers) == 7


def test_closed_breakers_with_failures_go_before_open_ones() -> None:
    breakers = full_map(blank=0, failing=2, open_=2)
    breakers.get("p", "new")  # 4 full: drop to 3 (failing-0), then add
    assert len(breakers) == 4
    assert models(breakers) == ["open-0", "open-1"]
    assert breakers.get("p", "failing-1").failures == 1


def test_open_breakers_go_oldest_first_when_nothing_else_is_left() -> None:
    breakers = full_map(blank=0, failing=0, open_=4)
    breakers.get("p", "new")
    assert models(breakers) == ["open-1", "open-2", "open-3"]
    assert len(breakers) == 4
