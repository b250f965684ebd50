"""The stream relay: whole events out, nothing changed or lost; the observer on the side never raises."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mini_llm.asgi import Message, Receive
from mini_llm.errors import Dialect, UpstreamUnreachable
from mini_llm.gateway.disconnect import DisconnectWatch
from mini_llm.gateway.observer import StreamObserver
from mini_llm.gateway.open_streams import OpenStreams
from mini_llm.gateway.relay import EventRelay, relay_stream
from mini_llm.gateway.scrub import scrubbed
from mini_llm.gateway.sending import relay_body, send_whole
from mini_llm.hotpath import SSEEvent
from tests.unit.memory import retained_while_the_provider_is_silent, run_traced, traced_bytes


def _event(data: str, name: str = "message") -> SSEEvent:
    return SSEEvent(name, data, "", b"")


def test_openai_usage_done_and_first_token() -> None:
    observer = StreamObserver("openai")
    observer.observe(_event('{"choices":[{"delta":{"role":"assistant","content":""}}]}'))
    first_tokens = [observer.first_token]
    observer.observe(_event('{"choices":[{"delta":{"content":"Hi"}}]}'))
    first_tokens.append(observer.first_token)
    assert first_tokens[0] is None and first_tokens[1] is not None
    observer.observe(_event('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'))
    observer.observe(_event("[DONE]"))
    assert observer.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert observer.done and not observer.error
    assert "usage=prompt_tokens=3,completion_tokens=2,total_tokens=5" in observer.log_fields()
    assert observer.log_fields().endswith("malformed=0 end=done")


def test_anthropic_usage_and_error() -> None:
    observer = StreamObserver("anthropic")
    observer.observe(_event('{"type":"message_start","message":{"usage":{"input_tokens":9}}}', "message_start"))
    observer.observe(_event('{"type":"content_block_delta"}', "content_block_delta"))
    observer.observe(_event('{"type":"message_delta","usage":{"output_tokens":4}}', "message_delta"))
    observer.observe(_event('{"type":"error","error":{"type":"overloaded_error"}}', "error"))
    assert observer.usage == {"input_tokens": 9, "output_tokens": 4}
    assert observer.first_token is not None
    assert observer.error and observer.log_fields().endswith("end=error")


def test_malformed_events_are_counted_not_raised() -> None:
    openai_observer = StreamObserver("openai")
    openai_observer.observe(_event('{"usage":{"a":1}, broken'))
    openai_observer.observe(_event('{"usage":{"a":1}} trailing'))
    anthropic_observer = StreamObserver("anthropic")
    anthropic_observer.observe(_event('{"type":"message_start"}', "message_start"))
    anthropic_observer.observe(_event('{"type":"message_start","message":[]}', "message_start"))
    anthropic_observer.observe(_event("not json", "message_delta"))
    assert (openai_observer.malformed, openai_observer.events) == (2, 2)
    assert (anthropic_observer.malformed, anthropic_observer.events) == (3, 3)


def _relay(chunks: list[bytes], key: str | None = None, protocol: Dialect = "openai") -> tuple[list[bytes], bool]:
    """Run relay_stream over `chunks`; returns the bodies sent and whether the last one closed."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def run() -> None:
        with OpenStreams(64 * 1024 * 1024).open() as stream:
            secret = key.encode() if key else None
            await relay_stream(send, [], source(), EventRelay(StreamObserver(protocol), secret, stream))

    asyncio.run(run())
    assert sent[0]["type"] == "http.response.start"
    bodies = [m["body"] for m in sent[1:]]
    return bodies, sent[-1]["more_body"] is False


STREAM = (
    b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9"}}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"x"}}]}\r\n\r\n'
    b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("seed", range(30))
def test_relay_sends_the_stream_unchanged_in_whole_events(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 12)))
    chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    bodies, closed = _relay(chunks)
    assert closed
    assert b"".join(bodies) == STREAM
    for body in bodies[:-1]:
        assert body.endswith((b"\n\n", b"\r\n\r\n")), body  # never half an event


def test_chunks_on_event_boundaries_go_out_as_they_are() -> None:
    frames = [frame + b"\n\n" for frame in STREAM.split(b"\n\n") if frame]
    bodies, _ = _relay(frames)
    assert bodies[:-1] == frames
    assert all(sent is frame for sent, frame in zip(bodies, frames, strict=False))  # not copied


def test_cut_event_becomes_an_error_event_and_a_trailing_comment_does_not() -> None:
    bodies, closed = _relay([b"data: a\n\ndata: b", b"c"])
    assert closed
    assert bodies[0] == b"data: a\n\n"
    assert bodies[-1].startswith(b'data: {"error":{"message":"the provider ended the stream in the middle')
    assert b"data: bc" not in b"".join(bodies)
    bodies, _ = _relay([b"data: a\n\n: bye\n"])
    assert b"".join(bodies) == b"data: a\n\n"


def test_key_is_scrubbed_even_when_split_across_chunks() -> None:
    key = "sk-secret-key-1234"
    event = b'data: {"error":{"message":"bad key ' + key.encode() + b'"}}\n\n'
    bodies, _ = _relay([event[:40], event[40:]], key=key)
    assert b"".join(bodies) == event.replace(key.encode(), b"*" * len(key))


def test_oversized_event_ends_the_stream_with_an_anthropic_error() -> None:
    bodies, closed = _relay([b"event: x\ndata: " + b"a" * (9 * 1024 * 1024)], protocol="anthropic")
    assert closed
    assert bodies[-1].startswith(b"event: error\ndata: ")
    assert b"oversized event" in bodies[-1]


async def _watched(receive: Receive) -> tuple[bool, bool]:
    """Run a request body that waits 'for the provider' under a DisconnectWatch: (cancelled, absorbed)."""
    watch = DisconnectWatch(receive)
    try:
        await asyncio.sleep(0.5)
    except asyncio.CancelledError:
        return True, watch.absorb()
    finally:
        watch.close()
    return False, watch.absorb()


def test_watch_on_a_future_receive_rearms_past_the_end_of_body_and_cancels_on_disconnect() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        loop = asyncio.get_running_loop()
        end_of_body: Message = {"type": "http.request", "body": b"", "more_body": False}
        messages: list[Message] = [end_of_body, {"type": "http.disconnect"}]
        calls = 0

        def receive() -> asyncio.Future[Message]:  # granian's shape: receive() returns a future
            nonlocal calls
            calls += 1
            future: asyncio.Future[Message] = loop.create_future()
            loop.call_later(0.01 * calls, future.set_result, messages.pop(0))
            return future

        cancelled, absorbed = await _watched(receive)
        return cancelled, absorbed, calls

    assert asyncio.run(scenario()) == (True, True, 2)


def test_watch_on_a_coroutine_receive_cancels_on_disconnect() -> None:
    async def receive() -> Message:  # uvicorn's shape: receive() is a coroutine
        await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    assert asyncio.run(_watched(receive)) == (True, True)


def test_watch_stops_quietly_when_the_server_cannot_tell_and_close_cancels_the_pending_receive() -> None:
    async def failing() -> Message:
        raise RuntimeError("the server lost the connection state")

    def raising() -> asyncio.Future[Message]:
        raise RuntimeError("receive() itself fails")

    async def scenario() -> tuple[tuple[bool, bool], tuple[bool, bool], bool]:
        quiet = await _watched(failing)
        broken = await _watched(raising)
        never: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        watch = DisconnectWatch(lambda: never)
        watch.close()
        await asyncio.sleep(0)
        return quiet, broken, never.cancelled()

    assert asyncio.run(scenario()) == ((False, False), (False, False), True)


def test_a_deeply_nested_usage_is_counted_malformed_not_raised() -> None:
    deep = "[" * 5000 + "]" * 5000
    openai_observer = StreamObserver("openai")
    openai_observer.observe(_event('{"choices":[],"usage":{"prompt_tokens":' + deep + "}}"))
    anthropic_observer = StreamObserver("anthropic")
    anthropic_observer.observe(_event('{"message":{"usage":{"input_tokens":' + deep + "}}}", "message_start"))
    anthropic_observer.observe(_event('{"usage":{"output_tokens":' + deep + "}}", "message_delta"))
    assert (openai_observer.malformed, anthropic_observer.malformed) == (1, 2)


def _relay_body(pieces: list[bytes]) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def rest() -> AsyncIterator[bytes]:
        for piece in pieces[1:]:
            yield piece

    asyncio.run(relay_body(send, 201, [], pieces[0], rest()))
    return sent


def test_a_body_in_one_piece_goes_out_as_one_full_message() -> None:
    sent = _relay_body([b'{"whole":true}'])
    assert sent == [
        {"type": "http.response.start", "status": 201, "headers": [(b"vary", b"Origin")]},
        {"type": "http.response.body", "body": b'{"whole":true}', "more_body": False},
    ]


def test_a_body_in_pieces_goes_out_piece_by_piece_the_last_one_ending_it() -> None:
    sent = _relay_body([b"a", b"b", b"c"])
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [(b"a", True), (b"b", True), (b"c", False)]


def _big_event_then_one_byte() -> Iterator[bytes]:
    size = 1024 * 1024
    yield b"data: " + b"a" * size + b"\n\nd"  # a whole event, and the first byte of the next


def _trickle() -> Iterator[bytes]:
    yield b"data: "
    for _ in range(10_000):  # one event in two-byte reads, as a provider dribbling it out sends it
        size = 2
        yield b"a" * size


@pytest.mark.parametrize("chunks", [_big_event_then_one_byte, _trickle], ids=["big-chunk", "trickle"])
def test_an_idle_stream_holds_no_more_than_it_counts(chunks: Callable[[], Iterator[bytes]]) -> None:
    """While the provider is silent, what the relay keeps is its partial event, counted against the budget.

    Both copies are counted: the relay's and the splitter's. Anything else it kept alive (the chunk a
    tail came in, the last event, per-read objects) would be memory the budget never sees.
    """
    slack = 16 * 1024  # the relay's own small objects

    async def scenario() -> tuple[int, int]:
        streams = OpenStreams(1 << 30)
        idle, release = asyncio.Event(), asyncio.Event()
        before = 0

        async def send(message: Message) -> None:
            return None  # the client took it: nothing of it stays in the test

        async def source() -> AsyncIterator[bytes]:
            nonlocal before
            before = traced_bytes()
            for chunk in chunks():
                yield chunk
            del chunk  # the test's own reference: a provider's reader lets go of what it handed on
            idle.set()
            await release.wait()  # the provider goes silent
            yield b"\n\n"

        async def relay() -> None:
            with streams.open() as stream:
                await relay_stream(send, [], source(), EventRelay(StreamObserver("openai"), None, stream))

        task = asyncio.create_task(relay())
        await idle.wait()
        retained = traced_bytes() - before
        counted = streams.held
        release.set()
        await task
        return retained, counted

    retained, counted = run_traced(scenario())
    assert counted > 0
    assert retained <= counted + slack, (retained, counted)


def test_a_live_body_goes_out_as_each_piece_arrives() -> None:
    """An event stream answering a request that did not ask for one: no piece waits for the next."""

    async def scenario() -> tuple[list[bytes], list[tuple[bytes, bool]]]:
        sent: list[Message] = []
        go_on = asyncio.Event()

        async def send(message: Message) -> None:
            sent.append(message)

        async def rest() -> AsyncIterator[bytes]:
            yield b"data: b\n\n"
            await go_on.wait()  # the provider takes its time over the next event
            yield b"data: c\n\n"

        task = asyncio.create_task(relay_body(send, 200, [], b"data: a\n\n", rest(), live=True))
        await asyncio.sleep(0.05)
        early = [m["body"] for m in sent[1:]]
        go_on.set()
        await task
        return early, [(m["body"], m["more_body"]) for m in sent[1:]]

    early, bodies = asyncio.run(scenario())
    assert early == [b"data: a\n\n", b"data: b\n\n"]
    assert bodies == [(b"data: a\n\n", True), (b"data: b\n\n", True), (b"data: c\n\n", True), (b"", False)]


def test_every_answer_varies_on_origin() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def no_events() -> AsyncIterator[bytes]:
        for chunk in [b"data: [DONE]\n\n"]:
            yield chunk

    async def run() -> None:
        await send_whole(send, 200, [(b"content-type", b"application/json")], b"{}")
        with OpenStreams(1024).open() as stream:
            await relay_stream(send, [], no_events(), EventRelay(StreamObserver("openai"), None, stream))

    asyncio.run(run())
    starts = [m["headers"] for m in sent if m["type"] == "http.response.start"]
    assert [headers.count((b"vary", b"Origin")) for headers in starts] == [1, 1]


def test_the_scrub_keeps_nothing_of_the_last_read_while_the_provider_is_silent() -> None:
    size = 2 * 1024 * 1024

    async def consume(reads: AsyncIterator[bytes]) -> None:
        async for piece in scrubbed(reads, b"sk-secret-key-1234"):
            del piece  # the client took it

    retained = retained_while_the_provider_is_silent(consume, [b"a" * size], b"b")
    assert retained < size // 2, retained


def _opening(chunks: list[bytes], protocol: Dialect = "openai") -> tuple[bytes, EventRelay, list[bytes]]:
    """EventRelay.first over `chunks`: what it returns, the relay, and the chunks it left unread."""
    left = list(chunks)

    async def source() -> AsyncIterator[bytes]:
        while left:
            yield left.pop(0)

    async def run() -> tuple[bytes, EventRelay]:
        with OpenStreams(64 * 1024 * 1024).open() as stream:
            relay = EventRelay(StreamObserver(protocol), None, stream)
            return await relay.first(source()), relay

    first, relay = asyncio.run(run())
    return first, relay, left


class TestTheCommitPoint:
    """EventRelay.first reads a stream up to its first complete event: nothing further, nothing lost."""

    def test_stops_at_the_first_event_and_keeps_comments_before_it(self) -> None:
        chunks = [b": keep-alive\n\n", b'data: {"choices":[]', b"}\n\ndata: {", b'"later":1}\n\n']
        first, relay, left = _opening(chunks)
        assert first == b': keep-alive\n\ndata: {"choices":[]}\n\n'  # the partial `data: {` waits in the relay
        assert left == [b'"later":1}\n\n']
        assert (relay.observer.events, relay.observer.error) == (1, False)

    @pytest.mark.parametrize(
        ("protocol", "event"),
        [
            ("anthropic", b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'),
            ("openai", b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n'),
        ],
    )
    def test_an_error_as_the_first_event_is_seen(self, protocol: Dialect, event: bytes) -> None:
        first, relay, _ = _opening([event, b"data: more\n\n"], protocol)
        assert first == event
        assert relay.observer.opened_with_error

    def test_an_error_after_a_good_first_event_in_the_same_read_is_no_opening_error(self) -> None:
        read = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"error":{"message":"later"}}\n\n'
        first, relay, _ = _opening([read])
        assert first == read  # the commit happened at the first event; the error goes out as it came
        assert relay.observer.error and not relay.observer.opened_with_error

    def test_comments_alone_commit_once_they_add_up(self) -> None:
        comment = b": " + b"p" * 1022 + b"\n\n"  # 1 KiB
        chunks = [comment] * 100
        first, relay, left = _opening(chunks)
        assert relay.observer.events == 0
        assert 64 * 1024 < len(first) <= 65 * 1024  # no more than the limit and one piece
        assert len(left) == 100 - len(first) // len(comment)

    @pytest.mark.parametrize("chunks", [[], [b": only a comment\n\n"], [b'data: {"cut":']])
    def test_a_stream_that_ends_before_its_first_event_is_a_failure_to_retry(self, chunks: list[bytes]) -> None:
        with pytest.raises(UpstreamUnreachable, match="ended the stream before its first event"):
            _opening(chunks)

    def test_a_stream_that_never_sends_an_event_ends_with_an_error_event(self) -> None:
        bodies, closed = _relay([b": ping\n\n"])
        assert closed and bodies[0] == b": ping\n\n"
        assert bodies[-1].startswith(b'data: {"error":{"message":"the provider ended the stream without sending an')


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ('{"error":{"message":"overloaded"}}', True),
        ('{ "error": {"message": "overloaded"} }', True),
        ('{"id":"c1","object":"chat.completion.chunk","error":{"message":"upstream failed"}}', True),
        ('{"choices":[{"delta":{"content":"error"}}]}', False),  # the word as content is no error
        ('{"choices":[{"delta":{"content":"\\"error\\": none"}}]}', False),
        ('{"error":null,"choices":[]}', False),
    ],
)
def test_an_openai_error_chunk_in_any_shape_is_seen(data: str, error: bool) -> None:
    observer = StreamObserver("openai")
    observer.observe(_event(data))
    assert observer.error is error
    assert observer.malformed == 0
