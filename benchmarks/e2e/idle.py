"""Idle streams: hold N streams open through a system (upstream silent after the headers), memory per stream."""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import uvloop

from . import procstat

_OPENING_AT_ONCE = 256
_FD_MARGIN = 64


@dataclass
class IdleResult:
    requested: int
    streams: int  # fewer than requested when the fd hard limit cannot hold two sockets per stream
    opened: int = 0
    open_seconds: float = 0.0
    rss_before_kb: int = 0
    rss_open_kb: int = 0
    kb_per_stream: float = 0.0
    fds_open: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    note: str = ""


def streams_that_fit(requested: int, base_fds: int) -> tuple[int, str]:
    """Each stream holds a client and an upstream socket in one gateway worker, all under RLIMIT_NOFILE."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fits = (hard - base_fds - _FD_MARGIN) // 2
    if requested <= fits:
        return requested, ""
    return fits, f"fd hard limit {hard} holds {fits} streams (2 sockets each), not {requested}"


async def _hold(url: str, body: bytes, auth: str, result: IdleResult, pids: list[int], within: float) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {auth}"}
    opening = asyncio.Semaphore(_OPENING_AT_ONCE)
    errors: Counter[str] = Counter()
    responses: list[aiohttp.ClientResponse] = []
    client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=client_timeout) as session:

        async def open_one() -> None:
            async with opening:
                try:
                    response = await session.post(url, data=body, headers=headers)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    return
                responses.append(response)
                if response.status != 200:
                    errors[f"status {response.status}"] += 1

        started = time.perf_counter()
        tasks = [asyncio.ensure_future(open_one()) for _ in range(result.streams)]
        _, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors["not opened in time"] += len(pending)
        result.open_seconds = time.perf_counter() - started
        result.opened = sum(1 for r in responses if r.status == 200)
        await asyncio.sleep(1.0)  # let the allocator settle
        samples = []
        for _ in range(3):
            samples.append(procstat.memory_kb(pids))
            await asyncio.sleep(0.5)
        result.rss_open_kb = max(samples)
        result.fds_open = max(procstat.open_fds(pid) for pid in pids)
        for response in responses:
            response.close()
    result.errors = {k: v for k, v in errors.items() if v}


def measure(
    url: str, body: bytes, auth: str, requested: int, pids: Callable[[], list[int]], timeout: float
) -> IdleResult:
    """Open `requested` streams (or as many as the fd limit allows) against `url` and read the RSS growth."""
    tree = pids()
    streams, note = streams_that_fit(requested, max(procstat.open_fds(pid) for pid in tree))
    result = IdleResult(requested=requested, streams=streams, note=note)
    result.rss_before_kb = procstat.memory_kb(tree)
    uvloop.run(_hold(url, body, auth, result, tree, timeout))
    if result.opened:
        result.kb_per_stream = (result.rss_open_kb - result.rss_before_kb) / result.opened
    return result
