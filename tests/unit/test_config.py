"""load_settings: defaults, env and TOML sources (env wins), validation errors that name the setting."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mini_llm._flags import FALSE_WORDS, TRUE_WORDS, FlagError, parse_flag
from mini_llm.aliases import Alias
from mini_llm.config import ConfigError, Settings, load_settings, mask_key, without_gateway_settings

KEY_A = "sk-test-aaaaaaaaaaaaaaaa"
KEY_B = "sk-test-bbbbbbbbbbbbbbbb"
KEY_C = "sk-ant-cccccccccccccccc"


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mini-llm.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def config_error(env: dict[str, str], config_path: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(env, config_path)
    return info.value


def assert_names(error: ConfigError, setting: str) -> None:
    """The setting is both the attribute and the first thing the one-line message says."""
    assert error.setting == setting
    assert str(error).startswith(f"{setting}: ")


class TestDefaults:
    def test_empty_environment(self) -> None:
        settings = load_settings({})
        assert settings.host == "127.0.0.1"
        assert settings.port == 3333
        assert settings.port_retries == 10
        assert settings.workers == 1
        assert settings.max_body_bytes == 10 * 1024 * 1024
        assert settings.upstream_timeout == 300.0
        assert settings.log_requests is False
        assert settings.no_extensions is False
        assert settings.mock_token_delay == 0.0
        assert settings.drain_timeout == 30.0
        assert settings.drain_delay == 0.0
        assert settings.client_key_digests == ()
        assert settings.allow_unauthenticated is False
        assert settings.allowed_origins == ()
        assert settings.allowed_hosts == ()
        assert settings.aliases == {}
        assert settings.config_file is None

    def test_builtin_providers_without_keys(self) -> None:
        providers = load_settings({}).providers
        assert list(providers) == ["openai", "anthropic", "nebius", "deepinfra", "mock"]
        assert {name: p.protocol for name, p in providers.items()} == {
            "openai": "openai",
            "anthropic": "anthropic",
            "nebius": "openai",
            "deepinfra": "openai",
            "mock": "mock",
        }
        assert providers["openai"].base_url == "https://api.openai.com/v1"
        assert providers["anthropic"].base_url == "https://api.anthropic.com"
        assert all(p.keys == () for p in providers.values())
        assert providers["openai"].key_required
        assert not providers["mock"].key_required
        assert providers["mock"].models == ("mock",)


class TestEnvironment:
    @pytest.mark.parametrize(
        ("name", "raw", "attribute", "value"),
        [
            ("MINI_LLM_HOST", " 0.0.0.0 ", "host", "0.0.0.0"),
            ("MINI_LLM_PORT", "8080", "port", 8080),
            ("MINI_LLM_PORT", "0", "port", 0),
            ("MINI_LLM_PORT_RETRIES", "0", "port_retries", 0),
            ("MINI_LLM_WORKERS", "4", "workers", 4),
            ("MINI_LLM_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "12.5", "upstream_timeout", 12.5),
            ("MINI_LLM_LOG_REQUESTS", "yes", "log_requests", True),
            ("MINI_LLM_LOG_REQUESTS", "0", "log_requests", False),
            ("MINI_LLM_NO_EXTENSIONS", "1", "no_extensions", True),
            ("MINI_LLM_NO_EXTENSIONS", "off", "no_extensions", False),
            ("MINI_LLM_MOCK_TOKEN_DELAY", "0.01", "mock_token_delay", 0.01),
            ("MINI_LLM_DRAIN_TIMEOUT", "5", "drain_timeout", 5.0),
            ("MINI_LLM_DRAIN_DELAY", "1.5", "drain_delay", 1.5),
        ],
    )
    def test_each_variable_is_parsed(self, name: str, raw: str, attribute: str, value: object) -> None:
        assert getattr(load_settings({name: raw}), attribute) == value

    @pytest.mark.parametrize(
        ("name", "raw", "problem"),
        [
            ("MINI_LLM_HOST", "   ", "is not a host name or address"),
            ("MINI_LLM_PORT", "http", "'http' is not an integer in 0..65535"),
            ("MINI_LLM_PORT", "65536", "'65536' is not an integer in 0..65535"),
            ("MINI_LLM_PORT", "-1", "'-1' is not an integer in 0..65535"),
            ("MINI_LLM_PORT", "80.0", "'80.0' is not an integer"),
            ("MINI_LLM_PORT_RETRIES", "1001", "'1001' is not an integer in 0..1000"),
            ("MINI_LLM_WORKERS", "0", "'0' is not an integer in 1..256"),
            ("MINI_LLM_MAX_BODY_BYTES", "0", "'0' is not an integer in 1.."),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "0", "must be greater than 0"),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "-1", "'-1' is not a number of seconds"),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "soon", "'soon' is not a number of seconds"),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "nan", "'nan' is not a number of seconds"),
            ("MINI_LLM_UPSTREAM_TIMEOUT", "inf", "'inf' is not a number of seconds"),
            ("MINI_LLM_LOG_REQUESTS", "maybe", "is not a boolean"),
            ("MINI_LLM_NO_EXTENSIONS", "2", "is not a boolean"),
            ("MINI_LLM_MOCK_TOKEN_DELAY", "-0.5", "'-0.5' is not a number of seconds"),
            ("MINI_LLM_DRAIN_TIMEOUT", "0", "must be greater than 0"),
            ("MINI_LLM_DRAIN_DELAY", "x", "'x' is not a number of seconds"),
            ("OPENAI_BASE_URL", "api.openai.com", "'api.openai.com' is not an http(s) URL"),
            ("ANTHROPIC_BASE_URL", "https://api anthropic.com", "is not an http(s) URL"),
        ],
    )
    def test_bad_value_names_the_variable(self, name: str, raw: str, problem: str) -> None:
        error = config_error({name: raw})
        assert_names(error, name)
        assert problem in str(error)

    def test_base_url_with_credentials_is_refused_without_echoing_them(self) -> None:
        error = config_error({"OPENAI_BASE_URL": "https://user:hunter2secret@proxy.example/v1"})
        assert_names(error, "OPENAI_BASE_URL")
        assert "must not carry a user name or password" in str(error)
        assert "hunter2secret" not in str(error)

    @pytest.mark.parametrize("prefix", ["OPENAI", "ANTHROPIC", "NEBIUS", "DEEPINFRA"])
    def test_base_url_override_drops_trailing_slash(self, prefix: str) -> None:
        settings = load_settings({f"{prefix}_BASE_URL": "http://127.0.0.1:9000/v1/"})
        assert settings.providers[prefix.lower()].base_url == "http://127.0.0.1:9000/v1"
        assert (
            settings.providers[prefix.lower()].url("/chat/completions") == "http://127.0.0.1:9000/v1/chat/completions"
        )


class TestKeys:
    @pytest.mark.parametrize("prefix", ["OPENAI", "ANTHROPIC", "NEBIUS", "DEEPINFRA"])
    def test_single_key(self, prefix: str) -> None:
        provider = load_settings({f"{prefix}_API_KEY": KEY_A}).providers[prefix.lower()]
        assert provider.keys == (KEY_A,)
        assert provider.key_setting == f"{prefix}_API_KEY or {prefix}_API_KEYS"

    def test_comma_list_is_split_and_stripped(self) -> None:
        settings = load_settings({"OPENAI_API_KEYS": f" {KEY_A} , {KEY_B},{KEY_C} "})
        assert settings.providers["openai"].keys == (KEY_A, KEY_B, KEY_C)

    @pytest.mark.parametrize("prefix", ["OPENAI", "ANTHROPIC", "NEBIUS", "DEEPINFRA"])
    def test_both_key_variables_are_an_error(self, prefix: str) -> None:
        """Picking one in silence would leave the other's keys unused, unnoticed."""
        error = config_error({f"{prefix}_API_KEYS": f"{KEY_A},{KEY_B}", f"{prefix}_API_KEY": KEY_C})
        assert_names(error, f"{prefix}_API_KEYS")
        assert f"set either {prefix}_API_KEYS or {prefix}_API_KEY, not both" in str(error)
        for key in (KEY_A, KEY_B, KEY_C):
            assert key not in str(error)

    @pytest.mark.parametrize("provider", ["openai", "vllm"])
    def test_both_key_entries_in_the_file_are_an_error(self, tmp_path: Path, provider: str) -> None:
        url = 'base_url = "http://127.0.0.1:8000/v1"\n' if provider == "vllm" else ""
        path = write_config(tmp_path, f'[providers.{provider}]\n{url}api_key = "{KEY_A}"\napi_keys = ["{KEY_B}"]\n')
        error = config_error({}, path)
        assert_names(error, f"config file {path}: providers.{provider}.api_keys")
        assert "set either api_keys or api_key, not both" in str(error)
        assert KEY_A not in str(error)

    @pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "OPENAI_API_KEYS"])
    @pytest.mark.parametrize("file_key", ["api_key", "api_keys"])
    def test_the_environment_wins_over_the_file_in_either_form(
        self, tmp_path: Path, variable: str, file_key: str
    ) -> None:
        value = f'"{KEY_B}"' if file_key == "api_key" else f'["{KEY_B}"]'
        path = write_config(tmp_path, f"[providers.openai]\n{file_key} = {value}\n")
        assert load_settings({variable: KEY_A}, path).providers["openai"].keys == (KEY_A,)

    @pytest.mark.parametrize(
        ("name", "raw", "problem"),
        [
            ("OPENAI_API_KEYS", f"{KEY_A},,{KEY_B}", "entry 2 of 3 is empty"),
            ("OPENAI_API_KEYS", f"{KEY_A},", "entry 2 of 2 is empty"),
            ("OPENAI_API_KEYS", f" ,{KEY_A}", "entry 1 of 2 is empty"),
            ("OPENAI_API_KEYS", "", "entry 1 of 1 is empty"),
            ("ANTHROPIC_API_KEY", "  ", "entry 1 of 1 is empty"),
        ],
    )
    def test_empty_entry_is_rejected(self, name: str, raw: str, problem: str) -> None:
        error = config_error({name: raw})
        assert_names(error, name)
        assert problem in str(error)
        assert KEY_A not in str(error)
        assert KEY_B not in str(error)

    def test_file_keys(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path,
            f'[providers.openai]\napi_keys = ["{KEY_A}", "{KEY_B}"]\n[providers.anthropic]\napi_key = "{KEY_C}"\n',
        )
        providers = load_settings({}, path).providers
        assert providers["openai"].keys == (KEY_A, KEY_B)
        assert providers["anthropic"].keys == (KEY_C,)

    def test_file_key_list_with_empty_entry(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, f'[providers.openai]\napi_keys = ["{KEY_A}", ""]\n')
        error = config_error({}, path)
        assert "providers.openai" in error.setting
        assert "api_keys" in error.setting
        assert "entry 2 of 2 is empty" in str(error)


class TestFile:
    def test_values_from_file(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path,
            "\n".join(
                [
                    'host = "0.0.0.0"',
                    "port = 4000",
                    "port_retries = 3",
                    "workers = 2",
                    "max_body_bytes = 2048",
                    "upstream_timeout = 60",
                    "log_requests = true",
                    "mock_token_delay = 0.5",
                    "drain_timeout = 9",
                    "drain_delay = 2",
                    "[aliases]",
                    'fast = "openai:gpt-4o-mini"',
                    "[providers.openai]",
                    'base_url = "http://localhost:9999/v1"',
                    "",
                ]
            ),
        )
        settings = load_settings({}, path)
        assert settings.config_file == path
        assert (settings.host, settings.port, settings.port_retries, settings.workers) == ("0.0.0.0", 4000, 3, 2)
        assert settings.max_body_bytes == 2048
        assert settings.upstream_timeout == 60.0
        assert settings.log_requests is True
        assert settings.mock_token_delay == 0.5
        assert (settings.drain_timeout, settings.drain_delay) == (9.0, 2.0)
        assert settings.aliases == {"fast": Alias((("openai", "gpt-4o-mini"),))}
        assert settings.providers["openai"].base_url == "http://localhost:9999/v1"

    def test_config_variable_wins_over_argument(self, tmp_path: Path) -> None:
        from_arg = write_config(tmp_path, "port = 1111\n")
        from_env = tmp_path / "env.toml"
        from_env.write_text("port = 2222\n", encoding="utf-8")
        settings = load_settings({"MINI_LLM_CONFIG": str(from_env)}, from_arg)
        assert settings.port == 2222
        assert settings.config_file == str(from_env)

    @pytest.mark.parametrize(
        ("file_line", "env_name", "env_value", "attribute", "file_value", "env_result"),
        [
            ('host = "10.0.0.1"', "MINI_LLM_HOST", "10.0.0.2", "host", "10.0.0.1", "10.0.0.2"),
            ("port = 4000", "MINI_LLM_PORT", "5000", "port", 4000, 5000),
            ("port_retries = 3", "MINI_LLM_PORT_RETRIES", "4", "port_retries", 3, 4),
            ("workers = 2", "MINI_LLM_WORKERS", "3", "workers", 2, 3),
            ("max_body_bytes = 100", "MINI_LLM_MAX_BODY_BYTES", "200", "max_body_bytes", 100, 200),
            ("upstream_timeout = 10", "MINI_LLM_UPSTREAM_TIMEOUT", "20", "upstream_timeout", 10.0, 20.0),
            ("log_requests = true", "MINI_LLM_LOG_REQUESTS", "false", "log_requests", True, False),
            ("drain_timeout = 7", "MINI_LLM_DRAIN_TIMEOUT", "8", "drain_timeout", 7.0, 8.0),
        ],
    )
    def test_env_wins_per_setting(
        self,
        tmp_path: Path,
        file_line: str,
        env_name: str,
        env_value: str,
        attribute: str,
        file_value: object,
        env_result: object,
    ) -> None:
        # A second setting in the file proves the env override is per setting, not per source.
        path = write_config(tmp_path, f"{file_line}\nmock_token_delay = 0.25\n")
        assert getattr(load_settings({}, path), attribute) == file_value
        settings = load_settings({env_name: env_value}, path)
        assert getattr(settings, attribute) == env_result
        assert settings.mock_token_delay == 0.25

    def test_env_keys_win_over_file_keys(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, f'[providers.openai]\napi_key = "{KEY_A}"\nbase_url = "http://file/v1"\n')
        settings = load_settings({"OPENAI_API_KEY": KEY_B}, path)
        assert settings.providers["openai"].keys == (KEY_B,)
        assert settings.providers["openai"].base_url == "http://file/v1"

    def test_env_aliases_replace_file_aliases(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[aliases]\nfast = "openai:gpt-4o-mini"\n')
        settings = load_settings({"MINI_LLM_MODEL_ALIASES": '{"smart": "anthropic:claude-sonnet-4-5"}'}, path)
        assert settings.aliases == {"smart": Alias((("anthropic", "claude-sonnet-4-5"),))}

    def test_bad_file_value_names_file_and_key(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, "workers = 0\n")
        assert_names(config_error({}, path), f"config file {path}: workers")

    @pytest.mark.parametrize("line", ["port = true", "port = 80.5", 'log_requests = "sometimes"', 'host = ""'])
    def test_bad_file_values(self, tmp_path: Path, line: str) -> None:
        path = write_config(tmp_path, line + "\n")
        key = line.split(" ", 1)[0]
        assert_names(config_error({}, path), f"config file {path}: {key}")

    def test_invalid_toml(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, "port = = 3\n")
        error = config_error({}, path)
        assert_names(error, "MINI_LLM_CONFIG")
        assert "not valid TOML" in str(error)
        assert path in str(error)

    def test_missing_file(self, tmp_path: Path) -> None:
        path = str(tmp_path / "absent.toml")
        error = config_error({"MINI_LLM_CONFIG": path})
        assert_names(error, "MINI_LLM_CONFIG")
        assert path in str(error)
        assert "cannot read" in str(error)


class TestAliases:
    def test_env_json(self) -> None:
        raw = '{"fast": "openai:gpt-4o-mini", "tuned": "openai:ft:gpt-4o-mini:acme::abc", "m": "mock:mock"}'
        assert load_settings({"MINI_LLM_MODEL_ALIASES": raw}).aliases == {
            "fast": Alias((("openai", "gpt-4o-mini"),)),
            "tuned": Alias((("openai", "ft:gpt-4o-mini:acme::abc"),)),
            "m": Alias((("mock", "mock"),)),
        }

    def test_empty_variable_means_no_aliases(self) -> None:
        assert load_settings({"MINI_LLM_MODEL_ALIASES": ""}).aliases == {}

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            ('{"fast": ', "is not valid JSON"),
            ("not json", "is not valid JSON"),
            ('["openai:gpt-4o"]', "must be a JSON object"),
            ('"openai:gpt-4o"', "must be a JSON object"),
            ('{"fast": "gpt-4o-mini"}', "alias 'fast' must map to 'provider:model'"),
            ('{"fast": "openai:"}', "alias 'fast' must map to 'provider:model'"),
            ('{"fast": 3}', "alias 'fast' must map to 'provider:model'"),
            ('{"": "openai:gpt-4o"}', "must map to 'provider:model'"),
            ('{"fast": "azure:gpt-4o"}', "alias 'fast' names unknown provider 'azure'"),
        ],
    )
    def test_bad_env_aliases(self, raw: str, problem: str) -> None:
        error = config_error({"MINI_LLM_MODEL_ALIASES": raw})
        assert_names(error, "MINI_LLM_MODEL_ALIASES")
        assert problem in str(error)

    def test_unknown_provider_lists_known_ones(self) -> None:
        error = config_error({"MINI_LLM_MODEL_ALIASES": '{"fast": "azure:gpt-4o"}'})
        assert "known: anthropic, deepinfra, mock, nebius, openai" in str(error)

    def test_alias_to_custom_provider(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[providers.local]\nbase_url = "http://localhost:11434/v1"\n')
        settings = load_settings({"MINI_LLM_MODEL_ALIASES": '{"llama": "local:llama3:8b"}'}, path)
        assert settings.aliases == {"llama": Alias((("local", "llama3:8b"),))}

    def test_bad_file_aliases(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[aliases]\nfast = "nowhere"\n')
        assert_names(config_error({}, path), f"config file {path}: aliases")

    def test_file_aliases_must_be_a_table(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, 'aliases = "fast=openai:gpt-4o"\n')
        assert_names(config_error({}, path), f"config file {path}: aliases")


class TestCustomProviders:
    def test_from_file(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path,
            "\n".join(
                [
                    "[providers.local]",
                    'base_url = "http://localhost:11434/v1/"',
                    'models = ["llama3:8b", "qwen2.5"]',
                    "[providers.corp-claude]",
                    'base_url = "https://claude.corp.example"',
                    'protocol = "anthropic"',
                    f'api_keys = ["{KEY_A}", "{KEY_B}"]',
                    "",
                ]
            ),
        )
        providers = load_settings({}, path).providers
        local = providers["local"]
        assert (local.protocol, local.base_url, local.keys) == ("openai", "http://localhost:11434/v1", ())
        assert local.models == ("llama3:8b", "qwen2.5")
        assert not local.key_required
        corp = providers["corp-claude"]
        assert (corp.protocol, corp.keys, corp.models) == ("anthropic", (KEY_A, KEY_B), ())
        assert not corp.key_required
        assert corp.key_setting == f"config file {path}: providers.corp-claude.api_keys"
        assert list(providers)[-1] == "mock"

    @pytest.mark.parametrize(
        ("table", "suffix", "problem"),
        [
            ('[providers.local]\nmodels = ["a"]\n', "providers.local", "needs a base_url"),
            ('providers = { local = "http://x" }\n', "providers.local", "needs a base_url"),
            (
                '[providers.local]\nbase_url = "http://x"\nprotocol = "grpc"\n',
                "providers.local.protocol",
                "'grpc' is not 'openai' or 'anthropic'",
            ),
            ('[providers.local]\nbase_url = "localhost:8000"\n', "providers.local.base_url", "is not an http(s) URL"),
            ('[providers.local]\nbase_url = "http://x y"\n', "providers.local.base_url", "is not an http(s) URL"),
            ('[providers.local]\nbase_url = "http://x"\nmodels = "llama3"\n', "providers.local.models", "list of str"),
            ('[providers.local]\nbase_url = "http://x"\napi_keys = ["a", ""]\n', "providers.local.api_keys", "empty"),
            ('[providers.mock]\nbase_url = "http://x"\n', "providers.mock", "not 'mock'"),
            ('[providers."a.b"]\nbase_url = "http://x"\n', "providers.a.b", "letters, digits"),
        ],
    )
    def test_bad_custom_provider(self, tmp_path: Path, table: str, suffix: str, problem: str) -> None:
        path = write_config(tmp_path, table)
        error = config_error({}, path)
        assert_names(error, f"config file {path}: {suffix}")
        assert problem in str(error)

    def test_builtin_provider_bad_base_url_in_file(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[providers.openai]\nbase_url = "ftp://x"\n')
        error = config_error({}, path)
        assert "providers.openai" in error.setting
        assert "base_url" in error.setting

    def test_builtin_provider_models_from_file(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[providers.openai]\nmodels = ["gpt-4o", "gpt-4o-mini"]\n')
        assert load_settings({}, path).providers["openai"].models == ("gpt-4o", "gpt-4o-mini")

    @pytest.mark.parametrize("models", ['"gpt-4o"', "[1, 2]"])
    def test_builtin_provider_models_must_be_strings(self, tmp_path: Path, models: str) -> None:
        # Custom providers check this; a built-in one must too, or "gpt-4o" becomes six one-letter models.
        path = write_config(tmp_path, f"[providers.openai]\nmodels = {models}\n")
        error = config_error({}, path)
        assert "providers.openai" in error.setting
        assert "models" in error.setting

    def test_builtin_provider_entry_must_be_a_table(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, 'providers = { openai = "sk-oops" }\n')
        error = config_error({}, path)
        assert "providers.openai" in error.setting
        assert "sk-oops" not in str(error)

    def test_providers_must_be_a_table(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, 'providers = ["openai"]\n')
        assert_names(config_error({}, path), f"config file {path}: providers")


class TestNoKeyIsPrinted:
    def settings(self) -> Settings:
        return load_settings({"OPENAI_API_KEYS": f"{KEY_A},{KEY_B}", "ANTHROPIC_API_KEY": KEY_C})

    def test_summary_counts_keys(self) -> None:
        summary = self.settings().summary()
        assert "openai=2 keys" in summary
        assert "anthropic=1 key," in summary
        assert "nebius=0 keys" in summary
        assert "deepinfra=0 keys" in summary
        assert "mock=built-in" in summary
        assert "workers: 1" in summary
        assert "max body: 10485760 bytes" in summary
        assert "upstream timeout: 300s" in summary
        for key in (KEY_A, KEY_B, KEY_C):
            assert key not in summary

    def test_summary_counts_aliases(self) -> None:
        summary = load_settings({"MINI_LLM_MODEL_ALIASES": '{"a": "openai:x", "b": "mock:mock"}'}).summary()
        assert "aliases: 2" in summary

    def test_provider_repr(self) -> None:
        settings = self.settings()
        text = repr(settings.providers["openai"])
        assert text == "Provider(name='openai', protocol='openai', keys=2)"
        assert repr(settings.providers["anthropic"]) == "Provider(name='anthropic', protocol='anthropic', keys=1)"

    def test_settings_repr(self) -> None:
        text = repr(self.settings())
        assert "keys=2" in text
        for key in (KEY_A, KEY_B, KEY_C):
            assert key not in text


class TestDescribe:
    """`config check` prints this: every value, keys masked to a prefix and their last 4 characters."""

    def test_every_setting_with_its_variable(self) -> None:
        text = load_settings({"MINI_LLM_PORT": "8080", "MINI_LLM_DRAIN_DELAY": "1.5"}).describe()
        assert "config file: none" in text
        assert re.search(r"^port +8080 +MINI_LLM_PORT$", text, re.M)
        assert re.search(r"^drain_delay +1.5s +MINI_LLM_DRAIN_DELAY$", text, re.M)
        assert re.search(r"^log_requests +false +MINI_LLM_LOG_REQUESTS$", text, re.M)
        assert "aliases: none" in text

    def test_keys_are_masked(self) -> None:
        text = load_settings({"OPENAI_API_KEYS": f"{KEY_A},sk-short", "ANTHROPIC_API_KEY": KEY_C}).describe()
        assert "keys: sk-...aaaa, ***" in text
        assert "keys: sk-...cccc" in text
        for key in (KEY_A, KEY_C, "sk-short", KEY_A[:-4]):
            assert key not in text

    @pytest.mark.parametrize(
        ("key", "masked"),
        [("sk-proj-0123456789abcdef", "sk-...cdef"), ("x" * 19, "***"), ("a", "***")],
    )
    def test_mask_key(self, key: str, masked: str) -> None:
        assert mask_key(key) == masked

    def test_providers_and_aliases(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path,
            '[aliases]\nlocal = "vllm:llama"\n[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\n'
            'models = ["llama"]\n',
        )
        text = load_settings({}, path).describe()
        assert f"config file: {path}" in text
        assert "vllm       openai protocol, http://127.0.0.1:8000/v1" in text
        assert "models: llama" in text
        assert "keys: none (set OPENAI_API_KEY or OPENAI_API_KEYS)" in text
        assert "local -> vllm:llama" in text


class TestParseFlag:
    @pytest.mark.parametrize("word", sorted(TRUE_WORDS | {"TRUE", " Yes ", "On", "1\n"}))
    def test_true_words(self, word: str) -> None:
        assert parse_flag("MINI_LLM_X", word) is True

    @pytest.mark.parametrize("word", sorted(FALSE_WORDS | {"FALSE", " no ", "Off", "  "}))
    def test_false_words(self, word: str) -> None:
        assert parse_flag("MINI_LLM_X", word) is False

    def test_unset_is_false(self) -> None:
        assert parse_flag("MINI_LLM_X", None) is False

    @pytest.mark.parametrize("word", ["2", "-1", "y", "n", "enabled", "disable", "truee", "0.0", "1 0", "t"])
    def test_other_words_raise_naming_the_setting(self, word: str) -> None:
        with pytest.raises(FlagError) as info:
            parse_flag("MINI_LLM_X", word)
        assert str(info.value).startswith(f"MINI_LLM_X={word!r} is not a boolean")

    def test_word_sets(self) -> None:
        assert {"1", "true", "yes", "on"} == TRUE_WORDS
        assert {"", "0", "false", "no", "off"} == FALSE_WORDS


class TestStrictFile:
    """A misspelt key must stop start-up instead of being ignored in silence."""

    @pytest.mark.parametrize(
        ("text", "setting", "unknown"),
        [
            ("prot = 8080\n", "config file", "prot"),
            ("[providers.openai]\napi_kyes = ['sk-a']\n", "providers.openai", "api_kyes"),
            (
                '[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\nprotocl = "anthropic"\n',
                "providers.vllm",
                "protocl",
            ),
        ],
    )
    def test_unknown_keys_are_errors(self, tmp_path: Path, text: str, setting: str, unknown: str) -> None:
        error = config_error({}, write_config(tmp_path, text))
        assert setting in error.setting
        assert f"unknown key(s) {unknown}" in str(error)

    def test_every_unknown_key_is_named_with_the_allowed_ones(self, tmp_path: Path) -> None:
        error = config_error({}, write_config(tmp_path, "prot = 8080\nwrkers = 2\n"))
        unknown, allowed = str(error).split("unknown key(s) ", 1)[1].split("; allowed: ")
        assert unknown == "prot, wrkers"
        assert {"port", "workers", "api_keys", "upstream_client", "aliases", "providers"} <= set(allowed.split(", "))
        assert "client_key_digests" not in allowed  # the attribute; its file key is api_keys

    @pytest.mark.parametrize(
        ("line", "attribute", "value"),
        [
            ('port = "4000"', "port", 4000),
            ('log_requests = "yes"', "log_requests", True),
            ("drain_delay = 2", "drain_delay", 2.0),
        ],
    )
    def test_a_file_value_may_be_written_as_the_variable_would_be(
        self, tmp_path: Path, line: str, attribute: str, value: object
    ) -> None:
        assert getattr(load_settings({}, write_config(tmp_path, line + "\n")), attribute) == value

    def test_custom_provider_takes_a_single_api_key(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, '[providers.vllm]\nbase_url = "http://127.0.0.1:8000/v1"\napi_key = "sk-v"\n')
        assert load_settings({}, path).providers["vllm"].keys == ("sk-v",)

    @pytest.mark.parametrize(
        "url", ["http://", "http://:8000/v1", "http://host/v1?x=1", "http://host/v1#frag", "ftp://host", "http://h ost"]
    )
    def test_urls_need_a_host_and_no_query(self, url: str) -> None:
        assert_names(config_error({"OPENAI_BASE_URL": url}), "OPENAI_BASE_URL")

    @pytest.mark.parametrize("raw", ["sk-a\nb", "sk a", "sk-\x00", "sk-é"])
    def test_keys_with_spaces_or_control_characters(self, raw: str) -> None:
        error = config_error({"OPENAI_API_KEY": raw})
        assert_names(error, "OPENAI_API_KEY")
        assert raw not in str(error)


def test_without_gateway_settings_keeps_only_the_hot_path_switch_of_the_gateways_variables() -> None:
    environ = {
        "PATH": "/usr/bin",
        "MINI_LLM_NO_EXTENSIONS": "1",
        "MINI_LLM_PORT": "4000",
        "OPENAI_API_KEY": "sk-a",
        "ANTHROPIC_BASE_URL": "http://x",
        "NEBIUS_API_KEYS": "k",
        "DEEPINFRA_API_KEY": "k",
        "OPENAIX": "unrelated",
    }
    assert without_gateway_settings(environ) == {
        "PATH": "/usr/bin",
        "MINI_LLM_NO_EXTENSIONS": "1",
        "OPENAIX": "unrelated",
    }


def sha256(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class TestGatewayKeys:
    def test_plaintext_and_digest_entries_both_become_digests(self) -> None:
        settings = load_settings({"MINI_LLM_API_KEYS": f" {KEY_A} , sha256:{sha256(KEY_B).hex().upper()}"})
        assert settings.client_key_digests == (sha256(KEY_A), sha256(KEY_B))

    @pytest.mark.parametrize("prefix", ["SHA256:", "Sha256:"])
    def test_the_digest_prefix_in_any_case_is_a_digest_not_a_plaintext_key(self, prefix: str) -> None:
        settings = load_settings({"MINI_LLM_API_KEYS": f"{prefix}{sha256(KEY_B).hex().upper()}"})
        assert settings.client_key_digests == (sha256(KEY_B),)

    def test_file_list(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, f'api_keys = ["{KEY_A}", "sha256:{sha256(KEY_B).hex()}"]\n')
        assert load_settings({}, path).client_key_digests == (sha256(KEY_A), sha256(KEY_B))

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            ("sha256:abc", "entry 1 of 1 must be sha256: and 64 hex digits"),
            (f"{KEY_A},sha256:{'g' * 64}", "entry 2 of 2 must be sha256: and 64 hex digits"),
            (f"sha256:{'a' * 66}", "entry 1 of 1 must be sha256: and 64 hex digits"),
            ("SHA256:abc", "entry 1 of 1 must be sha256: and 64 hex digits"),
            (f"{KEY_A},", "entry 2 of 2 is empty"),
            ("", "entry 1 of 1 is empty"),
        ],
    )
    def test_bad_entries_are_named_never_quoted(self, raw: str, problem: str) -> None:
        error = config_error({"MINI_LLM_API_KEYS": raw})
        assert_names(error, "MINI_LLM_API_KEYS")
        assert problem in str(error)
        assert KEY_A not in str(error)

    def test_never_in_repr_summary_or_describe(self) -> None:
        settings = load_settings({"MINI_LLM_API_KEYS": f"{KEY_A},{KEY_B}"})
        assert "gateway API keys: 2" in settings.summary()
        assert re.search(r"^api_keys +2 keys +MINI_LLM_API_KEYS$", settings.describe(), re.M)
        for text in (repr(settings), settings.summary(), settings.describe()):
            for secret in (KEY_A, KEY_B, sha256(KEY_A).hex(), repr(sha256(KEY_A))):
                assert secret not in text

    def test_describe_without_keys(self) -> None:
        assert re.search(r"^api_keys +none +MINI_LLM_API_KEYS$", load_settings({}).describe(), re.M)


class TestExposure:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
    def test_loopback_binds_are_fine_without_keys(self, host: str) -> None:
        assert load_settings({"MINI_LLM_HOST": host}).check_exposure() is None

    @pytest.mark.parametrize("host", ["localhost", " LocalHost "])
    def test_localhost_binds_the_loopback_address(self, host: str) -> None:
        settings = load_settings({"MINI_LLM_HOST": host})
        assert settings.host == "127.0.0.1"
        assert settings.check_exposure() is None

    @pytest.mark.parametrize("host", ["gw.localhost", "gateway.example.com"])
    def test_a_bind_host_must_be_an_ip_address(self, host: str) -> None:
        """granian binds IP addresses only: a name would end `serve` with a traceback."""
        with pytest.raises(ConfigError) as info:
            load_settings({"MINI_LLM_HOST": host})
        assert_names(info.value, "MINI_LLM_HOST")
        assert f"{host!r} is not an IP address" in str(info.value)

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5"])
    def test_a_wider_bind_without_keys_is_refused(self, host: str) -> None:
        with pytest.raises(ConfigError) as info:
            load_settings({"MINI_LLM_HOST": host}).check_exposure()
        assert_names(info.value, "MINI_LLM_API_KEYS")
        assert f"required to serve on {host}, beyond loopback" in str(info.value)
        assert "MINI_LLM_ALLOW_UNAUTHENTICATED=1" in str(info.value)

    def test_keys_make_a_wider_bind_fine(self) -> None:
        assert load_settings({"MINI_LLM_HOST": "0.0.0.0", "MINI_LLM_API_KEYS": KEY_A}).check_exposure() is None

    def test_the_opt_out_gives_a_warning(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, 'host = "0.0.0.0"\nallow_unauthenticated = true\n')
        warning = load_settings({}, path).check_exposure()
        assert warning is not None
        assert warning.startswith("serving on 0.0.0.0 without gateway API keys (MINI_LLM_ALLOW_UNAUTHENTICATED=1)")

    def test_opt_out_is_a_strict_flag(self) -> None:
        assert_names(config_error({"MINI_LLM_ALLOW_UNAUTHENTICATED": "sure"}), "MINI_LLM_ALLOW_UNAUTHENTICATED")


class TestOriginsAndHosts:
    def test_origins_are_normalised_as_browsers_send_them(self) -> None:
        raw = "HTTPS://App.Example.com:443/, http://localhost:5173, http://[::1]:80, http://a.test:8080"
        settings = load_settings({"MINI_LLM_ALLOWED_ORIGINS": raw})
        assert settings.allowed_origins == (
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]",
            "http://a.test:8080",
        )

    @pytest.mark.parametrize(
        "origin",
        [
            "*",
            "null",
            "app.example.com",
            "ftp://a.test",
            "https://a.test/path",
            "https://a.test?x",
            "http://u@a.test",
            "http://a.test:99999",
            "http://a.test:x",
            "https://",
            "http://a_b.test:1@c.test",
            "http://a.test%2F",
        ],
    )
    def test_anything_but_an_origin_is_refused(self, origin: str) -> None:
        error = config_error({"MINI_LLM_ALLOWED_ORIGINS": origin})
        assert_names(error, "MINI_LLM_ALLOWED_ORIGINS")
        assert "is not an origin such as https://app.example.com" in str(error)

    @pytest.mark.parametrize(
        ("setting", "entry"),
        [("MINI_LLM_ALLOWED_ORIGINS", "https://bücher.example"), ("MINI_LLM_ALLOWED_HOSTS", "bücher.example")],
    )
    def test_unicode_names_never_match_so_the_punycode_form_is_asked_for(self, setting: str, entry: str) -> None:
        error = config_error({setting: entry})
        assert_names(error, setting)
        assert "punycode (xn--) form" in str(error)
        assert load_settings({setting: entry.replace("bücher", "xn--bcher-kva")})  # what a browser sends

    def test_hosts_keep_the_name_only(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path, 'allowed_hosts = ["Gateway.Internal:8443", "[::2]", "10.0.0.5", "gw.test.", "mini_llm:3333"]\n'
        )
        assert load_settings({}, path).allowed_hosts == ("gateway.internal", "::2", "10.0.0.5", "gw.test", "mini_llm")

    @pytest.mark.parametrize(
        "host",
        ["*", "a b", "-x.test", "http://x.test", "x.test:port", "u@x.test", "x.test:1@y.test", "[::1]x.test", "x/y"],
    )
    def test_bad_host_names(self, host: str) -> None:
        error = config_error({"MINI_LLM_ALLOWED_HOSTS": f"ok.test,{host}"})
        assert_names(error, "MINI_LLM_ALLOWED_HOSTS")
        assert "entry 2 of 2" in str(error)

    def test_describe_lists_them(self) -> None:
        text = load_settings(
            {"MINI_LLM_ALLOWED_ORIGINS": "https://a.test,https://b.test", "MINI_LLM_ALLOWED_HOSTS": "gw.test"}
        ).describe()
        assert re.search(r"^allowed_origins +https://a.test, https://b.test +MINI_LLM_ALLOWED_ORIGINS$", text, re.M)
        assert re.search(r"^allowed_hosts +gw.test +MINI_LLM_ALLOWED_HOSTS$", text, re.M)
        assert re.search(r"^allow_unauthenticated +false +MINI_LLM_ALLOW_UNAUTHENTICATED$", text, re.M)


class TestUpstreamClientSettings:
    def test_defaults(self) -> None:
        settings = load_settings({})
        assert (settings.upstream_client, settings.upstream_pool_limit, settings.upstream_idle_timeout) == (
            "fast",
            10_000,
            30.0,
        )

    @pytest.mark.parametrize(
        ("name", "raw", "attribute", "value"),
        [
            ("MINI_LLM_UPSTREAM_CLIENT", "aiohttp", "upstream_client", "aiohttp"),
            ("MINI_LLM_UPSTREAM_CLIENT", " Fast ", "upstream_client", "fast"),
            ("MINI_LLM_UPSTREAM_POOL_LIMIT", "1", "upstream_pool_limit", 1),
            ("MINI_LLM_UPSTREAM_POOL_LIMIT", "65535", "upstream_pool_limit", 65535),
            ("MINI_LLM_UPSTREAM_IDLE_TIMEOUT", "0.5", "upstream_idle_timeout", 0.5),
        ],
    )
    def test_each_variable_is_parsed(self, name: str, raw: str, attribute: str, value: object) -> None:
        assert getattr(load_settings({name: raw}), attribute) == value

    @pytest.mark.parametrize(
        ("name", "raw", "problem"),
        [
            ("MINI_LLM_UPSTREAM_CLIENT", "curl", "'curl' is not 'fast' or 'aiohttp'"),
            ("MINI_LLM_UPSTREAM_CLIENT", "", "'' is not 'fast' or 'aiohttp'"),
            ("MINI_LLM_UPSTREAM_CLIENT", "mock", "'mock' is not 'fast' or 'aiohttp'"),
            ("MINI_LLM_UPSTREAM_POOL_LIMIT", "0", "'0' is not an integer in 1..65535"),
            ("MINI_LLM_UPSTREAM_POOL_LIMIT", "65536", "'65536' is not an integer in 1..65535"),
            ("MINI_LLM_UPSTREAM_IDLE_TIMEOUT", "0", "must be greater than 0"),
            ("MINI_LLM_UPSTREAM_IDLE_TIMEOUT", "-1", "'-1' is not a number of seconds"),
        ],
    )
    def test_bad_value_names_the_variable(self, name: str, raw: str, problem: str) -> None:
        error = config_error({name: raw})
        assert_names(error, name)
        assert problem in str(error)

    def test_from_the_file_and_the_environment_wins(self, tmp_path: Path) -> None:
        path = write_config(
            tmp_path, 'upstream_client = "aiohttp"\nupstream_pool_limit = 8\nupstream_idle_timeout = 5\n'
        )
        settings = load_settings({}, path)
        assert (settings.upstream_client, settings.upstream_pool_limit, settings.upstream_idle_timeout) == (
            "aiohttp",
            8,
            5.0,
        )
        settings = load_settings({"MINI_LLM_UPSTREAM_CLIENT": "fast"}, path)
        assert (settings.upstream_client, settings.upstream_pool_limit) == ("fast", 8)

    @pytest.mark.parametrize(
        "line", ["upstream_client = 1", "upstream_pool_limit = 0", "upstream_idle_timeout = false"]
    )
    def test_bad_file_values_name_file_and_key(self, tmp_path: Path, line: str) -> None:
        path = write_config(tmp_path, line + "\n")
        assert_names(config_error({}, path), f"config file {path}: {line.split(' ', 1)[0]}")

    def test_describe_lists_them(self) -> None:
        text = load_settings({"MINI_LLM_UPSTREAM_IDLE_TIMEOUT": "2.5"}).describe()
        assert re.search(r"^upstream_client +fast +MINI_LLM_UPSTREAM_CLIENT$", text, re.M)
        assert re.search(r"^upstream_pool_limit +10000 +MINI_LLM_UPSTREAM_POOL_LIMIT$", text, re.M)
        assert re.search(r"^upstream_idle_timeout +2.5s +MINI_LLM_UPSTREAM_IDLE_TIMEOUT$", text, re.M)


# (attribute, variable, key in [routing], default, a good raw value, what it parses to)
ROUTING = [
    ("retries", "MINI_LLM_RETRIES", "retries", 2, "0", 0),
    ("backoff_base", "MINI_LLM_RETRY_BACKOFF_BASE", "backoff_base", 0.25, "0.1", 0.1),
    ("backoff_max", "MINI_LLM_RETRY_BACKOFF_MAX", "backoff_max", 8.0, "12", 12.0),
    ("retry_after_max", "MINI_LLM_RETRY_AFTER_MAX", "retry_after_max", 20.0, "0", 0.0),
    ("retry_budget", "MINI_LLM_RETRY_BUDGET", "budget", 30.0, "0", 0.0),
    ("key_auth_cooldown", "MINI_LLM_KEY_AUTH_COOLDOWN", "auth_cooldown", 300.0, "60", 60.0),
    ("key_rate_limit_cooldown", "MINI_LLM_KEY_RATE_LIMIT_COOLDOWN", "rate_limit_cooldown", 10.0, "2.5", 2.5),
    ("breaker_failures", "MINI_LLM_BREAKER_FAILURES", "breaker_failures", 5, "0", 0),
    ("breaker_cooldown", "MINI_LLM_BREAKER_COOLDOWN", "breaker_cooldown", 30.0, "1", 1.0),
]
ROUTING_IDS = [row[0] for row in ROUTING]


class TestRouting:
    """The failover settings: a variable each, and a key under [routing] in the file."""

    @pytest.mark.parametrize(("attribute", "_env", "_key", "default", "_raw", "_value"), ROUTING, ids=ROUTING_IDS)
    def test_defaults(self, attribute: str, _env: str, _key: str, default: object, _raw: str, _value: object) -> None:
        assert getattr(load_settings({}), attribute) == default

    @pytest.mark.parametrize(("attribute", "env", "_key", "_default", "raw", "value"), ROUTING, ids=ROUTING_IDS)
    def test_each_variable(
        self, attribute: str, env: str, _key: str, _default: object, raw: str, value: object
    ) -> None:
        assert getattr(load_settings({env: raw}), attribute) == value

    @pytest.mark.parametrize(("attribute", "_env", "key", "_default", "raw", "value"), ROUTING, ids=ROUTING_IDS)
    def test_each_file_key(
        self, tmp_path: Path, attribute: str, _env: str, key: str, _default: object, raw: str, value: object
    ) -> None:
        settings = load_settings({}, write_config(tmp_path, f"[routing]\n{key} = {raw}\n"))
        assert getattr(settings, attribute) == value

    def test_the_environment_wins_per_key(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, "[routing]\nretries = 5\nbudget = 12\nbreaker_failures = 9\n")
        settings = load_settings({"MINI_LLM_RETRIES": "1", "MINI_LLM_BREAKER_FAILURES": "0"}, path)
        assert (settings.retries, settings.retry_budget, settings.breaker_failures) == (1, 12.0, 0)

    def test_key_cooldowns_may_be_off(self) -> None:
        settings = load_settings({"MINI_LLM_KEY_AUTH_COOLDOWN": "0", "MINI_LLM_KEY_RATE_LIMIT_COOLDOWN": "0"})
        assert (settings.key_auth_cooldown, settings.key_rate_limit_cooldown) == (0.0, 0.0)

    @pytest.mark.parametrize(
        ("env", "raw", "problem"),
        [
            ("MINI_LLM_RETRIES", "11", "'11' is not an integer in 0..10"),
            ("MINI_LLM_RETRIES", "-1", "'-1' is not an integer in 0..10"),
            ("MINI_LLM_RETRIES", "two", "'two' is not an integer in 0..10"),
            ("MINI_LLM_RETRY_BACKOFF_BASE", "0", "must be greater than 0"),
            ("MINI_LLM_RETRY_BACKOFF_MAX", "0", "must be greater than 0"),
            ("MINI_LLM_RETRY_BACKOFF_MAX", "nan", "'nan' is not a number of seconds"),
            ("MINI_LLM_RETRY_AFTER_MAX", "-1", "'-1' is not a number of seconds >= 0"),
            ("MINI_LLM_RETRY_BUDGET", "soon", "'soon' is not a number of seconds >= 0"),
            ("MINI_LLM_KEY_AUTH_COOLDOWN", "-1", "'-1' is not a number of seconds >= 0"),
            ("MINI_LLM_KEY_RATE_LIMIT_COOLDOWN", "inf", "'inf' is not a number of seconds >= 0"),
            ("MINI_LLM_BREAKER_FAILURES", "1001", "'1001' is not an integer in 0..1000"),
            ("MINI_LLM_BREAKER_COOLDOWN", "0", "must be greater than 0"),
        ],
    )
    def test_bad_variables(self, env: str, raw: str, problem: str) -> None:
        error = config_error({env: raw})
        assert_names(error, env)
        assert problem in str(error)

    @pytest.mark.parametrize(
        ("line", "problem"),
        [
            ("retries = true", "True is not an integer in 0..10"),
            ("retries = 1.5", "1.5 is not an integer in 0..10"),
            ("budget = -1", "-1 is not a number of seconds >= 0"),
            ("auth_cooldown = -2", "is not a number of seconds >= 0"),
            ('breaker_cooldown = "x"', "'x' is not a number of seconds"),
        ],
    )
    def test_bad_file_values_name_the_file_and_the_routing_key(self, tmp_path: Path, line: str, problem: str) -> None:
        path = write_config(tmp_path, f"[routing]\n{line}\n")
        error = config_error({}, path)
        assert_names(error, f"config file {path}: routing.{line.split(' ', 1)[0]}")
        assert problem in str(error)

    def test_an_unknown_routing_key_is_refused_with_the_allowed_ones(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, "[routing]\nretires = 3\n")
        error = config_error({}, path)
        assert_names(error, f"config file {path}: routing")
        assert str(error).endswith(
            "unknown key(s) retires; allowed: auth_cooldown, backoff_base, backoff_max, breaker_cooldown, "
            "breaker_failures, budget, rate_limit_cooldown, retries, retry_after_max"
        )

    @pytest.mark.parametrize(("text", "setting"), [("retries = 3\n", ""), ("routing = 3\n", "routing")])
    def test_routing_keys_live_in_their_table(self, tmp_path: Path, text: str, setting: str) -> None:
        path = write_config(tmp_path, text)
        error = config_error({}, path)
        assert_names(error, f"config file {path}" + (f": {setting}" if setting else ""))
        assert ("must be a table" if setting else "unknown key(s) retries;") in str(error)

    @pytest.mark.parametrize(
        ("env", "text", "setting"),
        [
            ({"MINI_LLM_RETRY_BACKOFF_BASE": "2", "MINI_LLM_RETRY_BACKOFF_MAX": "1"}, "", "MINI_LLM_RETRY_BACKOFF_MAX"),
            ({"MINI_LLM_RETRY_BACKOFF_BASE": "9"}, "", "MINI_LLM_RETRY_BACKOFF_BASE"),  # the default cap is 8
            ({}, "[routing]\nbackoff_max = 0.1\n", "routing.backoff_max"),
            ({"MINI_LLM_RETRY_BACKOFF_MAX": "0.1"}, "[routing]\nbackoff_base = 0.5\n", "MINI_LLM_RETRY_BACKOFF_MAX"),
        ],
    )
    def test_the_backoff_cap_below_its_base_is_refused(
        self, tmp_path: Path, env: dict[str, str], text: str, setting: str
    ) -> None:
        path = write_config(tmp_path, text)
        error = config_error(env, path)
        assert_names(error, setting if setting.startswith("MINI_LLM_") else f"config file {path}: {setting}")
        assert "is below the backoff base" in str(error)
        assert "the cap must be at least the base" in str(error)

    def test_a_cap_equal_to_the_base_is_fine(self) -> None:
        settings = load_settings({"MINI_LLM_RETRY_BACKOFF_BASE": "3", "MINI_LLM_RETRY_BACKOFF_MAX": "3"})
        assert (settings.backoff_base, settings.backoff_max) == (3.0, 3.0)

    def test_describe_shows_each_routing_key_with_its_variable(self, tmp_path: Path) -> None:
        path = write_config(tmp_path, "[routing]\nbudget = 12.5\n")
        text = load_settings({"MINI_LLM_RETRIES": "4"}, path).describe()
        for _attribute, env, key, default, _raw, _value in ROUTING:
            shown = {"retries": "4", "budget": "12.5s"}.get(
                key, f"{default:g}s" if isinstance(default, float) else f"{default}"
            )
            assert re.search(rf"^routing\.{key} +{re.escape(shown)} +{env}$", text, re.M), key
