"""A tiny TOML writer for the config file shape: scalars, string lists and nested tables."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # JSON string escapes are TOML basic-string escapes, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to a mini-llm TOML config")


def _table(mapping: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """Plain keys first: in TOML they belong to the table whose header came last."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in mapping.items() if not isinstance(v, Mapping)]
    for name, sub in mapping.items():
        if isinstance(sub, Mapping):
            header = ".".join(_key(part) for part in (*path, name))
            lines += ["", f"[{header}]", *_table(sub, (*path, name))]
    return lines


def dumps(config: Mapping[str, Any]) -> str:
    """`config` as TOML text that `tomllib.loads` reads back equal."""
    return "\n".join(_table(config, ())) + "\n"
