"""Metric labels take bounded values: configured model and provider names, capped code-chosen ones."""

from __future__ import annotations

import json

from mini_llm.config import load_settings
from mini_llm.metrics.labels import CAP, NO_STATUS, OTHER, STATUSES, UNKNOWN, Capped, Labels, configured_models
from mini_llm.providers import Provider

ALIASES = {"fast": "openai:gpt-4o-mini", "chain": ["anthropic:claude-sonnet-4", "mock:mock-echo"]}


def _labels() -> Labels:
    settings = load_settings({"MINI_LLM_MODEL_ALIASES": json.dumps(ALIASES), "OPENAI_API_KEY": "sk-label-test-1"})
    return Labels(settings.providers, settings.aliases)


def test_models_are_aliases_their_targets_and_provider_model_spellings_anything_else_is_other() -> None:
    labels = _labels()
    for name in ("fast", "chain", "gpt-4o-mini", "openai:gpt-4o-mini", "claude-sonnet-4", "mock:mock-echo", "mock"):
        assert labels.model(name) == name
    assert labels.model("gpt-5") == OTHER
    assert labels.model("openai:gpt-5") == OTHER
    assert labels.model("sk-proj-" + "x" * 40) == OTHER  # a pasted key never becomes a label
    assert labels.model(None) == ""  # no model was named


def test_declared_provider_models_count_as_configured() -> None:
    local = Provider("local", "openai", "http://127.0.0.1:1/v1", (), "X", key_required=False, models=("llama3:8b",))
    names = configured_models({"local": local}, {})
    assert {"llama3:8b", "local:llama3:8b", "mock"} <= names
    assert "other-model" not in names


def test_providers_are_the_configured_names() -> None:
    labels = _labels()
    assert labels.provider("openai") == "openai"
    assert labels.provider("mock") == "mock"
    assert labels.provider("bedrock") == OTHER


def test_a_capped_label_keeps_the_first_values_and_counts_the_rest_as_unknown() -> None:
    capped = Capped()
    assert [capped(index) for index in range(CAP)] == [str(index) for index in range(CAP)]
    assert capped("one-too-many") == UNKNOWN
    assert capped(3) == "3"  # the values seen before the cap keep their names
    assert len(capped.seen) == CAP  # and the overflow is not remembered: the map stays bounded


def test_statuses_are_the_http_range_and_anything_else_is_no_status() -> None:
    assert STATUSES[200] == "200"
    assert STATUSES[599] == "599"
    assert STATUSES.get(0, NO_STATUS) == "0"
    assert STATUSES.get(600, NO_STATUS) == "0"
