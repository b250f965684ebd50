"""The official SDKs against a failing-over gateway, with their own retries off (`max_retries=0`).

What is measured is the gateway: after a failover the SDK gets a normal answer; when everything
fails it raises the class the provider's status calls for; a stream broken after its commit
raises the SDK's in-stream error instead of ending quietly.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.failover_gateway import AliasForm, Gateways, on, refusing
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.scripted_provider import (
    ScriptedProvider,
    Step,
    answer_text,
    cut_after,
    error_after,
    first_event_error,
    ok,
    overloaded,
    rate_limited,
    reply,
)

OPENAI_USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ANTHROPIC_USER: list[MessageParam] = [{"role": "user", "content": "hi"}]
ALIASES: dict[str, AliasForm] = {
    "oa-fallback": ["oa:sdk-oa-down", "oa:sdk-oa-up"],
    "oa-stream-fallback": ["oa:sdk-oa-over", "oa:sdk-oa-streams"],
    "an-fallback": ["an:sdk-an-down", "an:sdk-an-up"],
    "an-stream-fallback": ["an:sdk-an-over", "an:sdk-an-streams"],
}
BROKEN_AFTER_COMMIT: dict[str, Step] = {"cut": cut_after(2), "error-event": error_after(2)}


@pytest.fixture(scope="module")
def gateway(server: ScriptedProvider) -> Iterator[GatewayProcess]:
    """One gateway for the module: each test has its own models, and each key-cooling test its own provider."""
    providers = [
        on(server, "oa"),
        on(server, "an", protocol="anthropic"),
        on(server, "oalimited"),
        on(server, "anlimited", protocol="anthropic"),
        refusing("oadead"),
        refusing("andead", protocol="anthropic"),
    ]
    started = Gateways()
    yield started.start(providers, ALIASES, retries="1")
    started.stop_all()


@pytest.fixture(scope="module")
def oai(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def claude(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0) as client:
        yield client


# --- OpenAI --------------------------------------------------------------------------------------


def test_openai_sdk_gets_the_answer_of_the_target_that_worked(oai: openai.OpenAI, server: ScriptedProvider) -> None:
    server.script("sdk-oa-down", reply(503))
    server.script("sdk-oa-up", ok())
    raw = oai.chat.completions.with_raw_response.create(model="oa-fallback", messages=OPENAI_USER)
    assert raw.headers["x-mini-llm-target"] == "oa:sdk-oa-up"
    assert raw.headers["x-mini-llm-attempts"] == "3"
    assert raw.parse().choices[0].message.content == answer_text("sdk-oa-up")


def test_openai_sdk_streams_from_the_next_target_after_a_first_event_error(
    oai: openai.OpenAI, server: ScriptedProvider
) -> None:
    server.script("sdk-oa-over", first_event_error())
    server.script("sdk-oa-streams", ok())
    stream = oai.chat.completions.create(model="oa-stream-fallback", messages=OPENAI_USER, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == answer_text("sdk-oa-streams")


def test_openai_sdk_raises_rate_limit_error_with_the_providers_retry_after(
    oai: openai.OpenAI, server: ScriptedProvider
) -> None:
    server.script("sdk-oa-429", rate_limited("1"))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="oalimited:sdk-oa-429", messages=OPENAI_USER)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert len(server.seen("sdk-oa-429")) == 2  # waited out once (MINI_LLM_RETRIES=1), then relayed


@pytest.mark.parametrize(("status", "step"), [(500, reply(500)), (503, reply(503)), (529, overloaded())])
def test_openai_sdk_raises_internal_server_error_when_every_attempt_fails(
    oai: openai.OpenAI, server: ScriptedProvider, status: int, step: Step
) -> None:
    model = f"sdk-oa-fails-{status}"
    server.script(model, step)
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=f"oa:{model}", messages=OPENAI_USER)
    assert caught.value.status_code == status  # never a made-up status
    assert len(server.seen(model)) == 2


def test_openai_sdk_raises_internal_server_error_when_no_provider_answers(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="oadead:sdk-oa-nowhere", messages=OPENAI_USER)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unreachable"
    assert "oadead:sdk-oa-nowhere" in caught.value.message


@pytest.mark.parametrize("failure", BROKEN_AFTER_COMMIT)
def test_openai_sdk_stream_raises_when_it_breaks_after_the_commit(
    oai: openai.OpenAI, server: ScriptedProvider, failure: str
) -> None:
    model = f"sdk-oa-broken-{failure}"
    server.script(model, BROKEN_AFTER_COMMIT[failure])
    stream = oai.chat.completions.create(model=f"oa:{model}", messages=OPENAI_USER, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "ok"  # the events before the failure arrived
    assert len(server.seen(model)) == 1


# --- Anthropic -----------------------------------------------------------------------------------


def test_anthropic_sdk_gets_the_answer_of_the_target_that_worked(
    claude: anthropic.Anthropic, server: ScriptedProvider
) -> None:
    server.script("sdk-an-down", overloaded())
    server.script("sdk-an-up", ok())
    raw = claude.messages.with_raw_response.create(model="an-fallback", max_tokens=16, messages=ANTHROPIC_USER)
    assert raw.headers["x-mini-llm-target"] == "an:sdk-an-up"
    assert raw.headers["x-mini-llm-attempts"] == "3"
    block = raw.parse().content[0]
    assert block.type == "text" and block.text == answer_text("sdk-an-up")


def test_anthropic_sdk_streams_from_the_next_target_after_an_overloaded_first_event(
    claude: anthropic.Anthropic, server: ScriptedProvider
) -> None:
    server.script("sdk-an-over", first_event_error("overloaded_error"))
    server.script("sdk-an-streams", ok())
    with claude.messages.stream(model="an-stream-fallback", max_tokens=16, messages=ANTHROPIC_USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == answer_text("sdk-an-streams")
    assert final.stop_reason == "end_turn"


def test_anthropic_sdk_raises_overloaded_error_when_every_attempt_is_a_529(
    claude: anthropic.Anthropic, server: ScriptedProvider
) -> None:
    server.script("sdk-an-529", overloaded())
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude.messages.create(model="an:sdk-an-529", max_tokens=16, messages=ANTHROPIC_USER)
    assert caught.value.status_code == 529
    assert len(server.seen("sdk-an-529")) == 2


def test_anthropic_sdk_raises_rate_limit_error(claude: anthropic.Anthropic, server: ScriptedProvider) -> None:
    server.script("sdk-an-429", rate_limited("1"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="anlimited:sdk-an-429", max_tokens=16, messages=ANTHROPIC_USER)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"


def test_anthropic_sdk_raises_internal_server_error_for_a_5xx(
    claude: anthropic.Anthropic, server: ScriptedProvider
) -> None:
    server.script("sdk-an-500", reply(500))
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model="an:sdk-an-500", max_tokens=16, messages=ANTHROPIC_USER)
    assert caught.value.status_code == 500


def test_anthropic_sdk_raises_internal_server_error_when_no_provider_answers(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model="andead:sdk-an-nowhere", max_tokens=16, messages=ANTHROPIC_USER)
    assert caught.value.status_code == 502
    assert "andead:sdk-an-nowhere" in caught.value.message


@pytest.mark.parametrize("failure", BROKEN_AFTER_COMMIT)
def test_anthropic_sdk_stream_raises_when_it_breaks_after_the_commit(
    claude: anthropic.Anthropic, server: ScriptedProvider, failure: str
) -> None:
    model = f"sdk-an-broken-{failure}"
    server.script(model, BROKEN_AFTER_COMMIT[failure])
    with (
        pytest.raises(anthropic.APIStatusError),
        claude.messages.stream(model=f"an:{model}", max_tokens=16, messages=ANTHROPIC_USER) as stream,
    ):
        for _ in stream:
            pass
    assert len(server.seen(model)) == 1
