"""The fast HTTP/1.1 client against real servers on 127.0.0.1, scripted per test, on uvloop and asyncio."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import trustme
import uvloop

from mini_llm.errors import GatewayError, UpstreamTimeout, UpstreamUnreachable
from mini_llm.providers import DEFAULT_ANTHROPIC_VERSION, Provider, Target
from mini_llm.upstream.failures import connect_failure_reason
from mini_llm.upstream.fast_client import FastClient
from mini_llm.upstream.pool import OriginPool
from mini_llm.upstream.request_head import origin_of
from tests.unit.scripted_upstream import Exchange, ScriptedUpstream, answer, keep_alive

T = TypeVar("T")
CHAT = "/chat/completions"
BODY = b'{"model":"m","messages":[]}'
# A body a client sent with a DELETE: after a head without a length it would be a second request.
SMUGGLED = b"GET /v1/secret HTTP/1.1\r\nHost: x\r\n\r\n"
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Run(Protocol):
    def __call__(self, scenario: Coroutine[Any, Any, T]) -> T: ...


@pytest.fixture(params=["uvloop", "asyncio"])
def run(request: pytest.FixtureRequest) -> Run:
    """Run one scenario on a fresh loop of the kind the gateway uses (uvloop), and on asyncio's own."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(scenario: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            return loop_runner.run(scenario)

    return runner


def target(base_url: str, protocol: str = "openai", key: str | None = "sk-test") -> Target:
    provider = Provider("local", protocol, base_url, (key,) if key else (), "LOCAL_API_KEY")  # type: ignore[arg-type]
    return Target(provider, "m", key, key.encode() if key else None)


async def post(client: FastClient, server: ScriptedUpstream, body: bytes = BODY) -> bytes:
    response = await client.send(target(server.base_url), CHAT, [body], {})
    assert response.status == 200
    return await response.read()


async def until(condition: Callable[[], bool]) -> None:
    """Poll a condition the server side sets, for at most two seconds (a hang would block the loop's test)."""
    async with asyncio.timeout(2):
        while not condition():  # noqa: ASYNC110 - the condition is the server's state, no event to wait on
            await asyncio.sleep(0.01)


async def failure(scenario: Awaitable[object]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await scenario
    return caught.value


def test_keep_alive_reuses_one_connection(run: Run) -> None:
    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(keep_alive) as server:
            for _ in range(3):
                assert await post(client, server) == b'{"ok":true}'
            await client.close()
        assert server.accepted == 1
        assert len(server.requests) == 3

    run(scenario())


def test_the_request_on_the_wire_is_the_template_the_forwarded_headers_and_the_body(run: Run) -> None:
    body = b'{"model": "x", "messages": []}'
    views = [memoryview(body)[:10], memoryview(body)[10:20], memoryview(body)[20:]]
    client_headers = {
        b"x-kept": b"1",
        b"authorization": b"Bearer client-key",
        b"content-type": b"text/plain",
        b"connection": b"keep-alive, x-hop",
        b"x-hop": b"gone",
        b"x_under": b"gone",
        b"user-agent": b"caf\xc3\xa9",
    }

    async def scenario() -> tuple[bytes, bytes, int]:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(keep_alive) as server:
            openai = await client.send(target(server.base_url), CHAT, views, client_headers)
            await openai.read()
            anthropic = await client.send(target(server.base_url, "anthropic"), "/v1/messages", [body], {})
            await anthropic.read()
            await client.close()
        return server.requests[0], server.requests[1], server.port

    openai, anthropic, port = run(scenario())
    openai_head = (
        b"POST /v1/chat/completions HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"Authorization: Bearer sk-test\r\n"
        b"Content-Type: application/json\r\n"
        b"Accept-Encoding: identity\r\n"
        b"x-kept: 1\r\n"
        b"user-agent: caf\xc3\xa9\r\n"
        b"Content-Length: %d\r\n\r\n" % (port, len(body))
    )
    anthropic_head = (
        b"POST /v1/v1/messages HTTP/1.1\r\n"
        b"Host: 127.0.0.1:%d\r\n"
        b"x-api-key: sk-test\r\n"
        b"Content-Type: application/json\r\n"
        b"Accept-Encoding: identity\r\n"
        b"anthropic-version: %s\r\n"
        b"Content-Length: %d\r\n\r\n" % (port, DEFAULT_ANTHROPIC_VERSION.encode(), len(body))
    )
    assert openai == openai_head + body
    assert anthropic == anthropic_head + body


def test_get_and_delete_go_without_content_and_keep_the_connection_alive(run: Run) -> None:
    """RFC 9110 8.6: no Content-Length (nor Content-Type) where the method anticipates no content, and no body
    whatever was passed; a POST without content still says 0. The answer to a GET has a body, and the
    connection serves the next request."""
    by_id = "/responses/resp_1"

    async def scenario() -> tuple[list[bytes], list[bytes], int]:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(keep_alive) as server:
            bodies = []
            for method, path, body in [
                ("GET", by_id + "/input_items?limit=2&include%5B%5D=a&after=x%2Fy", ()),
                ("DELETE", by_id, (SMUGGLED,)),
                ("POST", by_id + "/cancel", (b"",)),
                ("POST", CHAT, (BODY,)),
            ]:
                response = await client.send(target(server.base_url), path, body, {b"x-kept": b"1"}, method=method)
                bodies.append(await response.read())
            await client.close()
        return server.requests, bodies, server.accepted

    requests, bodies, accepted = run(scenario())
    assert bodies == [b'{"ok":true}'] * 4
    assert accepted == 1
    assert len(requests) == 4
    common = b"Host: 127.0.0.1:%d\r\nAuthorization: Bearer sk-test\r\n"
    port = int(requests[0].split(b"Host: 127.0.0.1:")[1].split(b"\r\n")[0])
    assert requests[0] == (
        b"GET /v1/responses/resp_1/input_items?limit=2&include%5B%5D=a&after=x%2Fy HTTP/1.1\r\n"
        + common % port
        + b"Accept-Encoding: identity\r\nx-kept: 1\r\n\r\n"
    )
    assert requests[1] == (
        b"DELETE /v1/responses/resp_1 HTTP/1.1\r\n" + common % port + b"Accept-Encoding: identity\r\nx-kept: 1\r\n\r\n"
    )
    assert requests[2] == (
        b"POST /v1/responses/resp_1/cancel HTTP/1.1\r\n"
        + common % port
        + b"Content-Type: application/json\r\nAccept-Encoding: identity\r\nx-kept: 1\r\nContent-Length: 0\r\n\r\n"
    )
    assert requests[3].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert requests[3].endswith(b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)


def test_a_client_anthropic_version_replaces_the_default(run: Run) -> None:
    async def scenario() -> bytes:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(keep_alive) as server:
            response = await client.send(
                target(server.base_url, "anthropic", None), "/messages", [BODY], {b"anthropic-version": b"2099-01-01"}
            )
            await response.read()
            await client.close()
        return server.requests[0]

    head = run(scenario()).partition(b"\r\n\r\n")[0]
    assert head.count(b"anthropic-version") == 1
    assert b"\r\nanthropic-version: 2099-01-01\r\n" in head
    assert b"x-api-key" not in head  # a keyless local provider gets no key header at all


def test_a_connection_the_provider_closed_while_idle_is_not_used_again(run: Run) -> None:
    async def close_after_one(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(answer())  # keep-alive as far as the answer says, then the provider closes

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(close_after_one) as server:
            await post(client, server)
            await asyncio.sleep(0.1)  # the client's loop sees the EOF while the connection is idle
            assert await post(client, server) == b'{"ok":true}'
            await client.close()
        assert server.accepted == 2
        assert len(server.requests) == 2

    run(scenario())


def test_a_provider_that_closes_after_reading_the_request_is_a_502_and_not_retried(run: Run) -> None:
    async def read_and_close(exchange: Exchange) -> None:
        await exchange.request()

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(read_and_close) as server:
            error = await failure(post(client, server))
            await client.close()
        assert isinstance(error, UpstreamUnreachable)
        assert error.status == 502
        assert error.message == "provider 'local' failed before answering: the connection closed"
        assert len(server.requests) == 1
        assert server.accepted == 1

    run(scenario())


def test_chunked_answers_come_piece_by_piece_and_whole(run: Run) -> None:
    async def chunked(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            await exchange.send(STREAM_HEAD + b"6\r\ndata: \r\n")
            await asyncio.sleep(0.02)
            await exchange.send(b"3;ext=1\r\nab\n\r\n")
            await asyncio.sleep(0.02)
            await exchange.send(b"1\r\n\n\r\n0\r\ntrailer: x\r\n\r\n")

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(chunked) as server:
            streamed = await client.send(target(server.base_url), CHAT, [BODY], {})
            assert streamed.is_event_stream
            assert streamed.content_length is None
            pieces = [piece async for piece in streamed.chunks()]
            assert pieces == [b"data: ", b"ab\n", b"\n"]
            whole = await client.send(target(server.base_url), CHAT, [BODY], {})
            assert await whole.read() == b"data: ab\n\n"
            await client.close()
        assert server.accepted == 1  # a chunked answer read to its end leaves the connection reusable

    run(scenario())


def test_events_that_came_while_the_reader_was_busy_come_as_one_piece(run: Run) -> None:
    """Fifty one-event chunks in one read, taken after they are all in: one piece, not fifty sends."""
    events = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in [b"data: %d\n\n" % i for i in range(50)])

    async def chunked(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            await exchange.send(STREAM_HEAD + events + b"0\r\n\r\n")

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(chunked) as server:
            streamed = await client.send(target(server.base_url), CHAT, [BODY], {})
            await asyncio.sleep(0.1)  # the relay is busy elsewhere: the whole answer is in
            pieces = [piece async for piece in streamed.chunks()]
            assert pieces == [b"".join(b"data: %d\n\n" % i for i in range(50))]
            await client.close()

    run(scenario())


def test_a_close_delimited_answer_ends_with_the_connection_which_is_not_reused(run: Run) -> None:
    async def until_close(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{")
        await asyncio.sleep(0.02)
        await exchange.send(b'"a":1}')

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(until_close) as server:
            for _ in range(2):
                response = await client.send(target(server.base_url), CHAT, [BODY], {})
                assert response.content_length is None
                assert await response.read() == b'{"a":1}'
            await client.close()
        assert server.accepted == 2

    run(scenario())


def test_a_slow_reader_pauses_the_provider_so_memory_stays_bounded(run: Run) -> None:
    total = 50 * 1024 * 1024
    piece = b"x" * (64 * 1024)

    async def large(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        for _ in range(total // len(piece)):
            await exchange.send(piece)  # drain: the server holds no more than its own write buffer

    async def scenario() -> tuple[int, int]:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(large) as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            received = 0
            await asyncio.sleep(0.2)  # a client that takes its time: the provider could send megabytes meanwhile
            async for chunk in response.chunks():
                received += len(chunk)
                del chunk
                if received % (4 * 1024 * 1024) < len(piece):
                    await asyncio.sleep(0.05)  # and then takes its bytes in slow gulps
            peak = tracemalloc.get_traced_memory()[1] - start
            await client.close()
        return received, peak

    tracemalloc.start()
    try:
        received, peak = run(scenario())
    finally:
        tracemalloc.stop()
    assert received == total
    # The queue stops at the high-water mark (256 KiB) plus one read (at most 256 KiB); the rest is
    # the test server's own buffers. Unpaused, the client would hold megabytes after its first pause.
    assert peak < 2 * 1024 * 1024, peak


def test_a_silent_provider_leaves_nothing_of_the_last_piece_alive(run: Run) -> None:
    """Waiting for the next piece, the reader keeps no reference to the last one: a stream's memory
    is what the relay counts (one per open stream adds up)."""
    size = 100 * 1024

    async def then_silent(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(STREAM_HEAD + b"%x\r\n" % size + b"a" * size + b"\r\n")
        await exchange.closed_by_client()

    async def scenario() -> tuple[int, int]:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(then_silent) as server:
            before = tracemalloc.get_traced_memory()[0]
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            chunks = response.chunks()
            received = 0
            while received < size:
                chunk = await anext(chunks)
                received += len(chunk)
                del chunk
            waiting = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0.05)  # the reader now waits for the provider
            retained = tracemalloc.get_traced_memory()[0] - before
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await client.close()
        return received, retained

    tracemalloc.start()
    try:
        received, retained = run(scenario())
    finally:
        tracemalloc.stop()
    assert received == size
    assert retained < size // 2, retained  # the connection's own state, not the piece


def test_silence_before_the_head_is_a_504(run: Run) -> None:
    async def silent(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.closed_by_client()

    async def scenario() -> GatewayError:
        client = FastClient(0.2, 10, 30)
        async with ScriptedUpstream(silent) as server:
            error = await failure(post(client, server))
            await client.close()
        return error

    error = run(scenario())
    assert isinstance(error, UpstreamTimeout)
    assert error.status == 504
    assert error.message == "provider 'local' went silent for 0.2s before answering"


def test_a_provider_reading_a_large_request_slowly_is_not_silent(run: Run) -> None:
    """The wait for the head counts from the request's last progress into the provider, as
    aiohttp's read timeout starts once the request is written."""
    body = b"x" * (32 * 1024 * 1024)

    async def reads_slowly(exchange: Exchange) -> None:
        head = await exchange.reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: %d\r\n" % len(body) in head
        left = len(body)
        while left:
            step = min(left, 2 * 1024 * 1024)
            await exchange.reader.readexactly(step)
            left -= step
            await asyncio.sleep(0.12)  # 16 steps: past the timeout in all, each well within it (a loaded CI box)
        await exchange.send(answer())

    async def scenario() -> bytes:
        client = FastClient(1.5, 10, 30)
        async with ScriptedUpstream(reads_slowly) as server:
            answered = await post(client, server, body)
            await client.close()
        return answered

    assert run(scenario()) == b'{"ok":true}'


def test_a_provider_that_stops_taking_the_request_in_is_silent(run: Run) -> None:
    async def reads_only_the_head(exchange: Exchange) -> None:
        await exchange.reader.readuntil(b"\r\n\r\n")
        await exchange.client_closed.wait()

    async def scenario() -> GatewayError:
        client = FastClient(0.2, 10, 30)
        async with ScriptedUpstream(reads_only_the_head) as server:
            error = await failure(post(client, server, b"x" * (32 * 1024 * 1024)))
            await client.close()
            server.exchanges[0].client_closed.set()
        return error

    error = run(scenario())
    assert isinstance(error, UpstreamTimeout)
    assert error.message == "provider 'local' went silent for 0.2s before answering"


def test_silence_between_pieces_of_the_body_is_a_504(run: Run) -> None:
    async def stalls(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await asyncio.sleep(0.15)
        await exchange.send(b"def")  # within the timeout: the clock starts again
        await exchange.closed_by_client()

    async def scenario() -> tuple[list[bytes], GatewayError]:
        client = FastClient(0.25, 10, 30)
        pieces: list[bytes] = []
        async with ScriptedUpstream(stalls) as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            with pytest.raises(GatewayError) as caught:
                async for chunk in response.chunks():
                    pieces.append(chunk)
            await client.close()
        return pieces, caught.value

    pieces, error = run(scenario())
    assert pieces == [b"abc", b"def"]
    assert isinstance(error, UpstreamTimeout)
    assert error.message == "provider 'local' went silent for 0.25s while sending its answer"


def test_a_framing_error_is_a_502_and_the_connection_is_dropped(run: Run) -> None:
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nok"
    bad_chunk = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n"

    async def broken(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            await exchange.send(smuggled if len(exchange.server.requests) == 1 else bad_chunk)

    async def scenario() -> tuple[GatewayError, GatewayError, int]:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(broken) as server:
            before = await failure(post(client, server))
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            during = await failure(response.read())
            await client.close()
        return before, during, server.accepted

    before, during, accepted = run(scenario())
    assert isinstance(before, UpstreamUnreachable)
    assert before.message.startswith("provider 'local' failed before answering: the provider sent ")
    assert isinstance(during, UpstreamUnreachable)
    assert during.message.startswith("provider 'local' failed while sending its answer: the provider sent ")
    assert accepted == 2  # the connection of the first failure was not used again


@pytest.mark.parametrize("later", [False, True], ids=["with-the-answer", "after-it"])
def test_bytes_past_the_end_of_an_answer_drop_its_connection(run: Run, later: bool) -> None:
    """Nobody asked for them, so the next answer could not be told from them; the answer stands,
    whether they came in the same read or a later one."""

    async def stray(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            if later:
                await exchange.send(answer())
                await asyncio.sleep(0.05)
                await exchange.send(b"HTTP/1.1 200 OK\r\n")
            else:
                await exchange.send(answer() + b"HTTP/1.1 200 OK\r\n")

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(stray) as server:
            for _ in range(2):
                assert await post(client, server) == b'{"ok":true}'
                if later:
                    await asyncio.sleep(0.1)  # the stray bytes come while the answer is already read
            await client.close()
        assert server.accepted == 2

    run(scenario())


def test_an_answer_that_says_connection_close_ends_its_connection(run: Run) -> None:
    async def says_close(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            await exchange.send(answer(b'{"ok":true}', b"connection: close"))  # and keeps it open anyway

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(says_close) as server:
            for _ in range(2):
                assert await post(client, server) == b'{"ok":true}'
            await client.close()
        assert server.accepted == 2

    run(scenario())


def test_closing_the_client_closes_idle_connections_and_fails_busy_ones(run: Run) -> None:
    async def answers_two(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            if len(exchange.server.requests) <= 2:
                await asyncio.sleep(0.05)  # both first requests in flight at once: two connections
                await exchange.send(answer())
        exchange.client_closed.set()

    async def scenario() -> GatewayError:
        client = FastClient(30, 10, 30)
        async with ScriptedUpstream(answers_two) as server:
            await asyncio.gather(post(client, server), post(client, server))
            busy = asyncio.ensure_future(post(client, server))  # on one of the two, never answered
            await until(lambda: len(server.requests) == 3)
            await client.close()
            error = await failure(busy)
            for exchange in server.exchanges:
                await asyncio.wait_for(exchange.client_closed.wait(), 2)
        assert server.accepted == 2
        return error

    error = run(scenario())
    assert error.message == "provider 'local' failed before answering: the connection closed"


def test_the_pool_limit_bounds_the_connections_and_the_requests_past_it_wait(run: Run) -> None:
    in_flight = 0
    most = 0

    async def slow(exchange: Exchange) -> None:
        nonlocal in_flight, most
        while await exchange.request() is not None:
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            await exchange.send(answer())

    async def scenario() -> None:
        client = FastClient(5, 2, 30)
        async with ScriptedUpstream(slow) as server:
            bodies = await asyncio.gather(*(post(client, server) for _ in range(3)))
            await client.close()
        assert bodies == [b'{"ok":true}'] * 3
        assert server.accepted == 2
        assert most == 2

    run(scenario())


def test_waiting_for_a_connection_is_bounded_by_the_timeout(run: Run) -> None:
    async def scenario() -> GatewayError:
        client = FastClient(0.2, 1, 30)
        async with ScriptedUpstream(keep_alive) as server:
            # In, but not read yet: the pool's one connection stays busy until its answer is taken.
            first = await client.send(target(server.base_url), CHAT, [BODY], {})
            error = await failure(post(client, server))
            assert await first.read() == b'{"ok":true}'
            assert await post(client, server) == b'{"ok":true}'
            await client.close()
        assert server.accepted == 1
        return error

    error = run(scenario())
    assert isinstance(error, UpstreamTimeout)
    assert error.message == "no connection to provider 'local' came free within 0.2s (MINI_LLM_UPSTREAM_POOL_LIMIT)"


def test_a_request_cancelled_while_waiting_for_a_connection_gives_up_its_turn(run: Run) -> None:
    release = asyncio.Event()

    async def held_once(exchange: Exchange) -> None:
        await exchange.request()
        await release.wait()
        await exchange.send(answer())
        await keep_alive(exchange)

    async def scenario() -> None:
        client = FastClient(5, 1, 30)
        async with ScriptedUpstream(held_once) as server:
            first = asyncio.ensure_future(post(client, server))
            await asyncio.sleep(0.05)
            waiting = asyncio.ensure_future(post(client, server))
            await asyncio.sleep(0.05)
            waiting.cancel()
            release.set()
            assert await first == b'{"ok":true}'
            assert await post(client, server) == b'{"ok":true}'  # the one slot was not lost
            await client.close()
        assert waiting.cancelled()
        assert server.accepted == 1

    run(scenario())


def test_idle_connections_close_after_the_idle_timeout(run: Run) -> None:
    closed = asyncio.Event()

    async def watches_close(exchange: Exchange) -> None:
        await keep_alive(exchange)
        closed.set()

    async def scenario() -> None:
        client = FastClient(5, 10, 0.1)
        async with ScriptedUpstream(watches_close) as server:
            await post(client, server)
            await asyncio.wait_for(closed.wait(), 2)
            await post(client, server)
            await client.close()
        assert server.accepted == 2

    run(scenario())


def test_a_cancelled_request_closes_its_connection_and_leaves_no_timer(run: Run) -> None:
    async def silent(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.closed_by_client()

    async def scenario() -> None:
        client = FastClient(30, 10, 30)
        async with ScriptedUpstream(silent) as server:
            pending = asyncio.ensure_future(post(client, server))
            await until(lambda: bool(server.requests))
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            await asyncio.wait_for(server.exchanges[0].client_closed.wait(), 2)
            loop = asyncio.get_running_loop()
            if isinstance(loop, asyncio.BaseEventLoop):  # uvloop keeps its timers out of Python's reach
                assert [timer for timer in loop._scheduled if not timer.cancelled()] == []  # type: ignore[attr-defined]
            await client.close()

    run(scenario())


def test_a_stream_left_mid_answer_closes_its_connection(run: Run) -> None:
    async def endless(exchange: Exchange) -> None:
        while await exchange.request() is not None:
            await exchange.send(STREAM_HEAD)
            await exchange.send(b"5\r\nhello\r\n")
            await exchange.closed_by_client()

    async def scenario() -> None:
        client = FastClient(30, 10, 30)
        async with ScriptedUpstream(endless) as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            chunks = response.chunks()
            assert await anext(chunks) == b"hello"
            reading = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0.05)
            reading.cancel()  # the client went away while the provider was still generating
            with pytest.raises(asyncio.CancelledError):
                await reading
            await asyncio.wait_for(server.exchanges[0].client_closed.wait(), 2)
            await post_after_stream(client, server)
            await client.close()
        assert server.accepted == 2

    async def post_after_stream(client: FastClient, server: ScriptedUpstream) -> None:
        response = await client.send(target(server.base_url), CHAT, [BODY], {})
        response.close()  # released unread: dropped, never reused

    run(scenario())


def test_a_port_nobody_listens_on_is_a_502_naming_only_the_provider(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused

    async def scenario() -> GatewayError:
        client = FastClient(5, 10, 30)
        error = await failure(client.send(target(f"http://127.0.0.1:{port}/v1"), CHAT, [BODY], {}))
        await client.close()
        return error

    with caplog.at_level(logging.WARNING, logger="mini_llm"):
        error = run(scenario())
    assert error.message == "cannot reach provider 'local' (Connection refused)"
    assert f"cannot reach provider 'local' at 127.0.0.1:{port}" in caplog.text


@pytest.mark.parametrize(
    ("attempts", "reason"),
    [
        (
            ["[Errno 111] Connect call failed ('127.0.0.1', 1)", "[Errno 111] Connect call failed ('::1', 1, 0, 0)"],
            "Connection refused on every address",
        ),
        (
            ["[Errno 111] Connect call failed ('127.0.0.1', 1)", "[Errno 101] Network is unreachable"],
            "no address of the host could be reached",
        ),
    ],
    ids=["all-refused", "mixed"],
)
def test_a_host_whose_every_address_fails_is_named_by_what_failed(attempts: list[str], reason: str) -> None:
    """asyncio and uvloop raise one OSError without an errno for them, its message joining each attempt's."""
    error = OSError("Multiple exceptions: " + ", ".join(attempts))
    assert connect_failure_reason(error) == reason


def test_every_connection_has_nagle_off(run: Run) -> None:
    async def scenario() -> int:
        async with ScriptedUpstream(keep_alive) as server:
            pool = OriginPool(origin_of(server.base_url), 1, 5, 30, None)
            connection = await pool.acquire()
            assert connection.transport is not None
            sock = connection.transport.get_extra_info("socket")
            nodelay: int = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            pool.close()
        return nodelay

    assert run(scenario()) != 0


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A throwaway CA that the client trusts the way a deployment would: SSL_CERT_FILE."""
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return authority


def tls_server_context(authority: trustme.CA, name: str, server_names: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    context.sni_callback = lambda _sock, server_name, _context: server_names.append(server_name)
    return context


def test_tls_is_verified_with_sni_and_alpn_and_kept_alive(run: Run, ca: trustme.CA) -> None:
    server_names: list[str | None] = []
    protocols: list[str | None] = []

    async def records_alpn(exchange: Exchange) -> None:
        protocols.append(exchange.writer.get_extra_info("ssl_object").selected_alpn_protocol())
        await keep_alive(exchange)

    async def scenario() -> None:
        client = FastClient(5, 10, 30)
        await client.open()  # loads the trust store SSL_CERT_FILE names
        tls = tls_server_context(ca, "localhost", server_names)
        async with ScriptedUpstream(records_alpn, tls, host="localhost") as server:
            assert server.base_url.startswith("https://localhost:")
            for _ in range(3):
                assert await post(client, server) == b'{"ok":true}'
            await client.close()
        assert server.accepted == 1

    run(scenario())
    assert server_names == ["localhost"]
    assert protocols == ["http/1.1"]


def test_a_stream_over_tls(run: Run, ca: trustme.CA) -> None:
    async def stream(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(STREAM_HEAD)
        for index in range(3):
            event = b"data: %d\n\n" % index
            await exchange.send(b"%x\r\n%s\r\n" % (len(event), event))
            await asyncio.sleep(0.01)
        await exchange.send(b"0\r\n\r\n")

    async def scenario() -> bytes:
        client = FastClient(5, 10, 30)
        await client.open()  # loads the trust store SSL_CERT_FILE names
        async with ScriptedUpstream(stream, tls_server_context(ca, "localhost", []), host="localhost") as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            assert response.is_event_stream
            body = b"".join([piece async for piece in response.chunks()])
            await client.close()
        return body

    assert run(scenario()) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


@pytest.mark.parametrize("problem", ["an unknown CA", "another host's certificate"])
def test_a_certificate_that_does_not_verify_is_a_502_that_says_so(run: Run, ca: trustme.CA, problem: str) -> None:
    issuer = trustme.CA() if problem == "an unknown CA" else ca
    name = "localhost" if problem == "an unknown CA" else "elsewhere.example"

    async def scenario() -> tuple[GatewayError, int]:
        client = FastClient(5, 10, 30)
        await client.open()  # loads the trust store SSL_CERT_FILE names
        async with ScriptedUpstream(keep_alive, tls_server_context(issuer, name, []), host="localhost") as server:
            error = await failure(post(client, server))
            await client.close()
        return error, len(server.requests)

    error, requests = run(scenario())
    assert isinstance(error, UpstreamUnreachable)
    assert error.message == "cannot reach provider 'local' (certificate verify failed)"
    assert requests == 0


def test_closing_the_client_mid_answer_cuts_a_close_delimited_body(run: Run) -> None:
    """Only the provider's EOF ends such a body: the gateway's own shutdown must not make it look whole."""

    async def until_close(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"partial":')
        await exchange.closed_by_client()

    async def scenario() -> GatewayError:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(until_close) as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            chunks = response.chunks()
            assert await anext(chunks) == b'{"partial":'
            await client.close()
            return await failure(anext(chunks))

    error = run(scenario())
    assert isinstance(error, UpstreamUnreachable)
    assert error.message == "provider 'local' failed while sending its answer: the connection closed"


def test_a_tls_close_without_close_notify_cuts_a_close_delimited_body(ca: trustme.CA) -> None:
    """RFC 9112 9.8: a TLS connection closed without close_notify leaves the answer incomplete.

    On uvloop (the gateway's loop) only; asyncio's SSL transport reports such a close as an EOF.
    """

    async def cut(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"cut":')
        fileno = exchange.writer.get_extra_info("socket").fileno()
        with socket.fromfd(fileno, socket.AF_INET, socket.SOCK_STREAM) as duplicate:
            duplicate.shutdown(socket.SHUT_WR)  # a TCP FIN, no TLS alert before it
        await exchange.closed_by_client()

    async def scenario() -> GatewayError:
        client = FastClient(5, 10, 30)
        await client.open()  # loads the trust store SSL_CERT_FILE names
        async with ScriptedUpstream(cut, tls_server_context(ca, "localhost", []), host="localhost") as server:
            error = await failure(post(client, server))
            await client.close()
        return error

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        error = runner.run(scenario())
    assert error.message == "provider 'local' failed while sending its answer: the connection closed"


def test_an_answer_before_the_whole_request_was_sent_drops_the_connection_at_once(run: Run) -> None:
    """A provider that answers early (a 413) may never read the rest: a polite close would keep the
    socket and the unsent body alive, outside the pool limit, until the provider closes."""
    body = b"x" * (32 * 1024 * 1024)  # more than the kernel buffers on both sides hold
    answered = asyncio.Event()

    async def early(exchange: Exchange) -> None:
        await exchange.reader.readuntil(b"\r\n\r\n")
        await exchange.send(answer(b'{"error":"too large"}', status=b"413 Payload Too Large"))
        await answered.wait()
        received = 0
        try:
            while data := await exchange.reader.read(1024 * 1024):
                received += len(data)
        except ConnectionError:
            pass
        exchange.server.requests.append(b"%d" % received)

    async def scenario() -> int:
        client = FastClient(5, 10, 30)
        async with ScriptedUpstream(early) as server:
            response = await client.send(target(server.base_url), CHAT, [body], {})
            assert response.status == 413
            assert await response.read() == b'{"error":"too large"}'
            answered.set()
            await until(lambda: bool(server.requests))
            await client.close()
        return int(server.requests[0])

    assert run(scenario()) < len(body)  # the rest was never sent: the connection was reset


def test_closing_an_answer_wakes_its_reader_with_an_error(run: Run) -> None:
    async def endless(exchange: Exchange) -> None:
        await exchange.request()
        await exchange.send(STREAM_HEAD + b"5\r\nhello\r\n")
        await exchange.closed_by_client()

    async def scenario() -> tuple[GatewayError, GatewayError]:
        client = FastClient(30, 10, 30)
        async with ScriptedUpstream(endless) as server:
            response = await client.send(target(server.base_url), CHAT, [BODY], {})
            chunks = response.chunks()
            assert await anext(chunks) == b"hello"
            reading = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0)  # the reader waits for the next piece
            response.close()  # from another task: the stream budget or the drain
            streamed = await failure(asyncio.wait_for(reading, 2))
            whole = await client.send(target(server.base_url), CHAT, [BODY], {})
            whole_reading = asyncio.ensure_future(whole.read())
            await asyncio.sleep(0)
            whole.close()
            read = await failure(asyncio.wait_for(whole_reading, 2))
            await client.close()
        return streamed, read

    streamed, read = run(scenario())
    assert streamed.message == "provider 'local' failed while sending its answer: the answer was closed"
    assert read.message == "provider 'local' failed while sending its answer: the answer was closed"
