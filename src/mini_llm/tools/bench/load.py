"""The load driver of `mini-llm bench`: one scenario against one target, every answer checked."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import msgspec

_HEADERS: Final = {"content-type": "application/json"}
_PROMPT: Final = [{"role": "user", "content": "Say hi."}]
_CHAT_TOKENS: Final = 16
_TICK: Final = 0.2


class _Chat(msgspec.Struct):
    choices: list[Any]


_CHAT = msgspec.json.Decoder(_Chat)


class Invalid(Exception):
    """An answer that is not what the mock sends: a bad status, a bad body, a stream cut short."""


@dataclass(frozen=True, slots=True)
class Load:
    """The same for the direct and the gateway target, so the two runs compare."""

    concurrency: int
    duration: float
    requests: int | None  # when set, stop after this many instead of after `duration`
    stream_tokens: int  # 0: non-stream chat completions; else streams of this many token events


@dataclass(slots=True)
class Tally:
    """What one run did; `latencies` holds one value (seconds) per valid answer, in order."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies) + self.errors


def request_body(model: str, load: Load) -> bytes:
    tokens = load.stream_tokens or _CHAT_TOKENS
    body = {"model": model, "messages": _PROMPT, "max_tokens": tokens, "stream": bool(load.stream_tokens)}
    return msgspec.json.encode(body)


async def _chat(session: aiohttp.ClientSession, url: str, body: bytes, _tokens: int) -> None:
    async with session.post(url, data=body, headers=_HEADERS) as response:
        payload = await response.read()
    if response.status != 200:
        raise Invalid(f"HTTP {response.status}: {payload[:100]!r}")
    if not _CHAT.decode(payload).choices:
        raise Invalid("a completion without choices")


async def _stream(session: aiohttp.ClientSession, url: str, body: bytes, tokens: int) -> None:
    """Complete means every token arrived as its own event and the last event is `[DONE]`."""
    events, last = 0, b""
    async with session.post(url, data=body, headers=_HEADERS) as response:
        if response.status != 200:
            raise Invalid(f"HTTP {response.status}: {(await response.read())[:100]!r}")
        async for line in response.content:
            if line.startswith(b"data:"):
                events, last = events + 1, line
    if last.rstrip() != b"data: [DONE]" or events < tokens + 1:
        raise Invalid(f"stream cut short: {events} events, last {last[:60]!r}")


async def drive(url: str, model: str, load: Load, progress: Callable[[Tally, float], None]) -> Tally:
    """POST chat completions to `url` from `load.concurrency` loops; `progress` is called every 0.2 s."""
    send = _stream if load.stream_tokens else _chat
    body = request_body(model, load)
    connector = aiohttp.TCPConnector(limit=load.concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm-up, not counted: open the connections and wake the workers.
        await asyncio.gather(
            *(send(session, url, body, load.stream_tokens) for _ in range(load.concurrency)), return_exceptions=True
        )
        return await _measure(lambda: send(session, url, body, load.stream_tokens), load, progress)


async def _measure(send: Callable[[], Awaitable[None]], load: Load, progress: Callable[[Tally, float], None]) -> Tally:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + load.duration
    issued = 0

    def more() -> bool:
        nonlocal issued
        issued += 1
        return issued <= load.requests if load.requests is not None else time.perf_counter() < deadline

    async def loop() -> None:
        while more():
            begun = time.perf_counter()
            try:
                await send()
            except (Invalid, aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                tally.errors += 1
                tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"[:200]
            else:
                tally.latencies.append(time.perf_counter() - begun)

    async def report() -> None:
        while True:
            await asyncio.sleep(_TICK)
            progress(tally, time.perf_counter() - started)

    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(*(loop() for _ in range(load.concurrency)))
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    tally.seconds = time.perf_counter() - started
    return tally


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(1, math.ceil(share * len(sorted_values))) - 1]
