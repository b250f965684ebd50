"""An open stream must not keep its request body alive: a long stream can outlive a large prompt by minutes.

Drives the real ASGI app in-process (its lifespan, routing, aiohttp pool) against a mock upstream
in its own process (headers at once, then silence), so tracemalloc counts only the gateway's side.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from mini_llm.asgi import Message
from mini_llm.gateway.app import GatewayApp
from mini_llm.sdk import MockUpstream

STREAMS = 20
PROMPT_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def silent_upstream() -> Iterator[MockUpstream]:
    """Sends a stream's headers, then nothing for ten minutes."""
    with MockUpstream(token_delay=600) as upstream:
        yield upstream


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """The app tunes the collector at start-up, as a worker should; a test process gets it back."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Client:
    """One ASGI request: a body with a unique large prompt, then a disconnect when told."""

    def __init__(self, loop: asyncio.AbstractEventLoop, index: int, model: str) -> None:
        self.index = index
        self.model = model
        self.sent = False
        self.loop = loop
        self.streaming = asyncio.Event()
        self.pending: asyncio.Future[Message] | None = None

    def receive(self) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = self.loop.create_future()
        if not self.sent:
            self.sent = True
            prompt = f"{self.index:08d}".encode() * (PROMPT_BYTES // 8)  # made now: after the baseline
            body = b'{"model":"%s","stream":true,"messages":[{"role":"user","content":"%s"}]}' % (
                self.model.encode(),
                prompt,
            )
            future.set_result({"type": "http.request", "body": body, "more_body": False})
        else:
            self.pending = future
        return future

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":  # the provider answered: the request is sent
            self.streaming.set()

    def leave(self) -> None:
        assert self.pending is not None
        self.pending.set_result({"type": "http.disconnect"})


async def _open_streams(model: str) -> int:
    """Bytes of Python objects the open streams hold, the request bodies and any rewritten copy included."""
    app = GatewayApp()
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[Message] = asyncio.Queue()
    life = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, replies.put))
    await lifespan.put({"type": "lifespan.startup"})
    assert (await replies.get())["type"] == "lifespan.startup.complete"
    loop = asyncio.get_running_loop()
    clients = [_Client(loop, index, model) for index in range(STREAMS)]
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
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
    held = tracemalloc.get_traced_memory()[0] - baseline
    for client in clients:
        client.leave()
    async with asyncio.timeout(20):
        await asyncio.gather(*requests)
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    return held


@pytest.mark.parametrize("model", ["stall", "renamed"], ids=["forwarded-as-is", "model-rewritten"])
def test_open_streams_do_not_hold_their_request_bodies(
    silent_upstream: MockUpstream, monkeypatch: pytest.MonkeyPatch, restored_gc: None, model: str
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{silent_upstream.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-memory")
    monkeypatch.setenv("MINI_LLM_MODEL_ALIASES", '{"stall": "openai:stall", "renamed": "openai:stall"}')
    tracemalloc.start()
    try:
        held = asyncio.run(_open_streams(model))
    finally:
        tracemalloc.stop()
    # Holding the bodies would be STREAMS * PROMPT_BYTES (5 MiB, twice that with a rewritten copy);
    # what a stream does hold (connections, parser, frames) is a few tens of KB.
    assert held < STREAMS * PROMPT_BYTES // 4, f"{STREAMS} open streams hold {held} bytes"
