"""Model aliases: one target, an ordered fallback chain, or weighted targets, checked once at start-up.

A configured alias maps to a string (`"openai:gpt-4o-mini"`), a list of them (tried in order), or a table
`{targets = [...], weights = [...]}` (load spread by weight). Every target of one alias must speak one
wire protocol: the gateway does not translate between them, so a chain that mixes them could only fail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from mini_llm.config_error import ConfigError, decode_table
from mini_llm.providers import MOCK, Provider

# More would only lengthen the time a failing request takes before the client hears of it.
MAX_TARGETS: Final = 16
_FORMS: Final = "'provider:model', a list of them, or a table with targets and weights"


@dataclass(frozen=True, slots=True)
class Alias:
    """One alias: a single target, an ordered fallback chain, or weighted targets."""

    targets: tuple[tuple[str, str], ...]  # (provider name, upstream model), as configured, at least one
    weights: tuple[float, ...] | None = None  # None: an ordered chain; else one weight per target

    def describe(self) -> str:
        """For `config check`: `a:x -> b:y` for a chain, `a:x (weight 3), b:y (weight 1)` when weighted."""
        names = [f"{provider}:{model}" for provider, model in self.targets]
        if self.weights is None:
            return " -> ".join(names)
        return ", ".join(f"{name} (weight {weight:g})" for name, weight in zip(names, self.weights, strict=True))


class _WeightedTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`alias = { targets = [...], weights = [...] }`; the checks below read the values."""

    targets: object = msgspec.UNSET
    weights: object = msgspec.UNSET


def parse_aliases(setting: str, raw: object, providers: Mapping[str, Provider]) -> dict[str, Alias]:
    """Every alias of the table `raw` (the variable's JSON object or the file's `[aliases]`); a bad one is a
    ConfigError naming `setting` and the alias. Entries are never quoted whole: one may be a pasted key."""
    if not isinstance(raw, dict):
        raise ConfigError(setting, "must be a table")
    return {name: _alias(setting, name, entry, providers) for name, entry in raw.items()}


def _alias(setting: str, name: str, entry: object, providers: Mapping[str, Provider]) -> Alias:
    if not name:
        raise ConfigError(setting, f"an alias needs a name, and must map to {_FORMS}")
    entries, raw_weights = _entries(setting, name, entry)
    if not entries:
        raise ConfigError(setting, f"alias {name!r} has no targets")
    if len(entries) > MAX_TARGETS:
        raise ConfigError(setting, f"alias {name!r} has {len(entries)} targets; at most {MAX_TARGETS}")
    count = len(entries)
    targets = tuple(_target(setting, name, index, count, item, providers) for index, item in enumerate(entries))
    for index, (provider, model) in enumerate(targets):
        if (provider, model) in targets[:index]:
            raise ConfigError(setting, f"alias {name!r} lists {provider}:{model} twice")
    _one_protocol(setting, name, targets, providers)
    weights = None if raw_weights is msgspec.UNSET else _weights(setting, name, raw_weights, count)
    return Alias(targets, weights)


def _entries(setting: str, name: str, entry: object) -> tuple[list[object], object]:
    """The target entries of any of the three forms, and the raw weights (UNSET: an ordered chain)."""
    if isinstance(entry, str):
        return [entry], msgspec.UNSET
    if isinstance(entry, list):
        return entry, msgspec.UNSET
    if not isinstance(entry, dict):
        raise ConfigError(setting, f"alias {name!r} must map to {_FORMS}")
    try:
        table = decode_table(setting, entry, _WeightedTable)
    except ConfigError as exc:
        raise ConfigError(setting, f"alias {name!r}: {exc.problem}") from None
    if not isinstance(table.targets, list) or table.weights is msgspec.UNSET:
        raise ConfigError(setting, f"alias {name!r}: a table needs targets (a list) and weights; a list is a chain")
    return table.targets, table.weights


def _target(
    setting: str, name: str, index: int, count: int, item: object, providers: Mapping[str, Provider]
) -> tuple[str, str]:
    provider, sep, model = item.partition(":") if isinstance(item, str) else ("", "", "")
    where = f"alias {name!r}" if count == 1 else f"alias {name!r}, target {index + 1} of {count},"
    if not sep or not provider or not model:
        raise ConfigError(setting, f"{where} must map to 'provider:model', such as 'openai:gpt-4o-mini'")
    if provider not in providers:
        known = ", ".join(sorted(providers))
        raise ConfigError(setting, f"{where} names unknown provider {provider!r} (known: {known})")
    return provider, model


def _weights(setting: str, name: str, raw: object, count: int) -> tuple[float, ...]:
    """One finite weight >= 0 per target, at least one above 0 (bool is no number, though Python says so)."""
    numbers = raw if isinstance(raw, list) else None
    if numbers is None or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in numbers):
        raise ConfigError(setting, f"alias {name!r}: weights must be a list of numbers")
    if len(numbers) != count:
        raise ConfigError(setting, f"alias {name!r} needs one weight per target ({count}), has {len(numbers)}")
    weights = tuple(float(w) for w in numbers)
    if not all(math.isfinite(w) and w >= 0 for w in weights):
        raise ConfigError(setting, f"alias {name!r}: each weight must be a finite number >= 0")
    if not any(w > 0 for w in weights):
        raise ConfigError(setting, f"alias {name!r}: at least one weight must be greater than 0")
    return weights


def _one_protocol(
    setting: str, name: str, targets: tuple[tuple[str, str], ...], providers: Mapping[str, Provider]
) -> None:
    """The first target of each protocol, in chain order; the mock speaks both and mixes with either."""
    first: dict[str, str] = {}
    for provider, model in targets:
        protocol = providers[provider].protocol
        if protocol != MOCK:
            first.setdefault(protocol, f"{provider}:{model}")
    if len(first) > 1:
        protocols = " and ".join(first)
        shown = ", ".join(f"{target} is {protocol}" for protocol, target in first.items())
        raise ConfigError(
            setting,
            f"alias {name!r} mixes the {protocols} protocols ({shown}); protocol translation is not supported",
        )
