"""KeyPool: round-robin over a provider's keys, cooldowns that are never shortened, exclusion, a keyless slot."""

from __future__ import annotations

import pytest

from mini_llm.gateway.key_pool import KeyPool

KEYS = ("sk-one-1111111111", "sk-two-2222222222", "sk-three-333333333")


class FakeClock:
    """A clock the test moves by hand, so no test sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def picks(pool: KeyPool, count: int) -> list[int | None]:
    return [pool.pick() for _ in range(count)]


def test_keys_rotate_round_robin_with_their_bytes_encoded_once() -> None:
    pool = KeyPool(KEYS)
    assert len(pool) == 3
    assert picks(pool, 7) == [0, 1, 2, 0, 1, 2, 0]
    assert pool.key(1) == ("sk-two-2222222222", b"sk-two-2222222222")
    assert pool.key(1)[1] is pool.key(1)[1]


def test_the_fast_path_reads_no_clock_once_cooldowns_are_over() -> None:
    reads: list[float] = []
    clock = FakeClock()

    def counting_clock() -> float:
        reads.append(clock.now)
        return clock.now

    pool = KeyPool(KEYS, counting_clock)
    picks(pool, 3)
    assert reads == []
    pool.cool(0, 5, "rate_limit")
    clock.now += 5
    assert pool.pick() == 0  # notices the cooldown is over
    reads.clear()
    picks(pool, 6)
    assert reads == []


def test_a_keyless_provider_has_one_slot_that_can_cool() -> None:
    clock = FakeClock()
    pool = KeyPool((), clock)
    assert len(pool) == 1
    assert pool.key(0) == (None, None)
    assert picks(pool, 2) == [0, 0]
    pool.cool(0, 5, "rate_limit")
    assert pool.pick() is None
    assert pool.free_in() == 5
    clock.now += 5
    assert pool.pick() == 0


def test_a_cooling_key_is_skipped_until_its_time_and_then_resumes_in_order() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS, clock)
    assert pool.pick() == 0
    pool.cool(1, 10, "auth")
    assert picks(pool, 4) == [2, 0, 2, 0]
    clock.now += 9.999
    assert pool.pick() == 2
    clock.now += 0.001
    assert picks(pool, 4) == [0, 1, 2, 0]


def test_rotation_stays_fair_among_the_keys_left() -> None:
    clock = FakeClock()
    pool = KeyPool((*KEYS, "sk-four-444444444"), clock)
    pool.cool(0, 60, "rate_limit")
    counts = [0, 0, 0, 0]
    for slot in picks(pool, 300):
        assert slot is not None
        counts[slot] += 1
    assert counts == [0, 100, 100, 100]


def test_every_key_cooling_picks_nothing_and_says_when_one_frees() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS, clock)
    pool.cool(0, 30, "auth")
    pool.cool(1, 2, "rate_limit")
    pool.cool(2, 7, "rate_limit")
    assert pool.pick() is None
    assert pool.available() == 0
    assert pool.free_in() == 2
    clock.now += 2
    assert pool.free_in() == 0.0
    assert pool.available() == 1
    assert picks(pool, 2) == [1, 1]


def test_exclude_skips_slots_a_request_already_tried() -> None:
    pool = KeyPool(KEYS)
    assert pool.pick(exclude={0}) == 1
    assert pool.pick(exclude={0, 1}) == 2
    assert pool.pick(exclude={0, 1, 2}) is None
    assert picks(pool, 3) == [0, 1, 2]  # exclusion benches nothing for other requests


def test_free_in_ignores_excluded_slots_and_is_none_when_all_are() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS[:2], clock)
    assert pool.free_in(exclude={0}) == 0.0
    pool.cool(1, 4, "rate_limit")
    assert pool.free_in() == 0.0
    assert pool.free_in(exclude={0}) == 4
    pool.cool(0, 1, "rate_limit")
    assert pool.free_in() == 1
    assert pool.free_in(exclude={0, 1}) is None


def test_a_longer_cooldown_is_never_shortened() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS, clock)
    pool.cool(0, 300, "auth")
    pool.cool(0, 10, "rate_limit")
    assert pool.cooling() == [(0, "auth", 300)]
    clock.now += 100
    pool.cool(0, 250, "rate_limit")  # ends later than the auth cooldown: it wins
    assert pool.cooling() == [(0, "rate_limit", 250)]


def test_a_zero_cooldown_benches_nothing_and_a_bogus_one_is_refused() -> None:
    pool = KeyPool(KEYS)
    pool.cool(0, 0, "rate_limit")
    assert pool.cooling() == []
    assert pool.pick() == 0
    for bogus in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="cooldown"):
            pool.cool(0, bogus, "rate_limit")


def test_cooling_reports_slots_reasons_and_time_left_for_health() -> None:
    clock = FakeClock()
    pool = KeyPool(KEYS, clock)
    pool.cool(2, 10, "rate_limit")
    pool.cool(0, 300, "auth")
    clock.now += 4
    assert pool.cooling() == [(0, "auth", 296), (2, "rate_limit", 6)]
    assert pool.available() == 1
    clock.now += 6
    assert pool.cooling() == [(0, "auth", 290)]
    assert pool.available() == 2


def test_a_clock_at_or_below_zero_still_cools() -> None:
    clock = FakeClock(-50.0)
    pool = KeyPool(KEYS[:1], clock)
    pool.cool(0, 10, "rate_limit")
    assert pool.pick() is None
    clock.now = -40.0
    assert pool.pick() == 0


def test_no_key_in_repr() -> None:
    pool = KeyPool(KEYS)
    pool.cool(1, 5, "auth")
    text = repr(pool) + str(pool) + repr(pool.cooling())
    assert all(key not in text and key[:6] not in text for key in KEYS)
    assert repr(pool) == "KeyPool(keys=3, available=2)"


def test_cool_says_whether_the_key_starts_cooling_now() -> None:
    # What mini_llm_key_cooldowns_total counts: a key benched, not every 429 that met it benched already.
    clock = FakeClock()
    pool = KeyPool(KEYS, clock)
    assert pool.cool(0, 10, "rate_limit") is True
    assert pool.cool(0, 30, "rate_limit") is False  # extended, not a new cooldown
    assert pool.cool(0, 5, "auth") is False  # shorter: kept as it was
    assert pool.cool(1, 0, "rate_limit") is False  # cooldowns off: nothing benched
    clock.now += 31
    assert pool.cool(0, 10, "auth") is True  # the first one ran out: this is a new one
