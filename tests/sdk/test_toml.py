"""The config mapping -> TOML writer: what it writes, tomllib reads back equal."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from mini_llm.sdk._toml import dumps


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"port": 0, "log_requests": True, "upstream_timeout": 2.5, "host": "127.0.0.1"},
        {"aliases": {"fast": "openai:gpt-4o-mini", "dotted.alias": "mock:mock", "": "x"}},
        {
            "workers": 2,
            "providers": {
                "openai": {"api_keys": ["sk-one", "sk-two"]},
                "vllm": {"base_url": "http://127.0.0.1:8000/v1", "protocol": "openai", "api_keys": []},
            },
        },
        {"host": 'quote " backslash \\ tab \t newline \n del \x7f nul \x00 unicode é 😀'},
    ],
)
def test_round_trip(config: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(config)) == config


@pytest.mark.parametrize("value", [None, float("nan"), b"bytes", object()])
def test_values_toml_cannot_hold_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="cannot write"):
        dumps({"key": value})
