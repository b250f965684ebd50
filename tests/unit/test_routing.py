"""Router: alias, then `provider:model` for configured providers, then inference; protocol and key checks."""

from __future__ import annotations

import collections
import json
import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from mini_llm.config import load_settings
from mini_llm.errors import GatewayError
from mini_llm.gateway.routing import Router
from mini_llm.providers import Hop, Target, WireProtocol

KEYS = ("sk-one-1111111111", "sk-two-2222222222", "sk-three-333333333")
ANTHROPIC_KEY = "sk-ant-4444444444"

LOCAL = """
[providers.local]
base_url = "http://localhost:11434/v1"
models = ["llama3:8b", "gpt-4o"]

[providers.openai]
models = ["gpt-4o", "gpt-4o-mini"]

[providers.anthropic]
models = ["claude-sonnet-4-5"]
"""


@pytest.fixture
def local_config(tmp_path: Path) -> str:
    path = tmp_path / "mini-llm.toml"
    path.write_text(LOCAL, encoding="utf-8")
    return str(path)


def make_router(
    env: Mapping[str, str] | None = None,
    aliases: Mapping[str, str | list[str]] | None = None,
    config_path: str | None = None,
) -> Router:
    """A router over real settings: three OpenAI keys, one Anthropic key, plus `env` and `aliases`."""
    full = {"OPENAI_API_KEYS": ",".join(KEYS), "ANTHROPIC_API_KEY": ANTHROPIC_KEY, **(env or {})}
    if aliases is not None:
        full["MINI_LLM_MODEL_ALIASES"] = json.dumps(aliases)
    settings = load_settings(full, config_path)
    return Router(settings.providers, settings.aliases)


def bare_router() -> Router:
    """No keys, no aliases, no file: only the mock provider can serve."""
    settings = load_settings({})
    return Router(settings.providers, settings.aliases)


def located(router: Router, model: str) -> tuple[str, str]:
    provider, upstream = router.hops(model)[0]
    return provider.name, upstream


class TestLocate:
    @pytest.mark.parametrize(
        ("model", "expected"),
        [
            ("gpt-4o", ("openai", "gpt-4o")),
            ("o3-mini", ("openai", "o3-mini")),
            ("openai:gpt-4o", ("openai", "gpt-4o")),
            ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
            ("nebius:meta-llama/Llama-3.3-70B-Instruct", ("nebius", "meta-llama/Llama-3.3-70B-Instruct")),
            ("deepinfra:Qwen/Qwen2.5-72B-Instruct", ("deepinfra", "Qwen/Qwen2.5-72B-Instruct")),
            ("local:llama3:8b", ("local", "llama3:8b")),
            # A colon alone does not make a provider prefix: these stay whole on the default provider.
            ("llama3:8b", ("openai", "llama3:8b")),
            ("ft:gpt-4o-mini:acme::abc123", ("openai", "ft:gpt-4o-mini:acme::abc123")),
            ("openai:", ("openai", "openai:")),
            (":gpt-4o", ("openai", ":gpt-4o")),
            ("claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
            ("claude-3-5-haiku-20241022", ("anthropic", "claude-3-5-haiku-20241022")),
            ("openai:claude-sonnet-4-5", ("openai", "claude-sonnet-4-5")),
            # `claude` anywhere, in any case, is Anthropic's; an unconfigured prefix stays in the name.
            ("bedrock:claude-x", ("anthropic", "bedrock:claude-x")),
            (
                "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
                ("anthropic", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
            ),
            ("Claude-3-Opus", ("anthropic", "Claude-3-Opus")),
            ("my-CLAUDE-tune", ("anthropic", "my-CLAUDE-tune")),
            ("local:claude-distill", ("local", "claude-distill")),
            ("mock", ("mock", "mock")),
            ("mock-2", ("openai", "mock-2")),
        ],
    )
    def test_rules(self, local_config: str, model: str, expected: tuple[str, str]) -> None:
        assert located(make_router(config_path=local_config), model) == expected

    def test_unconfigured_prefix_stays_whole(self) -> None:
        # Without a [providers.local] table `local:` is just part of the model name.
        assert located(make_router(), "local:llama3:8b") == ("openai", "local:llama3:8b")

    def test_alias_comes_first(self) -> None:
        router = make_router(
            aliases={
                "claude-fast": "openai:gpt-4o-mini",
                "openai:gpt-4o": "anthropic:claude-sonnet-4-5",
                "mock": "openai:gpt-4o",
                "tuned": "openai:ft:gpt-4o-mini:acme::abc123",
            }
        )
        assert located(router, "claude-fast") == ("openai", "gpt-4o-mini")
        assert located(router, "openai:gpt-4o") == ("anthropic", "claude-sonnet-4-5")
        assert located(router, "mock") == ("openai", "gpt-4o")
        assert located(router, "tuned") == ("openai", "ft:gpt-4o-mini:acme::abc123")

    def test_alias_match_is_exact(self) -> None:
        router = make_router(aliases={"fast": "anthropic:claude-3-5-haiku"})
        assert located(router, "fast") == ("anthropic", "claude-3-5-haiku")
        assert located(router, "Fast") == ("openai", "Fast")
        assert located(router, "fast-2") == ("openai", "fast-2")


class TestPlan:
    def test_single_target(self) -> None:
        ((provider, model),) = make_router().plan("claude-sonnet-4-5", "anthropic", "/v1/messages")
        assert (provider.name, model) == ("anthropic", "claude-sonnet-4-5")
        assert provider.keys == (ANTHROPIC_KEY,)

    @pytest.mark.parametrize(
        ("model", "protocol", "endpoint", "provider", "provider_protocol"),
        [
            ("claude-sonnet-4-5", "openai", "/v1/chat/completions", "anthropic", "anthropic"),
            ("gpt-4o", "anthropic", "/v1/messages", "openai", "openai"),
            ("nebius:meta-llama/Llama-3.3-70B", "anthropic", "/v1/messages/count_tokens", "nebius", "openai"),
        ],
    )
    def test_protocol_mismatch(
        self, model: str, protocol: WireProtocol, endpoint: str, provider: str, provider_protocol: str
    ) -> None:
        router = make_router({"NEBIUS_API_KEY": "nb-key"})
        with pytest.raises(GatewayError) as info:
            router.plan(model, protocol, endpoint)
        error = info.value
        assert error.status == 400
        assert error.code == "protocol_mismatch"
        assert error.param == "model"
        assert repr(model) in error.message
        assert repr(provider) in error.message
        assert endpoint in error.message
        assert f"the {provider_protocol} protocol" in error.message
        assert f"({protocol} protocol)" in error.message

    def test_mismatch_message_clips_a_huge_model_name(self) -> None:
        model = "claude-" + "x" * 5_000_000
        with pytest.raises(GatewayError) as info:
            make_router().plan(model, "openai", "/v1/chat/completions")
        assert len(info.value.message) < 1000
        assert "(5000007 characters)" in info.value.message

    def test_protocol_is_checked_before_keys(self) -> None:
        # With no Anthropic key either, the client hears about the protocol, which a key would not fix.
        with pytest.raises(GatewayError) as info:
            bare_router().plan("claude-sonnet-4-5", "openai", "/v1/chat/completions")
        assert info.value.code == "protocol_mismatch"

    @pytest.mark.parametrize(
        ("protocol", "endpoint"), [("openai", "/v1/chat/completions"), ("anthropic", "/v1/messages")]
    )
    def test_mock_speaks_both_protocols_without_a_key(self, protocol: WireProtocol, endpoint: str) -> None:
        ((provider, model),) = bare_router().plan("mock", protocol, endpoint)
        assert (provider.name, model, provider.keys) == ("mock", "mock", ())

    @pytest.mark.parametrize(
        ("model", "protocol", "provider", "setting"),
        [
            ("gpt-4o", "openai", "openai", "OPENAI_API_KEY or OPENAI_API_KEYS"),
            ("claude-sonnet-4-5", "anthropic", "anthropic", "ANTHROPIC_API_KEY or ANTHROPIC_API_KEYS"),
            ("deepinfra:Qwen/Qwen2.5-72B-Instruct", "openai", "deepinfra", "DEEPINFRA_API_KEY or DEEPINFRA_API_KEYS"),
        ],
    )
    def test_provider_without_keys(self, model: str, protocol: WireProtocol, provider: str, setting: str) -> None:
        with pytest.raises(GatewayError) as info:
            bare_router().plan(model, protocol, "/v1/messages")
        error = info.value
        assert error.status == 400
        assert error.code == "provider_not_configured"
        assert error.param == "model"
        assert f"provider {provider!r} has no API key" in error.message
        assert error.message.endswith(f"set {setting}")

    def test_keyless_custom_provider(self, local_config: str) -> None:
        router = make_router(config_path=local_config)
        ((provider, model),) = router.plan("local:llama3:8b", "openai", "/v1/chat/completions")
        assert (provider.name, model, provider.keys) == ("local", "llama3:8b", ())

    def test_target_repr_hides_the_key(self) -> None:
        # Provider's repr never shows keys (providers.py); a Target must not undo that when logged.
        ((provider, model),) = make_router().plan("gpt-4o", "openai", "/v1/chat/completions")
        target = Target(provider, model, KEYS[0], KEYS[0].encode())
        assert KEYS[0] not in repr(target)
        assert KEYS[0] not in str(target)
        assert KEYS[0] not in repr(provider)


def names(hops: tuple[Hop, ...]) -> list[str]:
    return [f"{provider.name}:{model}" for provider, model in hops]


class TestChains:
    def test_a_chain_is_tried_in_order(self) -> None:
        router = make_router(aliases={"smart": ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"]})
        hops = router.plan("smart", "anthropic", "/v1/messages")
        assert names(hops) == ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"]

    def test_a_target_without_keys_is_left_out_of_a_chain(self) -> None:
        router = make_router(aliases={"c": ["nebius:m1", "openai:gpt-4o", "deepinfra:m2"]})
        assert names(router.plan("c", "openai", "/v1/chat/completions")) == ["openai:gpt-4o"]

    def test_a_chain_without_any_key_names_its_first_provider(self) -> None:
        router = make_router(aliases={"c": ["nebius:m1", "deepinfra:m2"]})
        with pytest.raises(GatewayError) as info:
            router.plan("c", "openai", "/v1/chat/completions")
        assert info.value.code == "provider_not_configured"
        assert "provider 'nebius'" in info.value.message

    def test_a_chain_on_the_other_protocol_is_refused(self) -> None:
        router = make_router(aliases={"c": ["mock:mock", "openai:gpt-4o"]})
        with pytest.raises(GatewayError) as info:
            router.plan("c", "anthropic", "/v1/messages")
        assert info.value.code == "protocol_mismatch"
        assert "provider 'openai'" in info.value.message

    def test_weights_pick_the_first_target_and_the_rest_follow_heaviest_first(self) -> None:
        settings = load_settings(
            {
                "OPENAI_API_KEYS": ",".join(KEYS),
                "MINI_LLM_MODEL_ALIASES": json.dumps(
                    {"w": {"targets": ["openai:a", "openai:b", "openai:c"], "weights": [1, 3, 0]}}
                ),
            }
        )
        router = Router(settings.providers, settings.aliases, random.Random(7))
        plans = [tuple(names(router.plan("w", "openai", "/v1/chat/completions"))) for _ in range(4000)]
        counts = collections.Counter(plans)
        # Weight 0 is never first; b (3) leads three times as often as a (1); the others follow by weight.
        assert set(counts) == {("openai:b", "openai:a", "openai:c"), ("openai:a", "openai:b", "openai:c")}
        share = counts["openai:b", "openai:a", "openai:c"] / len(plans)
        assert 0.70 < share < 0.80


class TestModelIds:
    def test_no_config(self) -> None:
        assert bare_router().model_ids() == [("mock", "mock")]

    def test_aliases_first_then_declared_models_in_provider_order(self, local_config: str) -> None:
        router = make_router(
            aliases={"smart": "anthropic:claude-sonnet-4-5", "fast": "openai:gpt-4o-mini", "gpt-4o": "local:x"},
            config_path=local_config,
        )
        assert router.model_ids() == [
            ("smart", "anthropic"),
            ("fast", "openai"),
            ("gpt-4o", "local"),
            ("gpt-4o-mini", "openai"),
            ("claude-sonnet-4-5", "anthropic"),
            ("llama3:8b", "local"),
            ("mock", "mock"),
        ]

    def test_first_declaring_provider_owns_a_shared_model(self, local_config: str) -> None:
        ids = dict(make_router(config_path=local_config).model_ids())
        assert ids["gpt-4o"] == "openai"
        assert ids["llama3:8b"] == "local"
