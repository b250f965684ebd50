"""An open stream must not keep its request body alive: a long stream can outlive a large prompt by minutes.

Drives the real ASGI app in-process (its lifespan, routing, aiohttp pool) against the fake
upstream over TCP, so tracemalloc can see which allocations each open stream still holds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from mini_llm.app import GatewayApp
from mini_llm.asgi import Message
from tests.e2e.fake_upstream import OPENAI_KEYS, FakeUpstream

STREAMS = 20
PROMPT_BYTES = 256 * 1024


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The app tunes the collector at start-up, as a worker should; a test process gets it back."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Client:
    """One ASGI request: a body with a unique large prompt, then a disconnect when told."""

    def __init__(self, loop: asyncio.AbstractEventLoop, index: int) -> None:
        prompt = f"{index:08d}".encode() * (PROMPT_BYTES // 8)  # made here, so tracemalloc names this file
        self.body: bytes | None = (
            b'{"model":"stall","stream":true,"messages":[{"role":"user","content":"' + prompt + b'"}]}'
        )
        self.loop = loop
        self.streaming = asyncio.Event()
        self.pending: asyncio.Future[Message] | None = None

    def receive(self) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = self.loop.create_future()
        if self.body is not None:
            body, self.body = self.body, None
            future.set_result({"type": "http.request", "body": body, "more_body": False})
        else:
            self.pending = future
        return future

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            self.streaming.set()

    def leave(self) -> None:
        assert self.pending is not None
        self.pending.set_result({"type": "http.disconnect"})


def _held_here(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated whose allocation happened in this file (the prompts)."""
    mine = tracemalloc.Filter(True, os.path.abspath(__file__), all_frames=True)
    return sum(stat.size for stat in snapshot.filter_traces([mine]).statistics("filename"))


async def _open_streams(upstream: FakeUpstream) -> int:
    app = GatewayApp()
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[Message] = asyncio.Queue()
    life = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, replies.put))
    await lifespan.put({"type": "lifespan.startup"})
    assert (await replies.get())["type"] == "lifespan.startup.complete"
    loop = asyncio.get_running_loop()
    clients = [_Client(loop, index) for index in range(STREAMS)]
    headers = [(b"content-type", b"application/json")]
    requests = [
        asyncio.create_task(
            app(
                {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers},
                client.receive,
                client.send,
            )
        )
        for client in clients
    ]
    async with asyncio.timeout(20):
        await asyncio.gather(*(client.streaming.wait() for client in clients))
    gc.collect()
    held = _held_here(tracemalloc.take_snapshot())
    for client in clients:
        client.leave()
    async with asyncio.timeout(20):
        await asyncio.gather(*requests)
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    return held


def test_open_streams_do_not_hold_their_request_bodies(
    upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch, restored_gc: None
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{upstream.base}/v1")
    monkeypatch.setenv("OPENAI_API_KEYS", ",".join(OPENAI_KEYS))
    monkeypatch.setenv("MINI_LLM_MODEL_ALIASES", '{"stall": "openai:stall"}')
    tracemalloc.start()
    try:
        held = asyncio.run(_open_streams(upstream))
    finally:
        tracemalloc.stop()
    # Holding the bodies would be STREAMS * PROMPT_BYTES (5 MiB); a stream keeps none of it.
    assert held < PROMPT_BYTES, f"{STREAMS} open streams still hold {held} bytes of their requests"
