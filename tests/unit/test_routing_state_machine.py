"""Hypothesis state machines: the key pool, one breaker and the breaker map against tiny models, on a fake clock.

Each model restates the documented rules in the plainest way; the invariants check what routing relies on:
a cooling key is never picked early, a free key gets its turn, a refused breaker stays refused until its
cooldown, one probe at a time, N consecutive failures open, and the map never drops open breakers first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mini_llm.gateway.breaker import Breaker, Breakers, BreakerState
from mini_llm.gateway.key_pool import CoolReason, KeyPool

# Multiples of a quarter second: the fake clock's sums stay exact, so the model and the code agree to the bit.
STEPS = st.integers(0, 48).map(lambda quarters: quarters / 4)
SLOTS = st.integers(0, 4)  # taken modulo the pool size; 4 is past any pool here, which exclusion must tolerate
REASONS: st.SearchStrategy[CoolReason] = st.sampled_from(["auth", "rate_limit"])
# Failures weigh double, so runs reach the open and half-open states often.
VERDICTS = st.sampled_from(["failed", "succeeded", "failed", "released"])
MACHINE_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None, derandomize=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class PoolModel:
    """A key pool as a list of cooldown ends and a cursor."""

    size: int
    until: list[float | None] = field(init=False)
    reasons: list[CoolReason | None] = field(init=False)
    cursor: int = 0

    def __post_init__(self) -> None:
        self.until = [None] * self.size
        self.reasons = [None] * self.size

    def free(self, slot: int, now: float) -> bool:
        until = self.until[slot]
        return until is None or until <= now

    def pick(self, exclude: frozenset[int], now: float) -> int | None:
        for offset in range(self.size):
            slot = (self.cursor + offset) % self.size
            if slot not in exclude and self.free(slot, now):
                self.cursor = (slot + 1) % self.size
                return slot
        return None

    def cool(self, slot: int, seconds: float, reason: CoolReason, now: float) -> None:
        until = self.until[slot]
        if seconds > 0 and (until is None or now + seconds > until):
            self.until[slot] = now + seconds
            self.reasons[slot] = reason

    def left(self, slot: int, now: float) -> float:
        until = self.until[slot]
        return 0.0 if until is None else max(0.0, until - now)


class KeyPoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.pool = KeyPool(())
        self.model = PoolModel(1)

    @initialize(keys=st.integers(0, 4))
    def build(self, keys: int) -> None:
        self.pool = KeyPool([f"sk-test-{index}" for index in range(keys)], self.clock)
        self.model = PoolModel(len(self.pool))
        assert len(self.pool) == max(keys, 1)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(exclude=st.frozensets(SLOTS, max_size=3))
    def pick(self, exclude: frozenset[int]) -> None:
        slot = self.pool.pick(exclude)
        assert slot == self.model.pick(exclude, self.clock.now)
        if slot is not None:
            assert slot not in exclude
            assert self.model.free(slot, self.clock.now), "a cooling key was picked before its time"

    @rule(slot=SLOTS, seconds=STEPS, reason=REASONS)
    def cool(self, slot: int, seconds: float, reason: CoolReason) -> None:
        slot %= len(self.pool)
        self.pool.cool(slot, seconds, reason)
        self.model.cool(slot, seconds, reason, self.clock.now)

    @rule(exclude=st.frozensets(SLOTS, max_size=4))
    def free_in(self, exclude: frozenset[int]) -> None:
        left = [self.model.left(slot, self.clock.now) for slot in range(self.model.size) if slot not in exclude]
        assert self.pool.free_in(exclude) == (min(left) if left else None)

    @rule()
    def every_key_comes_back_once_free(self) -> None:
        waits = [self.model.left(slot, self.clock.now) for slot in range(self.model.size)]
        self.clock.now += max(waits)
        picked = [self.pool.pick() for _ in range(self.model.size)]
        assert sorted(slot for slot in picked if slot is not None) == list(range(self.model.size))
        for slot in picked:
            assert slot == self.model.pick(frozenset(), self.clock.now)

    @invariant()
    def health_view_matches(self) -> None:
        now = self.clock.now
        expected = [
            (slot, self.model.reasons[slot], self.model.left(slot, now))
            for slot in range(self.model.size)
            if self.model.left(slot, now) > 0
        ]
        assert self.pool.cooling() == expected
        assert self.pool.available() == sum(self.model.free(slot, now) for slot in range(self.model.size))


@dataclass
class BreakerModel:
    """One breaker as three fields."""

    threshold: int
    cooldown: float
    state: BreakerState = "closed"
    failures: int = 0
    open_until: float = 0.0

    def allow(self, now: float) -> bool:
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
            return True
        return self.state == "closed"

    def succeeded(self) -> None:
        self.state, self.failures = "closed", 0

    def failed(self, now: float) -> None:
        if self.threshold == 0:
            return
        self.failures += 1
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.threshold):
            self.state, self.open_until = "open", now + self.cooldown

    def released(self) -> None:
        if self.state == "half_open":
            self.state = "open"

    def retry_in(self, now: float) -> float:
        if self.state == "open":
            return max(0.0, self.open_until - now)
        return self.cooldown if self.state == "half_open" else 0.0


class BreakerMachine(RuleBasedStateMachine):
    """Attempts are tracked from allow() to their one verdict, as the attempt loop pairs them."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breaker = Breaker(0, 0)
        self.model = BreakerModel(0, 0)
        self.attempts: list[int] = []  # allowed attempts still waiting for their verdict
        self.granted = 0
        self.probes: set[int] = set()  # attempts that went out as probes since the breaker last closed
        self.probe: int | None = None  # the latest probe; allow() refuses everyone until a verdict arrives
        self.refusing = False
        self.stray_verdicts = 0  # failures or releases the breaker cannot tell from its probe's
        self.run = 0  # consecutive failures since the last success

    @initialize(threshold=st.sampled_from([1, 2, 3, 0]), cooldown=st.sampled_from([1.0, 5.0, 0.25, 0.0]))
    def build(self, threshold: int, cooldown: float) -> None:
        self.breaker = Breaker(threshold, cooldown, self.clock)
        self.model = BreakerModel(threshold, cooldown)

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule()
    def allow(self) -> None:
        self._allow()

    @rule(verdict=VERDICTS)
    def quick_attempt(self, verdict: str) -> None:
        """An attempt that gets its verdict before any other event, the common case."""
        if self._allow():
            self._verdict(len(self.attempts) - 1, verdict)

    @precondition(lambda self: self.attempts)
    @rule(which=st.integers(0, 10), verdict=VERDICTS)
    def verdict(self, which: int, verdict: str) -> None:
        self._verdict(which % len(self.attempts), verdict)

    def _allow(self) -> bool:
        was_open = self.model.state == "open"
        too_early = was_open and self.clock.now < self.model.open_until
        allowed = self.breaker.allow()
        assert allowed == self.model.allow(self.clock.now)
        if allowed:
            assert not too_early, "an open breaker let a request through before its cooldown"
            assert not self.refusing, "a second caller got through while the probe was out"
            self.granted += 1
            self.attempts.append(self.granted)
            if was_open:
                self.probes.add(self.granted)
                self.probe = self.granted
                self.refusing = True
        return allowed

    def _verdict(self, index: int, verdict: str) -> None:
        attempt = self.attempts.pop(index)
        if verdict != "succeeded" and self.model.state == "half_open" and attempt != self.probe:
            self.stray_verdicts += 1
        if verdict == "succeeded":
            self.breaker.succeeded()
            self.model.succeeded()
            self.run = 0
            self.probes.clear()
            self.stray_verdicts = 0
        elif verdict == "failed":
            self.breaker.failed()
            self.model.failed(self.clock.now)
            self.run += 1
        else:
            self.breaker.released()
            self.model.released()
        self.refusing = False

    @invariant()
    def matches_the_model(self) -> None:
        assert (self.breaker.state, self.breaker.failures) == (self.model.state, self.model.failures)
        assert self.breaker.retry_in() == self.model.retry_in(self.clock.now)

    @invariant()
    def consecutive_failures_open_it(self) -> None:
        if self.model.threshold and self.run >= self.model.threshold:
            assert self.breaker.state != "closed"

    @invariant()
    def one_probe_at_a_time(self) -> None:
        # Strictly one, unless an attempt allowed before the opening failed or released while the probe was
        # out: the breaker cannot tell that verdict from its probe's (documented in Breaker).
        assert len(self.probes.intersection(self.attempts)) <= 1 + self.stray_verdicts


class BreakersMachine(RuleBasedStateMachine):
    """The bounded map: never over capacity, and open breakers dropped only once no closed one is left."""

    CAPACITY = 6

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.breakers = Breakers(2, 30.0, self.clock, capacity=self.CAPACITY)

    @rule(model=st.integers(0, 12), verdicts=st.lists(st.booleans(), max_size=3))
    def use(self, model: int, verdicts: list[bool]) -> None:
        open_before = {model for _, model, _, _ in self.breakers.open_ones()}
        breaker = self.breakers.get("p", f"model-{model}")
        open_after = {model for _, model, _, _ in self.breakers.open_ones()}
        if not open_before <= open_after:  # room was made for a new breaker, dropping open ones
            assert len(self.breakers) - len(open_after) == 1, "an open breaker went while a closed one was left"
        for failed in verdicts:
            breaker.failed() if failed else breaker.succeeded()

    @rule(seconds=STEPS)
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def bounded(self) -> None:
        assert len(self.breakers) <= self.CAPACITY


KeyPoolMachine.TestCase.settings = MACHINE_SETTINGS
BreakerMachine.TestCase.settings = MACHINE_SETTINGS
BreakersMachine.TestCase.settings = MACHINE_SETTINGS
TestKeyPool = KeyPoolMachine.TestCase
TestBreaker = BreakerMachine.TestCase
TestBreakers = BreakersMachine.TestCase
