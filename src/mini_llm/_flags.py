"""Strict boolean switches shared by the build (setup.py), the hot-path selector and the config."""

from __future__ import annotations

from typing import Final

TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})


class FlagError(ValueError):
    """A switch holds a word that is neither yes nor no; the message names the setting."""


def parse_flag(name: str, raw: str | None) -> bool:
    """Parse `raw` strictly, so that `=0` never means "on" (the aio-libs `bool(env)` trap)."""
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise FlagError(f"{name}={raw!r} is not a boolean: use 1/true/yes/on or 0/false/no/off")
