"""The fast client's pool against a real server on 127.0.0.1: each way a connection or a slot changes hands.

The races these replay (a provider's close seen in the same loop pass as a hand-over or a
cancel) are made deterministic by closing the real transport at the exact point, as the loop
would on the provider's FIN.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from mini_llm.upstream.connection import UpstreamConnection
from mini_llm.upstream.pool import OriginPool
from mini_llm.upstream.request_head import origin_of
from tests.unit import test_fast_client
from tests.unit.scripted_upstream import Exchange, ScriptedUpstream
from tests.unit.test_fast_client import Run

run = test_fast_client.run  # the same scenarios on uvloop and on asyncio's own loop


async def held_open(exchange: Exchange) -> None:
    """Never answers; keeps the connection until the client closes it."""
    await exchange.closed_by_client()


def pool_for(server: ScriptedUpstream, limit: int = 1, timeout: float = 5, idle_timeout: float = 30) -> OriginPool:
    return OriginPool(origin_of(server.base_url), limit, timeout, idle_timeout, None)


def closed_by_provider(connection: UpstreamConnection) -> None:
    """What the loop shows before it reports the provider's close: a transport that is closing."""
    assert connection.transport is not None
    connection.transport.close()


async def waiting(pool: OriginPool) -> asyncio.Future[UpstreamConnection]:
    """An acquire that has queued for its turn."""
    turn = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)  # it runs up to its wait
    assert not turn.done()
    return turn


async def cancelled(turn: asyncio.Future[UpstreamConnection]) -> None:
    turn.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await turn
    assert turn.cancelled()


@pytest.mark.timeout(20)
def test_a_connection_closed_while_handed_to_a_cancelled_waiter_is_not_kept_idle(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server, idle_timeout=0.05)
            first = await pool.acquire()
            turn = await waiting(pool)
            pool.release(first)  # its answer ended cleanly: handed to the waiter...
            turn.cancel()  # ...whose client leaves in the same pass...
            first.abort()  # ...as the provider's close of it is seen
            await cancelled(turn)
            assert first.idle_since < 0  # not put back idle: the sweep would wait forever for it to leave
            await asyncio.sleep(0.2)  # past the idle timeout: the sweep runs
            second = await pool.acquire()
            assert second is not first
            assert second.usable
            pool.close()
        assert server.accepted == 2

    run(scenario())


def test_a_connection_handed_to_a_cancelled_waiter_goes_idle_for_the_next(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server)
            first = await pool.acquire()
            turn = await waiting(pool)
            pool.release(first)
            await cancelled(turn)
            assert await pool.acquire() is first
            pool.close()
        assert server.accepted == 1

    run(scenario())


def test_a_slot_handed_to_a_cancelled_waiter_goes_to_the_next(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server, timeout=0.5)
            first = await pool.acquire()
            turn = await waiting(pool)
            first.abort()  # its slot goes to the waiter, which leaves before it can use it
            await cancelled(turn)
            second = await pool.acquire()  # the one slot is free again, not lost with the waiter
            assert second.usable
            pool.close()
        assert server.accepted == 2

    run(scenario())


def test_a_connection_handed_to_a_waiter_is_used_by_it(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server, timeout=0.5)
            first = await pool.acquire()
            turn = await waiting(pool)
            pool.release(first)
            assert await turn is first
            pool.close()
        assert server.accepted == 1

    run(scenario())


def test_a_connection_closed_after_its_hand_over_is_replaced_for_the_waiter(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server, timeout=0.5)
            first = await pool.acquire()
            turn = await waiting(pool)
            pool.release(first)
            closed_by_provider(first)  # seen before the waiter runs
            second = await turn
            assert second is not first
            assert second.usable
            pool.close()
        assert server.accepted == 2

    run(scenario())


def test_an_idle_connection_the_provider_is_closing_is_skipped(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = pool_for(server)
            first = await pool.acquire()
            pool.release(first)
            closed_by_provider(first)  # still on the idle list: the loop has not reported the close yet
            second = await pool.acquire()
            assert second is not first
            assert second.usable
            pool.close()
        assert server.accepted == 2

    run(scenario())


class NewConnectionsDie(OriginPool):
    """A pool whose first `deaths` new connections close before the request is written (a provider's
    close right after the accept, seen between the connect and the write)."""

    __slots__ = ("deaths",)

    def __init__(self, server: ScriptedUpstream, deaths: int) -> None:
        super().__init__(origin_of(server.base_url), 1, 5, 30, None)
        self.deaths = deaths

    async def _connect(self) -> UpstreamConnection:
        connection = await super()._connect()
        if self.deaths:
            self.deaths -= 1
            closed_by_provider(connection)
        return connection


def test_a_new_connection_closed_before_the_write_is_replaced_once(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = NewConnectionsDie(server, 1)
            connection = await pool.acquire()
            assert connection.usable
            pool.close()
        assert server.accepted == 2

    run(scenario())


def test_a_replacement_closed_before_the_write_too_is_a_connection_reset(run: Run) -> None:
    async def scenario() -> None:
        async with ScriptedUpstream(held_open) as server:
            pool = NewConnectionsDie(server, 2)
            with pytest.raises(ConnectionResetError):
                await pool.acquire()
            assert await pool.acquire()  # both slots given back: a third connection may open
            pool.close()
        assert server.accepted == 3

    run(scenario())
