"""End-to-end fixtures: a scripted fake upstream and real gateway processes pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest

from tests.e2e.failover_gateway import Gateways
from tests.e2e.fake_upstream import ANTHROPIC_KEY, LOCAL_KEY, OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, write_config
from tests.e2e.scripted_provider import ScriptedProvider

ALIASES = '{"fast": "openai:gpt-4o-mini", "smart": "anthropic:claude-sonnet-4", "echo": "mock:mock-echo"}'


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedProvider]:
    """A provider scripted per attempt (the failover tests); one per module, as scripts go by model name."""
    with ScriptedProvider() as provider:
        yield provider


@pytest.fixture
def gateways() -> Iterator[Gateways]:
    """Gateways a test starts with its own routing settings, stopped after it."""
    started = Gateways()
    yield started
    started.stop_all()


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream()
    server.start()
    yield server
    server.stop()


def gateway_env(upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    config = write_config(
        f"""
[providers.local]
base_url = "{upstream.base}/v1"
api_keys = ["{LOCAL_KEY}"]
models = ["llama3:8b"]
"""
    )
    env = {
        "OPENAI_API_KEYS": ",".join(OPENAI_KEYS),
        "OPENAI_BASE_URL": f"{upstream.base}/v1",
        "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        "ANTHROPIC_BASE_URL": upstream.base,
        "MINI_LLM_MODEL_ALIASES": ALIASES,
        "MINI_LLM_UPSTREAM_TIMEOUT": "3",  # long enough for a loaded 2-core CI machine
        "MINI_LLM_LOG_REQUESTS": "1",
        "MINI_LLM_CONFIG": config,
        # These gateways relay each answer as the provider gave it: no retries, breakers or key cooldowns.
        # The failover tests (test_failover*.py) run gateways of their own with them on.
        "MINI_LLM_RETRIES": "0",
        "MINI_LLM_BREAKER_FAILURES": "0",
        "MINI_LLM_KEY_AUTH_COOLDOWN": "0",
        "MINI_LLM_KEY_RATE_LIMIT_COOLDOWN": "0",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """The default gateway (compiled hot path unless the run disables extensions)."""
    process = GatewayProcess(gateway_env(upstream)).start()
    yield process
    process.stop()


@pytest.fixture(scope="session", params=["default", "no-extensions"])
def any_gateway(request: pytest.FixtureRequest, upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """The streaming tests run against both hot paths."""
    extra = {"MINI_LLM_NO_EXTENSIONS": "1"} if request.param == "no-extensions" else {}
    process = GatewayProcess(gateway_env(upstream, **extra)).start()
    yield process
    process.stop()


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class Closing(Protocol):
    def __call__(self, client: C) -> C: ...


@pytest.fixture
def closing() -> Iterator[Closing]:
    """Closes the SDK clients a test makes, so no pooled connection outlives it."""
    opened: list[_Closable] = []

    def track(client: C) -> C:
        opened.append(client)
        return client

    yield track
    for client in opened:
        client.close()
