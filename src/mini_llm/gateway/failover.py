"""One mechanism for everything a request does when a provider fails: the next key, a retry, the next target.

A request's plan is its targets in order. For each, the loop picks a key, sends, and classifies what came
back: a key problem (401/403, 429) benches the key and moves on to the next key at once; a retryable
failure (no connection, a reset, a timeout, 408, 500, 502-504, 529, an error as a stream's first event) backs off and
tries the same target again, up to MINI_LLM_RETRIES times, then the next target. Anything else is the
answer: the commit point. When every target fails, the last answer a provider gave is relayed as it came.

The state it keeps (key cooldowns, breakers, rotation) is per worker, on the worker's event loop.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Final, NamedTuple, Protocol, TypeVar

from mini_llm.config import Settings
from mini_llm.errors import CLIP_CHARS, GatewayError, UpstreamTimeout, UpstreamUnreachable, clip
from mini_llm.gateway.breaker import Breaker, Breakers
from mini_llm.gateway.key_pool import CoolReason, KeyPool
from mini_llm.gateway.retry_policy import RETRYABLE_STATUSES, backoff, retry_after, should_retry_header
from mini_llm.providers import Hop, Provider, Target

# The longest a 429's `retry-after` benches a key: a provider asking for an hour (a daily quota) gets
# its key tried again after this, rather than never.
LONGEST_RATE_LIMIT_COOLDOWN: Final = 300.0
# Added to a wait for a cooling key: the loop's timers may fire a little early (uvloop rounds to milliseconds),
# and a key still cooling by a hair would cost another retry.
WAKE_SLACK: Final = 0.005
_NO_SLOTS: Final[frozenset[int]] = frozenset()


class Answer(Protocol):
    """What one attempt got back: enough to classify it, and a way to let it go unread."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...

    @property
    def error_event(self) -> bool:
        """A stream whose first event is an error: retryable, though its status is 200."""
        ...

    @property
    def target(self) -> Target: ...

    def discard(self) -> None: ...

    async def detach(self) -> GatewayError | None:
        """Free the provider's connection while this failed answer waits to be relayed, should nothing better
        come: a small body is read into memory. Returns the error if reading it failed (then it is discarded)."""
        ...


A = TypeVar("A", bound=Answer)


class AttemptRecord(NamedTuple):
    """One upstream request, for the access log and for the message when everything failed.

    A named tuple, and the target's label made only when it is shown: one is made per request.
    """

    provider: str
    model: str
    key: int | None  # the key's 1-based number in its provider's list; None for a keyless provider
    outcome: int | str  # the status, or what went wrong (UpstreamUnreachable.outcome, "timeout", "error-event")
    ms: float
    detail: str = ""  # the gateway's safe message for a failure that had no answer

    def log_entry(self) -> str:
        key = "" if self.key is None else f" key{self.key}"
        return f"{label(self.provider, self.model)}{key} {self.outcome} {self.ms:.1f}ms"

    def describe(self, lead: str) -> str:
        """For a client: the target, the key's number, what happened and how long it took.

        The failure's own message is added when it is not `lead`, the one the error already opens with.
        """
        key = "" if self.key is None else f" key {self.key}"
        detail = f": {self.detail}" if self.detail and self.detail != lead else ""
        return f"{label(self.provider, self.model)}{key} {self.outcome} after {self.ms:.0f} ms{detail}"


class FailoverRun:
    """One request's attempts, read by the access log and the answer's headers, and what the loop keeps
    across targets for the answer when every one fails.

    The fields written only when something fails are class-level defaults: a first-attempt success sets
    none of them.
    """

    answered_by: Target | None = None
    skipped: tuple[str, ...] = ()  # targets not tried, and why ("openai:gpt-4o circuit open for 3.0s")
    last: Answer | None = None  # the last answer a provider gave, kept unread to relay
    failure: GatewayError | None = None  # the last failure that had no answer
    cooling_free_in: float | None = None  # a target skipped because every key cools: when one frees
    cooling_reason = "rate_limit"
    circuit_free_in: float | None = None  # a target skipped for its open breaker: when it may probe
    retry_after: int | None = None  # for a relayed 429 without its own: when a key of its provider frees up
    budget_ran_out = False  # MINI_LLM_RETRY_BUDGET stopped a wait or a further attempt

    def __init__(self) -> None:
        self.records: list[AttemptRecord] = []
        self.cooled: list[tuple[str, str]] = []  # (provider, reason) of each key this request cooled
        self.waited = 0.0  # seconds slept for backoffs and cooling keys: waits the providers' answers asked for

    def log_fields(self) -> str:
        fields = f"attempts=[{'; '.join(record.log_entry() for record in self.records)}]"
        if self.skipped:
            fields += f" skipped=[{'; '.join(self.skipped)}]"
        if self.budget_ran_out:
            fields += " budget_ran_out"
        return fields

    def skip(self, why: str) -> None:
        self.skipped = (*self.skipped, why)

    def let_go(self) -> None:
        """Discard the failed answer kept so far: a better one came, or the request ends without it."""
        if self.last is not None:
            self.last.discard()
            self.last = None

    async def keep(self, answer: Answer) -> None:
        """A failed answer, kept (detached from its connection) to relay should nothing better come.

        The one it replaces is let go. If its body cannot be read, it counts as a failure without an answer.
        """
        self.let_go()
        broken = await answer.detach()
        if broken is None:
            self.last = answer
        else:
            self.failure = broken


def label(provider: str, model: str) -> str:
    """`provider:model` for the log and messages, safe to print: a client's model name is cut (it may be
    megabytes), and quoted (`clip`) when it holds anything that could forge a log line or end the list.
    A route without a model (the Responses API's by-id routes) names the provider alone."""
    if not model:
        return provider
    if len(model) > CLIP_CHARS or not model.isprintable() or ";" in model or "]" in model:
        return f"{provider}:{clip(model)}"
    return f"{provider}:{model}"


def _sooner(seconds: float, other: float | None) -> float:
    """The smaller of two waits, the second of which may be unknown (None)."""
    return seconds if other is None else min(seconds, other)


def _waitable(pool: KeyPool, refused: Collection[int], free_in: float) -> float | None:
    """Seconds until a key worth waiting for frees up: one cooling after a 429, or free again already.

    A key that cools after a refusal (401/403) is not waited for: the next target is tried. None when no
    other key is left.
    """
    if not free_in:
        return free_in
    cooling = [left for slot, reason, left in pool.cooling() if reason == "rate_limit" and slot not in refused]
    return min(cooling) if cooling else None


def _earliest_reason(pool: KeyPool, refused: Collection[int]) -> str:
    """Why the key that frees first is cooling: "auth" (401/403) or "rate_limit" (429)."""
    cooling = [(left, reason) for slot, reason, left in pool.cooling() if slot not in refused]
    return min(cooling)[1] if cooling else "rate_limit"


class Failover:
    """The per-worker routing state (a key pool per provider, a breaker per target) and the attempt loop."""

    __slots__ = ("_clock", "_rng", "_settings", "_sleep", "breakers", "pools")

    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.pools: dict[str, KeyPool] = {name: KeyPool(p.keys, clock) for name, p in providers.items()}
        self.breakers = Breakers(settings.breaker_failures, settings.breaker_cooldown, clock)

    async def run(self, hops: Sequence[Hop], attempt: Callable[[Target], Awaitable[A]], run: FailoverRun) -> A:
        """The committed answer, else the last answer a provider gave; raises when none answered.

        Every sleep is cancelled with the request's task (a client that leaves), and every answer that is
        not returned is discarded, so nothing is left open behind it.
        """
        deadline = self._clock() + self._settings.retry_budget
        try:
            for provider, model in hops:
                # A client's model may be megabytes: the breaker map keys on its first CLIP_CHARS characters.
                breaker = self.breakers.get(provider.name, model[:CLIP_CHARS])
                if not breaker.allow():
                    free_in = breaker.retry_in()
                    run.circuit_free_in = _sooner(free_in, run.circuit_free_in)
                    run.skip(f"{label(provider.name, model)} circuit open for {free_in:.1f}s")
                    continue
                committed = await self._target(provider, model, breaker, attempt, run, deadline)
                if committed is not None:
                    return committed
                if self._clock() >= deadline and run.records:
                    run.budget_ran_out = True
                    break  # no further target is tried
        except BaseException:
            run.let_go()
            raise
        if run.last is not None:
            last: A = run.last  # type: ignore[assignment]  # only answers of `attempt` are kept
            run.answered_by = last.target  # every target failed: this answer is relayed as it came
            if last.status == 429 and retry_after(last.headers) is None:
                frees_in = self.pools[last.target.provider.name].free_in()
                if frees_in:
                    run.retry_after = max(1, math.ceil(frees_in))
            return last
        raise self._nothing_answered(run)

    async def _target(
        self,
        provider: Provider,
        model: str,
        breaker: Breaker,
        attempt: Callable[[Target], Awaitable[A]],
        run: FailoverRun,
        deadline: float,
    ) -> A | None:
        """Attempts on one target until one commits (returned) or the target is given up (None)."""
        settings, clock = self._settings, self._clock
        pool = self.pools[provider.name]
        name = provider.name
        retries = settings.retries
        refused: set[int] = set()  # keys that got 401/403 in this request
        limited: set[int] = set()  # keys that got 429 since the last wait
        verdict = False  # whether the breaker heard how this target did
        try:
            while True:
                slot = pool.pick(refused | limited if refused or limited else _NO_SLOTS)
                if slot is None:
                    free_in = pool.free_in(refused)
                    if free_in is None:
                        return None  # every key was refused in this request: the next target
                    wait = _waitable(pool, refused, free_in)
                    if wait is not None and retries and wait <= settings.retry_after_max:
                        # Waiting out a cooling key is one of the retries, and never shorter than its backoff
                        # (with cooldowns off, a key is free at once).
                        pause = max(wait + WAKE_SLACK, self._backoff(settings.retries - retries))
                        if clock() + pause <= deadline:
                            retries -= 1
                            limited.clear()
                            await self._pause(pause, run)
                            continue
                        run.budget_ran_out = True
                    run.cooling_free_in = _sooner(free_in, run.cooling_free_in)
                    run.cooling_reason = _earliest_reason(pool, refused)
                    run.skip(f"{label(name, model)} every key cooling for {free_in:.1f}s")
                    return None
                if run.records and clock() >= deadline:
                    run.budget_ran_out = True
                    return None
                key, secret = pool.key(slot)
                target = Target(provider, model, key, secret)
                began = clock()
                number = slot + 1 if key is not None else None
                try:
                    answer = await attempt(target)
                except (UpstreamUnreachable, UpstreamTimeout) as exc:
                    failure = exc.with_traceback(None)
                    ms = (clock() - began) * 1000
                    run.records.append(AttemptRecord(name, model, number, exc.outcome, ms, failure.message))
                    run.failure = failure
                    if exc.outcome == "pool-full":
                        # The gateway's own limit (MINI_LLM_UPSTREAM_POOL_LIMIT): the provider was not asked, so
                        # it is no verdict on the provider and no reason to ask it again; the next target.
                        return None
                    breaker.failed()
                    verdict = True
                    wait = None
                else:
                    status, error_event = answer.status, answer.error_event
                    ms = (clock() - began) * 1000
                    run.records.append(AttemptRecord(name, model, number, "error-event" if error_event else status, ms))
                    if status in (401, 403) and key is not None:
                        # A key problem, not the request's: the next key at once, and no retry spent. A provider
                        # without keys (a local server) has no key to swap: its 401 or 403 is the answer.
                        self._cool(name, slot, settings.key_auth_cooldown, "auth", run)
                        refused.add(slot)
                        await run.keep(answer)
                        continue
                    if status == 429:
                        if should_retry_header(answer.headers) is False:
                            refused.add(slot)  # e.g. OpenAI's insufficient_quota: this key is not worth a wait
                        asked = retry_after(answer.headers)
                        cooldown = (
                            settings.key_rate_limit_cooldown
                            if asked is None or not settings.key_rate_limit_cooldown
                            else min(asked, LONGEST_RATE_LIMIT_COOLDOWN)
                        )
                        self._cool(name, slot, cooldown, "rate_limit", run)
                        limited.add(slot)
                        await run.keep(answer)
                        continue
                    if not error_event and status not in RETRYABLE_STATUSES:
                        if status < 500:
                            breaker.succeeded()
                        else:  # a 5xx that is not retried (501, 505, a proxy's 520-524): still a failing target
                            breaker.failed()
                        verdict = True
                        run.answered_by = target
                        run.let_go()
                        return answer
                    breaker.failed()
                    verdict = True
                    await run.keep(answer)
                    if should_retry_header(answer.headers) is False:
                        return None  # the provider says asking it again is pointless: the next target
                    wait = retry_after(answer.headers)
                # A retryable failure: the same target again after a backoff, if a retry and the budget allow.
                if not retries or breaker.state != "closed":
                    return None
                delay = self._backoff(settings.retries - retries)
                if wait is not None:
                    if wait > settings.retry_after_max:
                        return None
                    delay = max(delay, wait)
                if clock() + delay > deadline:
                    run.budget_ran_out = True
                    return None
                retries -= 1
                limited.clear()
                await self._pause(delay, run)
        finally:
            if not verdict:
                breaker.released()

    async def _pause(self, seconds: float, run: FailoverRun) -> None:
        began = self._clock()
        try:
            await self._sleep(seconds)
        finally:  # a client that leaves mid-sleep: the time slept so far still counts
            run.waited += self._clock() - began

    def _cool(self, name: str, slot: int, seconds: float, reason: CoolReason, run: FailoverRun) -> None:
        # Counted once per cooldown: not when cooldowns are off (0 s), nor for a key that was cooling already
        # (another request's 429 on it, or a longer retry-after that only extends it).
        if self.pools[name].cool(slot, seconds, reason):
            run.cooled.append((name, reason))

    def _backoff(self, retry: int) -> float:
        settings = self._settings
        return backoff(retry, settings.backoff_base, settings.backoff_max, self._rng)

    def _nothing_answered(self, run: FailoverRun) -> GatewayError:
        """The error when no provider answered: why, and when to come back."""
        if run.failure is not None:
            # The last failure's own words first, then every attempt: target, key, what happened, how long.
            lead = run.failure.message
            count = len(run.records)
            listed = "; ".join(record.describe(lead) for record in run.records)
            skipped = f"; skipped {', '.join(run.skipped)}" if run.skipped else ""
            budget = ""
            if run.budget_ran_out:
                budget = f"; MINI_LLM_RETRY_BUDGET of {self._settings.retry_budget:g}s ran out"
            message = f"{lead} [{count} attempt{'' if count == 1 else 's'}: {listed}{skipped}{budget}]"
            timed_out = isinstance(run.failure, UpstreamTimeout)
            error: GatewayError = UpstreamTimeout(message) if timed_out else UpstreamUnreachable(message)
        elif run.cooling_free_in is not None:
            soonest = _sooner(run.cooling_free_in, run.circuit_free_in)
            seconds = max(1, math.ceil(soonest))
            if run.cooling_reason == "auth":
                error = GatewayError(
                    503,
                    f"no usable provider key: {', '.join(run.skipped)} after the provider refused them (401/403); "
                    "check the keys (MINI_LLM_KEY_AUTH_COOLDOWN)",
                    code="keys_unavailable",
                )
            else:
                error = GatewayError(
                    429,
                    f"rate limited: {', '.join(run.skipped)} after the provider's 429; retry in {seconds}s",
                    code="rate_limited",
                )
            error.headers.append((b"retry-after", str(seconds).encode()))
        else:
            seconds = max(1, math.ceil(run.circuit_free_in or 1))
            error = GatewayError(
                503,
                f"every target is failing: {', '.join(run.skipped)} (MINI_LLM_BREAKER_FAILURES)",
                code="circuit_open",
                headers=[(b"retry-after", str(seconds).encode())],
            )
        return error
