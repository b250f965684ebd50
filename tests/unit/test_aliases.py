"""Aliases with one target, an ordered fallback chain or weighted targets, from the environment and the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mini_llm.aliases import MAX_TARGETS, Alias
from mini_llm.config import ConfigError, load_settings

ENV = "MINI_LLM_MODEL_ALIASES"
SONNET = ("anthropic", "claude-sonnet-4-5")
HAIKU = ("anthropic", "claude-haiku-4-5")
MINI = ("openai", "gpt-4o-mini")
PASTED_KEY = "sk-proj-0123456789abcdefghij"
VLLM = '[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\n'
CORP_CLAUDE = '[providers.corp]\nbase_url = "http://127.0.0.1:8001"\nprotocol = "anthropic"\n'


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mini-llm.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def from_env(aliases: object) -> dict[str, Alias]:
    return dict(load_settings({ENV: json.dumps(aliases)}).aliases)


def env_error(aliases: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings({ENV: json.dumps(aliases)})
    assert info.value.setting == ENV
    return str(info.value)


def file_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings({}, write_config(tmp_path, text))
    return info.value


class TestForms:
    def test_each_form_from_the_environment(self) -> None:
        aliases = from_env(
            {
                "fast": "openai:gpt-4o-mini",
                "smart": ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"],
                "spread": {"targets": ["openai:gpt-4o-mini", "openai:gpt-4.1"], "weights": [3, 1.5]},
            }
        )
        assert aliases == {
            "fast": Alias((MINI,)),
            "smart": Alias((SONNET, HAIKU)),
            "spread": Alias((MINI, ("openai", "gpt-4.1")), (3.0, 1.5)),
        }

    def test_each_form_from_the_file(self, tmp_path: Path) -> None:
        text = (
            "[aliases]\n"
            'fast = "openai:gpt-4o-mini"\n'
            'smart = ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"]\n'
            'spread = { targets = ["openai:gpt-4o-mini", "vllm:llama"], weights = [3, 1] }\n'
            "[aliases.local]\n"  # the table form as a table of its own
            'targets = ["vllm:llama", "mock:mock"]\n'
            "weights = [0, 2]\n" + VLLM
        )
        aliases = load_settings({}, write_config(tmp_path, text)).aliases
        assert aliases == {
            "fast": Alias((MINI,)),
            "smart": Alias((SONNET, HAIKU)),
            "spread": Alias((MINI, ("vllm", "llama")), (3.0, 1.0)),
            "local": Alias((("vllm", "llama"), ("mock", "mock")), (0.0, 2.0)),
        }

    def test_a_chain_of_one_and_a_table_of_one(self) -> None:
        aliases = from_env({"a": ["openai:gpt-4o-mini"], "b": {"targets": ["openai:gpt-4o-mini"], "weights": [1]}})
        assert aliases == {"a": Alias((MINI,)), "b": Alias((MINI,), (1.0,))}

    def test_the_chain_keeps_its_order_and_the_models_their_colons(self) -> None:
        chain = ["openai:ft:gpt-4o-mini:acme::abc", "mock:mock", "openai:gpt-4o-mini"]
        assert from_env({"tuned": chain})["tuned"].targets == (
            ("openai", "ft:gpt-4o-mini:acme::abc"),
            ("mock", "mock"),
            MINI,
        )

    def test_at_most_sixteen_targets(self) -> None:
        chain = [f"openai:model-{n}" for n in range(MAX_TARGETS)]
        assert len(from_env({"long": chain})["long"].targets) == MAX_TARGETS == 16
        assert "alias 'long' has 17 targets; at most 16" in env_error({"long": [*chain, "openai:one-more"]})

    def test_the_environment_replaces_the_whole_file_table(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[aliases]\nsmart = ["anthropic:claude-sonnet-4-5"]\nold = "openai:gpt-4o"\n')
        settings = load_settings({ENV: '{"smart": ["anthropic:claude-haiku-4-5", "mock:mock"]}'}, path)
        assert settings.aliases == {"smart": Alias((HAIKU, ("mock", "mock")))}


class TestRefusals:
    @pytest.mark.parametrize(
        ("entry", "problem"),
        [
            ([], "alias 'x' has no targets"),
            (3, "alias 'x' must map to 'provider:model', a list of them, or a table with targets and weights"),
            (None, "alias 'x' must map to 'provider:model', a list of them, or a table"),
            (True, "alias 'x' must map to 'provider:model', a list of them, or a table"),
            (["openai:gpt-4o", "gpt-4o"], "alias 'x', target 2 of 2, must map to 'provider:model'"),
            (["openai:gpt-4o", 7], "alias 'x', target 2 of 2, must map to 'provider:model'"),
            (["openai:gpt-4o", ["mock:mock"]], "alias 'x', target 2 of 2, must map to 'provider:model'"),
            (["openai:"], "alias 'x' must map to 'provider:model'"),
            ([":gpt-4o"], "alias 'x' must map to 'provider:model'"),
            (["mock:mock", "azure:gpt-4o"], "alias 'x', target 2 of 2, names unknown provider 'azure'"),
            (["openai:gpt-4o", "mock:mock", "openai:gpt-4o"], "alias 'x' lists openai:gpt-4o twice"),
        ],
    )
    def test_bad_chains(self, entry: object, problem: str) -> None:
        assert problem in env_error({"x": entry})

    def test_an_unknown_provider_in_a_chain_lists_the_known_ones(self) -> None:
        message = env_error({"x": ["openai:gpt-4o", "azure:gpt-4o"]})
        assert "(known: anthropic, deepinfra, mock, nebius, openai)" in message

    @pytest.mark.parametrize(
        ("table", "problem"),
        [
            ({"targets": ["openai:a"], "wieghts": [1]}, "alias 'x': unknown key(s) wieghts; allowed: targets, weights"),
            ({"targets": ["openai:a"]}, "alias 'x': a table needs targets (a list) and weights; a list is a chain"),
            ({"weights": [1]}, "alias 'x': a table needs targets (a list) and weights"),
            ({"targets": "openai:a", "weights": [1]}, "alias 'x': a table needs targets (a list) and weights"),
            ({"targets": [], "weights": []}, "alias 'x' has no targets"),
            ({"targets": ["openai:a", "openai:a"], "weights": [1, 1]}, "alias 'x' lists openai:a twice"),
            ({"targets": ["openai:a", "openai:b"], "weights": [1]}, "alias 'x' needs one weight per target (2), has 1"),
            ({"targets": ["openai:a"], "weights": [1, 2]}, "alias 'x' needs one weight per target (1), has 2"),
            ({"targets": ["openai:a"], "weights": 1}, "alias 'x': weights must be a list of numbers"),
            ({"targets": ["openai:a"], "weights": ["1"]}, "alias 'x': weights must be a list of numbers"),
            ({"targets": ["openai:a"], "weights": [True]}, "alias 'x': weights must be a list of numbers"),
            ({"targets": ["openai:a", "openai:b"], "weights": [2, -1]}, "each weight must be a finite number >= 0"),
            ({"targets": ["openai:a", "openai:b"], "weights": [0, 0.0]}, "at least one weight must be greater than 0"),
        ],
    )
    def test_bad_weighted_tables(self, table: object, problem: str) -> None:
        assert problem in env_error({"x": table})

    @pytest.mark.parametrize("weight", ["nan", "inf", "-inf"])
    def test_weights_must_be_finite(self, tmp_path: Path, weight: str) -> None:
        """TOML has nan and inf, JSON does not."""
        error = file_error(
            tmp_path, f'[aliases]\nx = {{ targets = ["openai:a", "openai:b"], weights = [1, {weight}] }}\n'
        )
        assert error.setting.endswith(": aliases")
        assert "alias 'x': each weight must be a finite number >= 0" in str(error)

    def test_an_unknown_key_in_a_file_table_names_the_file_and_the_alias(self, tmp_path: Path) -> None:
        error = file_error(tmp_path, '[aliases.x]\ntargets = ["openai:a"]\nweights = [1]\nstrategy = "random"\n')
        assert error.setting == f"config file {tmp_path / 'mini-llm.toml'}: aliases"
        assert "alias 'x': unknown key(s) strategy; allowed: targets, weights" in str(error)

    def test_the_file_names_its_setting_too(self, tmp_path: Path) -> None:
        error = file_error(tmp_path, '[aliases]\nsmart = ["anthropic:claude-sonnet-4-5", "nowhere"]\n')
        assert error.setting == f"config file {tmp_path / 'mini-llm.toml'}: aliases"
        assert "alias 'smart', target 2 of 2, must map to 'provider:model'" in str(error)

    @pytest.mark.parametrize(
        "entry",
        [PASTED_KEY, ["openai:gpt-4o", PASTED_KEY], {"targets": [PASTED_KEY], "weights": [1]}],
    )
    def test_an_entry_is_never_quoted_whole(self, entry: object) -> None:
        """A key pasted where a target belongs must not reach the start-up log."""
        assert PASTED_KEY not in env_error({"x": entry})


class TestOneProtocol:
    def test_a_chain_mixing_the_protocols_is_refused(self) -> None:
        message = env_error({"x": ["anthropic:claude-sonnet-4-5", "mock:mock", "openai:gpt-4o", "openai:gpt-4.1"]})
        assert message == (
            f"{ENV}: alias 'x' mixes the anthropic and openai protocols (anthropic:claude-sonnet-4-5 is anthropic, "
            "openai:gpt-4o is openai); protocol translation is not supported"
        )

    def test_a_weighted_table_mixing_the_protocols_is_refused(self) -> None:
        assert "alias 'x' mixes the openai and anthropic protocols (openai:a is openai, anthropic:b is anthropic)" in (
            env_error({"x": {"targets": ["openai:a", "anthropic:b"], "weights": [1, 1]}})
        )

    def test_a_declared_provider_counts_by_its_protocol(self, tmp_path: Path) -> None:
        error = file_error(tmp_path, '[aliases]\nx = ["corp:claude", "nebius:llama"]\n' + CORP_CLAUDE)
        assert "alias 'x' mixes the anthropic and openai protocols (corp:claude is anthropic" in str(error)

    def test_one_protocol_with_the_mock_is_fine(self, tmp_path: Path) -> None:
        text = (
            '[aliases]\nc = ["corp:claude", "anthropic:claude-haiku-4-5", "mock:mock"]\no = ["mock:mock", "vllm:x"]\n'
        )
        aliases = load_settings({}, write_config(tmp_path, text + CORP_CLAUDE + VLLM)).aliases
        assert aliases["c"].targets == (("corp", "claude"), HAIKU, ("mock", "mock"))
        assert aliases["o"].targets == (("mock", "mock"), ("vllm", "x"))


class TestDescribe:
    def test_alias_describe(self) -> None:
        assert Alias((MINI,)).describe() == "openai:gpt-4o-mini"
        assert Alias((SONNET, HAIKU)).describe() == "anthropic:claude-sonnet-4-5 -> anthropic:claude-haiku-4-5"
        assert Alias((("a", "x"), ("b", "y")), (3.0, 0.5)).describe() == "a:x (weight 3), b:y (weight 0.5)"

    def test_config_check_prints_each_chain(self) -> None:
        text = load_settings(
            {
                ENV: json.dumps(
                    {
                        "fast": "openai:gpt-4o-mini",
                        "smart": ["anthropic:claude-sonnet-4-5", "anthropic:claude-haiku-4-5"],
                        "spread": {"targets": ["openai:a", "openai:b"], "weights": [3, 1]},
                    }
                )
            }
        ).describe()
        assert "aliases (MINI_LLM_MODEL_ALIASES):" in text
        assert re.search(r"^  fast -> openai:gpt-4o-mini$", text, re.M)
        assert re.search(r"^  smart -> anthropic:claude-sonnet-4-5 -> anthropic:claude-haiku-4-5$", text, re.M)
        assert re.search(r"^  spread -> openai:a \(weight 3\), openai:b \(weight 1\)$", text, re.M)

    def test_summary_counts_aliases_not_targets(self) -> None:
        summary = load_settings({ENV: '{"smart": ["openai:a", "openai:b", "openai:c"]}'}).summary()
        assert "aliases: 1;" in summary
