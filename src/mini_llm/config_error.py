"""The error a bad setting raises, and the strict decoding of a file table that raises it.

A module of its own so that `config` and `aliases` (which `config` imports) both raise the same error.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

S = TypeVar("S", bound=msgspec.Struct)


class ConfigError(ValueError):
    """Bad configuration; the message names the setting so start-up can print one clear line."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


def decode_table(setting: str, raw: object, schema: type[S]) -> S:
    """A file table as its Struct (every field takes any value); a misspelt key would otherwise be ignored
    in silence."""
    if not isinstance(raw, dict):
        raise ConfigError(setting, "must be a table")
    try:
        return msgspec.convert(raw, schema)
    except msgspec.ValidationError:
        # Every field takes any value, so the error is an unknown key; msgspec names the first, this all.
        allowed = sorted(schema.__struct_fields__)
        unknown = sorted(set(raw) - set(allowed))
        raise ConfigError(setting, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}") from None
