"""How much CPU the upstream client alone costs per request: aiohttp vs a bare keep-alive protocol.

This is the evidence behind the README's performance notes: the gateway cannot cost less per
request than its upstream client, so this measures that floor outside the gateway, against the
real mock upstream. `python -m benchmarks.e2e.client_floor URL` (URL: a mock upstream's
/v1/chat/completions), run pinned to one core (`taskset -c 1`).

The bare client is a measuring stick, not a proposal to ship as is: keep-alive HTTP/1.1 over an
asyncio.Protocol, one request in flight per connection, Content-Length bodies only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import urlsplit

import aiohttp
import uvloop

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":8}'
CONCURRENCY = 64
WARMUP = 2_000


class _BareConnection(asyncio.Protocol):
    """Writes one request, resolves a future with the status once the Content-Length body is in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:") + len(b"content-length:")
        length = int(head[start : head.find(b"\r\n", start) if b"\r\n" in head[start:] else None])
        if len(self.buffer) >= end + 4 + length:
            status = int(self.buffer[9:12])
            del self.buffer[: end + 4 + length]
            self.waiter.set_result(status)

    async def request(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def _measure(name: str, one: Callable[[], Awaitable[int]], count: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(n):
            status = await one()
            assert status == 200, status

    await asyncio.gather(*(worker(WARMUP // CONCURRENCY) for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{name}: {cpu / count * 1000:.4f} ms CPU per request, {count / wall:.0f} req/s")


async def main(url: str, count: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-floor", "Accept-Encoding": "identity"}
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=300, sock_read=300)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def via_aiohttp() -> int:
            async with session.post(url, data=BODY, headers=headers, allow_redirects=False) as response:
                await response.read()
                return response.status

        await _measure("aiohttp ClientSession (the gateway's settings)", via_aiohttp, count)

    loop = asyncio.get_running_loop()
    pool = [(await loop.create_connection(_BareConnection, host, port))[1] for _ in range(CONCURRENCY)]
    raw = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-floor\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    free = list(pool)

    async def via_bare() -> int:
        connection = free.pop()
        try:
            return await connection.request(raw)
        finally:
            free.append(connection)

    await _measure("bare asyncio.Protocol keep-alive client", via_bare, count)
    for connection in pool:
        assert connection.transport is not None
        connection.transport.close()


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000))
