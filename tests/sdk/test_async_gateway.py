"""AsyncGateway: the asyncio twin, driving the same real `mini-llm serve` children."""

from __future__ import annotations

import asyncio
import os
import signal

import anthropic
import openai
import pytest

import mini_llm
from mini_llm.sdk import AsyncGateway, GatewayStartError
from tests.sdk.processes import gone, marked, new_mark

ANSWER = "Hello from the mini-llm mock provider."


async def chat(gateway: AsyncGateway) -> str | None:
    async with openai.AsyncOpenAI(base_url=gateway.openai_base_url, api_key="unused", max_retries=0) as client:
        reply = await client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content


def test_serves_both_sdks_then_stops() -> None:
    env = new_mark()

    async def scenario() -> int | None:
        async with AsyncGateway(env=env) as gateway:
            assert gateway.openai_base_url == f"{gateway.url}/v1"
            assert await chat(gateway) == ANSWER
            async with anthropic.AsyncAnthropic(base_url=gateway.anthropic_base_url, api_key="unused") as client:
                message = await client.messages.create(
                    model="mock", max_tokens=3, messages=[{"role": "user", "content": "hi"}]
                )
            assert message.content[0].type == "text" and message.content[0].text == "Hello from the"
            status = await gateway.stop()
            assert await gateway.stop() is None
            return status

    assert mini_llm.AsyncGateway is AsyncGateway
    assert asyncio.run(scenario()) == 0
    assert marked(env) == []


def test_start_failure_raises() -> None:
    env = new_mark()
    with pytest.raises(GatewayStartError, match="unknown key") as caught:
        asyncio.run(AsyncGateway(config={"bogus": 1}, env=env).start())
    assert caught.value.returncode == 2
    assert gone(env) == []


def test_restart_on_crash_keeps_the_url() -> None:
    env = new_mark()

    async def scenario() -> None:
        async with AsyncGateway(env=env, restart_on_crash=True) as gateway:
            url, crashed = gateway.url, gateway.pid
            os.kill(crashed, signal.SIGKILL)
            for _ in range(1200):  # up to a minute
                if gateway.restarts:
                    break
                await asyncio.sleep(0.05)
            assert gateway.restarts == 1
            assert gateway.url == url and gateway.pid != crashed
            assert await chat(gateway) == ANSWER

    asyncio.run(scenario())
    assert gone(env) == []
