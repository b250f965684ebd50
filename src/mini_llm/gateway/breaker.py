"""Circuit breakers for one worker: a target that keeps failing is skipped for a cooldown, then one probe decides.

Plain synchronous state driven by one event loop, so no locks. Many requests may call `allow()` on the same
open breaker at once: exactly one of them gets the probe, the others are refused until its verdict. The caller
pairs every allowed attempt with exactly one of `succeeded`, `failed` or `released`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Literal

BreakerState = Literal["closed", "open", "half_open"]

# `model` can come from clients (`provider:any-model`), so the map of breakers is bounded.
DEFAULT_CAPACITY: Final = 4096


class Breaker:
    """One target's breaker: closed, open after `threshold` consecutive failures, half open while its probe is out.

    Verdicts are not tied to an attempt: one that was allowed while closed and ends while the probe is out
    counts as the probe's. That is fresh evidence about the target all the same; at worst such a release
    (or failure, once the new cooldown is over) frees the probe slot early and a second probe goes out.
    """

    __slots__ = ("_clock", "_cooldown", "_failures", "_open_until", "_state", "_threshold")

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        """`threshold` 0 turns the breaker off: it never opens."""
        if threshold < 0 or not cooldown >= 0:
            raise ValueError(f"a breaker needs threshold >= 0 and cooldown >= 0, not {threshold!r}, {cooldown!r}")
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._open_until = 0.0  # meaningful only when open

    def __repr__(self) -> str:
        return f"Breaker(state={self._state!r}, failures={self._failures})"

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures so far (the count that opens it at the threshold)."""
        return self._failures

    def allow(self) -> bool:
        """Whether an attempt may go: always when closed; once, as the probe, when open and the cooldown is over."""
        state = self._state
        if state == "closed":
            return True
        if state == "open" and self._clock() >= self._open_until:
            self._state = "half_open"
            return True
        return False

    def succeeded(self) -> None:
        """The target answered: closed, with no failures counted (a probe's success closes it)."""
        self._state = "closed"
        self._failures = 0

    def failed(self) -> None:
        """One more consecutive failure; at the threshold it opens, and a failed probe re-opens for a full cooldown."""
        if not self._threshold:
            return
        self._failures += 1
        if self._state == "half_open" or (self._state == "closed" and self._failures >= self._threshold):
            self._state = "open"
            self._open_until = self._clock() + self._cooldown

    def released(self) -> None:
        """An allowed attempt ended with no verdict (the client left, a key problem): a probe's slot frees.

        The cooldown is already over then, so the next `allow()` sends a new probe.
        """
        if self._state == "half_open":
            self._state = "open"

    def retry_in(self) -> float:
        """Seconds until `allow()` lets an attempt through: 0 when closed or a probe may go.

        While the probe is out it is the full cooldown, what a failing probe would impose.
        """
        state = self._state
        if state == "closed":
            return 0.0
        if state == "half_open":
            return self._cooldown
        return max(0.0, self._open_until - self._clock())


class Breakers:
    """One worker's breakers by (provider, upstream model), created on first use.

    The map is bounded (`capacity`) because clients choose models. When it is full, breakers that carry no
    state (closed, no failures) go first, then closed ones with failures, and open ones only when nothing
    else is left, oldest first. A caller still holding a dropped breaker just updates an orphan.
    """

    __slots__ = ("_breakers", "_capacity", "_clock", "_cooldown", "_off", "_threshold")

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity!r}")
        checked = Breaker(threshold, cooldown, clock)  # checks threshold and cooldown now, not on first use
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._capacity = capacity
        self._breakers: dict[tuple[str, str], Breaker] = {}
        # Breakers off: one shared breaker that never opens, and no map to grow.
        self._off = checked if threshold == 0 else None

    def __len__(self) -> int:
        return len(self._breakers)

    def get(self, provider: str, model: str) -> Breaker:
        """The target's breaker, created closed on first use."""
        if self._off is not None:
            return self._off
        key = (provider, model)
        breaker = self._breakers.get(key)
        if breaker is None:
            if len(self._breakers) >= self._capacity:
                self._make_room()
            breaker = self._breakers[key] = Breaker(self._threshold, self._cooldown, self._clock)
        return breaker

    def open_ones(self) -> list[tuple[str, str, BreakerState, float]]:
        """(provider, model, state, retry_in) of every breaker that is not closed, for /health."""
        return [
            (provider, model, breaker.state, breaker.retry_in())
            for (provider, model), breaker in self._breakers.items()
            if breaker.state != "closed"
        ]

    def _make_room(self) -> None:
        """Drop down to three quarters of the capacity, so a full map is not scanned again on the next new target."""
        target = self._capacity * 3 // 4
        for droppable in (_is_blank, _is_closed, _is_any):
            for key in [key for key, breaker in self._breakers.items() if droppable(breaker)]:
                if len(self._breakers) <= target:
                    return
                del self._breakers[key]


def _is_blank(breaker: Breaker) -> bool:
    return breaker.state == "closed" and breaker.failures == 0


def _is_closed(breaker: Breaker) -> bool:
    return breaker.state == "closed"


def _is_any(breaker: Breaker) -> bool:
    return True
