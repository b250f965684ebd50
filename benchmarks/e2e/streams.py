"""The stream load: N concurrent SSE streams in a loop for a set time (aiohttp client on uvloop).

Each stream is timed (TTFB: request sent to first body byte; total: to the last byte) and checked whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import uvloop

from . import payloads
from .stats import percentile


@dataclass
class StreamResult:
    concurrency: int
    completed: int = 0
    whole: int = 0
    failed: int = 0
    seconds: float = 0.0
    streams_per_s: float = 0.0
    ttfb_p50_ms: float = 0.0
    ttfb_p99_ms: float = 0.0
    total_p50_ms: float = 0.0
    total_p99_ms: float = 0.0
    events_min: int = 0
    events_max: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class _Samples:
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    whole: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], out: _Samples) -> None:
    started = time.perf_counter()
    first = 0.0
    data = bytearray()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            async for chunk in response.content.iter_any():
                if not first:
                    first = time.perf_counter()
                data += chunk
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        out.errors[type(exc).__name__] += 1
        return
    finished = time.perf_counter()
    whole, events = payloads.check_stream(bytes(data))
    if status != 200 or not whole:
        out.errors[f"status {status}" if status != 200 else "not whole"] += 1
        return
    out.whole += 1
    out.ttfb.append((first - started) * 1000)
    out.total.append((finished - started) * 1000)
    out.events.append(events)


async def _load(url: str, body: bytes, auth: str, concurrency: int, seconds: float, limit: float) -> StreamResult:
    out = _Samples()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {auth}"}
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=limit)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout, auto_decompress=False) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(session, url, body, headers, out)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    failed = sum(out.errors.values())
    return StreamResult(
        concurrency=concurrency,
        completed=out.whole + failed,
        whole=out.whole,
        failed=failed,
        seconds=elapsed,
        streams_per_s=out.whole / elapsed,
        ttfb_p50_ms=percentile(out.ttfb, 50),
        ttfb_p99_ms=percentile(out.ttfb, 99),
        total_p50_ms=percentile(out.total, 50),
        total_p99_ms=percentile(out.total, 99),
        events_min=min(out.events, default=0),
        events_max=max(out.events, default=0),
        errors=dict(out.errors),
    )


def run(url: str, body: bytes, auth: str, concurrency: int, seconds: float, timeout: float = 60.0) -> StreamResult:
    """Keep `concurrency` streams open for `seconds`; streams under way at the end finish and count."""
    return uvloop.run(_load(url, body, auth, concurrency, seconds, timeout))
