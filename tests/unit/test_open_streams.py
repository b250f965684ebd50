"""The worker's stream registry: one budget for partial events, the biggest holder ended, idle or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mini_llm.asgi import Message
from mini_llm.config import ConfigError, load_settings
from mini_llm.errors import Dialect, UpstreamUnreachable
from mini_llm.gateway.observer import StreamObserver
from mini_llm.gateway.open_streams import OpenStreams, StreamEnded, StreamHandle, drain_timed_out
from mini_llm.gateway.relay import EventRelay, relay_stream


def test_the_biggest_holder_is_ended_and_its_bytes_released_at_once() -> None:
    async def scenario() -> tuple[bool, bool, int, int]:
        streams = OpenStreams(100)
        handles: list[StreamHandle] = []

        async def idle_holder() -> None:  # a stream sitting idle, waiting for its provider
            handles.append(streams.open())
            handles[0].hold(80)
            await asyncio.sleep(10)

        big_task = asyncio.create_task(idle_holder())
        await asyncio.sleep(0)
        small = streams.open()
        small.hold(30)  # 110 > 100: the 80 go, not the 30
        held_after = streams.held
        with pytest.raises(asyncio.CancelledError):
            await big_task
        return handles[0].ended is not None, small.ended is None, held_after, len(streams)

    assert asyncio.run(scenario()) == (True, True, 30, 1)


def test_the_current_stream_is_told_by_an_exception_when_it_is_the_biggest() -> None:
    async def scenario() -> str:
        streams = OpenStreams(100)
        streams.open().hold(10)
        mine = streams.open()
        with pytest.raises(StreamEnded) as caught:
            mine.hold(200)
        assert streams.held == 10
        return caught.value.code or ""

    assert asyncio.run(scenario()) == "stream_buffer_exhausted"


def _sse_source(first: bytes, release: asyncio.Event) -> AsyncIterator[bytes]:
    async def source() -> AsyncIterator[bytes]:
        yield first
        await release.wait()  # the provider goes silent
        yield b"never\n\n"

    return source()


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_an_idle_stream_ended_by_the_drain_sends_an_error_event_and_its_end(protocol: Dialect) -> None:
    async def scenario() -> list[Message]:
        streams = OpenStreams(1 << 20)
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def relay() -> None:
            source = _sse_source(b"data: one\n\ndata: half", asyncio.Event())
            with streams.open() as handle:
                await relay_stream(send, [], source, EventRelay(StreamObserver(protocol), None, handle))

        task = asyncio.create_task(relay())
        await asyncio.sleep(0.05)
        assert streams.held == 2 * len(b"data: half")  # the relay's copy and the splitter's
        streams.end_all(drain_timed_out(1))
        await asyncio.wait_for(task, 1)  # ends normally: the cancel was the gateway's, not the client's
        assert len(streams) == 0
        return sent

    sent = asyncio.run(scenario())
    assert sent[1]["body"] == b"data: one\n\n"
    last = sent[-1]
    assert last["more_body"] is False
    assert b"gateway is shutting down" in last["body"]
    assert last["body"].startswith(b"event: error\ndata: " if protocol == "anthropic" else b'data: {"error"')
    assert b"half" not in b"".join(m.get("body", b"") for m in sent)


@pytest.mark.parametrize("after_drain_timeout", [False, True], ids=["while-serving", "after-the-drain-timeout"])
def test_a_client_disconnect_is_not_mistaken_for_an_ending(after_drain_timeout: bool) -> None:
    """While the provider is silent, or on a stream opened after the drain timeout, whose ending event stalls."""

    async def scenario() -> bool:
        streams = OpenStreams(1 << 20)
        if after_drain_timeout:
            streams.end_all(drain_timed_out(1))
        gone = asyncio.Event()

        async def send(message: Message) -> None:
            if after_drain_timeout:
                await gone.wait()  # the client's connection stalls; then it leaves

        async def relay() -> None:
            source = _sse_source(b"data: one\n\n", asyncio.Event())
            with streams.open() as handle:
                await relay_stream(send, [], source, EventRelay(StreamObserver("openai"), None, handle))

        task = asyncio.create_task(relay())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario())


def test_the_budget_setting() -> None:
    assert load_settings({}).stream_buffer_bytes == 64 * 1024 * 1024
    assert load_settings({"MINI_LLM_STREAM_BUFFER_BYTES": "1048576"}).stream_buffer_bytes == 1048576
    assert "stream_buffer_bytes" in load_settings({}).describe()
    with pytest.raises(ConfigError, match="MINI_LLM_STREAM_BUFFER_BYTES"):
        load_settings({"MINI_LLM_STREAM_BUFFER_BYTES": "0"})


def test_a_stream_opened_after_the_drain_timeout_ends_at_once_with_the_same_event() -> None:
    """Its provider answered after the others were ended: it must not run on until the worker is killed."""

    async def scenario() -> tuple[list[Message], int]:
        streams = OpenStreams(1 << 20)
        streams.end_all(drain_timed_out(0.5))
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        source = _sse_source(b"data: one\n\n", asyncio.Event())
        with streams.open() as handle:
            relay = relay_stream(send, [], source, EventRelay(StreamObserver("openai"), None, handle))
            await asyncio.wait_for(relay, 5)
        return sent, len(streams)

    sent, still_open = asyncio.run(scenario())
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["more_body"] is False
    assert b'"code":"gateway_shutting_down"' in sent[1]["body"] and b"0.5s" in sent[1]["body"]
    assert b"one" not in sent[1]["body"]
    assert still_open == 0


async def _ending(kind: str, holding: asyncio.Event, go_on: asyncio.Event) -> AsyncIterator[bytes]:
    """A stream that holds 1 MiB at its end: a partial event its provider breaks off, or a trailing comment.

    `holding` is set once the relay has taken the first read in (it asks for the next).
    """
    if kind == "provider-failure":
        yield b"data: one\n\ndata: " + b"x" * (1 << 20)
        holding.set()
        await go_on.wait()
        raise UpstreamUnreachable("provider 'p' failed while sending its answer: ClientPayloadError")
    yield b"data: one\n\n:" + b"c" * (1 << 20)  # a comment loses nothing: a normal end
    holding.set()
    await go_on.wait()


@pytest.mark.parametrize("kind", ["provider-failure", "trailing-comment"])
def test_a_stream_sending_its_last_message_is_out_of_the_budget_and_its_provider_closed(kind: str) -> None:
    """Its bytes are gone by then: were it still counted, it would be the biggest holder, and the
    budget's cancel would cut its last message while the client is slow to take it."""

    async def scenario() -> tuple[list[Message], list[str], StreamEnded | None]:
        streams = OpenStreams(1 << 30)
        holding, go_on, last_sending, client_takes_it = (asyncio.Event() for _ in range(4))
        sent: list[Message] = []
        log: list[str] = []

        async def send(message: Message) -> None:
            if message.get("more_body") is False:
                log.append("last message sent")
                last_sending.set()
                await client_takes_it.wait()  # a stalled client
            sent.append(message)

        async def relay() -> None:
            with streams.open(lambda: log.append("provider closed")) as handle:
                source = _ending(kind, holding, go_on)
                await relay_stream(send, [], source, EventRelay(StreamObserver("openai"), None, handle))

        task = asyncio.create_task(relay())
        await holding.wait()
        counted = streams.held
        streams.limit = counted + counted // 2
        go_on.set()
        await last_sending.wait()
        other = streams.open()
        other.hold(counted - 1)  # past the budget with the ending stream's last count, and smaller than it
        client_takes_it.set()
        await asyncio.wait_for(task, 5)
        return sent, log, other.ended

    sent, log, other_ended = asyncio.run(scenario())
    assert log == ["provider closed", "last message sent"]
    assert sent[-1]["more_body"] is False
    if kind == "provider-failure":
        assert b"ClientPayloadError" in sent[-1]["body"]
    else:
        assert sent[-1]["body"] == b""
    assert other_ended is None  # the budget holds the other stream's bytes alone


def test_a_stream_ended_by_the_budget_closes_its_provider_before_its_error_event() -> None:
    async def scenario() -> list[str]:
        streams = OpenStreams(1 << 30)
        log: list[str] = []

        async def send(message: Message) -> None:
            if message.get("more_body") is False:
                log.append(message["body"].decode()[:80])

        holding = asyncio.Event()

        async def relay() -> None:
            source = _ending("provider-failure", holding, asyncio.Event())  # idle, holding a partial event
            with streams.open(lambda: log.append("provider closed")) as handle:
                await relay_stream(send, [], source, EventRelay(StreamObserver("openai"), None, handle))

        task = asyncio.create_task(relay())
        await holding.wait()
        streams.limit = 1
        streams.open().hold(1)  # past the budget: the relay holds the most
        await asyncio.wait_for(task, 5)
        return log

    log = asyncio.run(scenario())
    assert log[0] == "provider closed"
    assert log[1].startswith('data: {"error":{"message":"the gateway ended this stream')
