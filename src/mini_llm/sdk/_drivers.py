"""Run a supervisor's step generator: blocking in the calling thread, or as an asyncio coroutine."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Final

from mini_llm.sdk._supervisor import Steps, T

HEALTH_TIMEOUT: Final = 2.0
# NOTE: never through a proxy, whatever HTTP_PROXY says: the child is on this machine.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health_ok(url: str) -> bool:
    """Whether GET {url}/health answers 200 within HEALTH_TIMEOUT."""
    try:
        with _OPENER.open(f"{url}/health", timeout=HEALTH_TIMEOUT) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except (OSError, HTTPException):
        return False


def run_blocking(steps: Steps[T]) -> T:
    """Sleep and probe in this thread; a child spawned here is tied to this thread (see `Child`)."""
    answer: bool | None = None
    try:
        while True:
            step = steps.send(answer)
            if isinstance(step, str):
                answer = health_ok(step)
            else:
                time.sleep(step)
                answer = None
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()


async def run_async(steps: Steps[T]) -> T:
    """Spawn in the event loop's thread (which outlives the child), sleep with asyncio, probe in a thread."""
    answer: bool | None = None
    try:
        while True:
            step = steps.send(answer)
            answer = await (asyncio.to_thread(health_ok, step) if isinstance(step, str) else asyncio.sleep(step))
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()
