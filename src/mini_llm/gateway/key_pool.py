"""One provider's keys for one worker: round-robin rotation, and a cooldown per key after 401/403 or 429.

Plain synchronous state driven by one event loop, so no locks. A slot is a key's 0-based index; messages
and logs name it by its 1-based number (`key 2`), never by any part of the key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import Literal

CoolReason = Literal["auth", "rate_limit"]

_NOT_COOLING = -math.inf  # below any clock reading, whatever the clock's epoch


class KeyPool:
    """A provider's keys in round-robin order, each able to cool down (after 401/403 or 429).

    A keyless provider (a local server, the mock) has one slot whose key is None: it can cool too (a 429).
    """

    __slots__ = ("_clock", "_cooling", "_keys", "_next", "_reasons", "_until")

    def __init__(self, keys: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        # Encoded once here: every answer's scrub looks for the key's bytes.
        self._keys: tuple[tuple[str | None, bytes | None], ...] = tuple((key, key.encode()) for key in keys) or (
            (None, None),
        )
        self._clock = clock
        self._next = 0
        # When each slot's recorded cooldown ends (it may have run out: those are cleared lazily); _cooling
        # counts the recorded ones, so pick() knows in O(1) that no key is cooling.
        self._until = [_NOT_COOLING] * len(self._keys)
        self._reasons: list[CoolReason] = ["auth"] * len(self._keys)
        self._cooling = 0

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        # NOTE: never show a key, not even in a debug repr.
        return f"KeyPool(keys={len(self._keys)}, available={self.available()})"

    def key(self, slot: int) -> tuple[str | None, bytes | None]:
        """The slot's key and its bytes; (None, None) for a keyless provider."""
        return self._keys[slot]

    def pick(self, exclude: Collection[int] = ()) -> int | None:
        """The next slot in round-robin order that is neither cooling nor in `exclude`; None when there is none.

        The rotation resumes after the slot picked, so keys skipped while cooling get their turn in order
        once they are free again.
        """
        if not self._cooling and not exclude:  # the fast path: every request, nothing cooling
            slot = self._next
            self._next = slot + 1 if slot + 1 < len(self._keys) else 0
            return slot
        now = self._clock()
        size = len(self._keys)
        for offset in range(size):
            slot = (self._next + offset) % size
            if slot not in exclude and self._left(slot, now) == 0.0:
                self._next = (slot + 1) % size
                return slot
        return None

    def cool(self, slot: int, seconds: float, reason: CoolReason) -> bool:
        """Bench the slot for `seconds` (0 benches nothing); a cooldown that lasts longer is kept, never shortened.

        True when the slot starts cooling now (the metrics count those), False when it was cooling already.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a cooldown must be a finite number of seconds >= 0, not {seconds!r}")
        if seconds == 0:
            return False
        now = self._clock()
        was_cooling = self._left(slot, now) > 0.0
        until = now + seconds
        if until <= self._until[slot]:
            return False
        if not was_cooling:  # _left cleared a cooldown that had run out
            self._cooling += 1
        self._until[slot] = until
        self._reasons[slot] = reason
        return not was_cooling

    def free_in(self, exclude: Collection[int] = ()) -> float | None:
        """Seconds until the first slot not in `exclude` is usable: 0.0 if one is now; None if all are excluded."""
        now = self._clock()
        soonest: float | None = None
        for slot in range(len(self._keys)):
            if slot in exclude:
                continue
            left = self._left(slot, now)
            if left == 0.0:
                return 0.0
            if soonest is None or left < soonest:
                soonest = left
        return soonest

    def available(self) -> int:
        """How many slots are not cooling now."""
        if not self._cooling:
            return len(self._keys)
        now = self._clock()
        return sum(1 for slot in range(len(self._keys)) if self._left(slot, now) == 0.0)

    def cooling(self) -> list[tuple[int, CoolReason, float]]:
        """(slot, reason, seconds left) of each cooling slot, for /health; never the key."""
        if not self._cooling:
            return []
        now = self._clock()
        return [
            (slot, self._reasons[slot], left)
            for slot in range(len(self._keys))
            if (left := self._left(slot, now)) > 0.0
        ]

    def _left(self, slot: int, now: float) -> float:
        """Seconds the slot still cools; a cooldown that has run out is cleared here."""
        until = self._until[slot]
        if until == _NOT_COOLING:
            return 0.0
        if until > now:
            return until - now
        self._until[slot] = _NOT_COOLING
        self._cooling -= 1
        return 0.0
