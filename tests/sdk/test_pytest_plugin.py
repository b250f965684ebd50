"""The pytest plugin as a user meets it: a separate pytest run whose tests use its fixtures with both SDKs."""

from __future__ import annotations

import pytest

# NOTE: here rather than in tests/sdk/conftest.py: pytest refuses pytest_plugins in a conftest below the rootdir.
pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def mini_llm_gateway_options(mock_upstream):
    # The gateway's openai and anthropic providers are the mock upstream, over real HTTP.
    return {"env": mock_upstream.provider_env(), "aliases": {"fast": "openai:gpt-4o-mini"}}
"""

FIRST_TEST = """
import sys

def test_the_plugin_imported_nothing_heavy():
    # This file runs first: no fixture of the plugin was requested yet, so no SDK and no process.
    assert "mini_llm.sdk" not in sys.modules
"""

APP_TESTS = """
import anthropic
import openai

ANSWER = "Hello from the mini-llm mock provider."

def test_openai_through_the_gateway(mini_llm_gateway):
    with openai.OpenAI(base_url=mini_llm_gateway.openai_base_url, api_key="unused") as client:
        reply = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == ANSWER
    assert reply.model == "gpt-4o-mini"  # the alias went upstream resolved

def test_anthropic_through_the_gateway(mini_llm_gateway):
    with anthropic.Anthropic(base_url=mini_llm_gateway.anthropic_base_url, api_key="unused") as client:
        message = client.messages.create(
            model="claude-test", max_tokens=7, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text == ANSWER

def test_the_same_session_gateway(mini_llm_gateway, mock_upstream):
    assert mini_llm_gateway.url != mock_upstream.url
    with openai.OpenAI(base_url=mock_upstream.openai_base_url, api_key="unused") as client:
        assert client.chat.completions.create(model="m", messages=[]).choices[0].message.content == ANSWER
"""


def test_fixtures_in_a_users_test_session(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_0_first=FIRST_TEST, test_app=APP_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=180)
    result.assert_outcomes(passed=4)
