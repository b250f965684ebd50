"""pytest fixtures to test an app against a real mini-llm gateway: `mini_llm_gateway` and `mock_upstream`.

pytest loads this plugin in every run (the `pytest11` entry point; `-p no:mini_llm` turns it off),
so it imports the SDK only inside the fixtures and starts a process only for a test that asks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mini_llm.sdk import Gateway, MockUpstream


@pytest.fixture(scope="session")
def mini_llm_gateway_options() -> Mapping[str, Any]:
    """Keyword arguments for `mini_llm.Gateway`: override this session fixture in a conftest.py to configure it."""
    return {}


@pytest.fixture(scope="session")
def mini_llm_gateway(mini_llm_gateway_options: Mapping[str, Any]) -> Iterator[Gateway]:
    """One gateway for the test session, on a free port; with no keys configured the `mock` model answers.

    It does not inherit the test run's MINI_LLM_* settings or provider keys (a developer's real
    OPENAI_API_KEY must not turn a test gateway into a paid one) unless the options say
    `inherit_env=True`; pass what it needs in `env`, `config` or `aliases`.
    """
    from mini_llm.sdk import Gateway

    with Gateway(**{"inherit_env": False, **mini_llm_gateway_options}) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[MockUpstream]:
    """The mock provider over HTTP; `provider_env()` points a gateway's openai and anthropic providers at it."""
    from mini_llm.sdk import MockUpstream

    with MockUpstream() as upstream:
        yield upstream
