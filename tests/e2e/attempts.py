"""Reading the gateway's 502/504 message when no provider answered: the last failure, then each attempt."""

from __future__ import annotations

import re
from typing import Final

_MESSAGE: Final = re.compile(r"(?P<lead>.+?) \[(?P<count>\d+) attempts?: (?P<listed>.+)\]", re.DOTALL)


def split_failure(message: str) -> tuple[str, list[str]]:
    """(the last failure's own words, one entry per attempt) of a message that lists its attempts."""
    found = _MESSAGE.fullmatch(message)
    assert found is not None, f"not a message listing attempts: {message!r}"
    listed = found["listed"].split("; ")
    assert len(listed) == int(found["count"]), message
    return found["lead"], listed


def attempt_pattern(target: str, outcome: str, key: int | None = None) -> str:
    """The regular expression of one entry: `openai:gpt-4o key 1 unreachable after 3 ms`."""
    numbered = "" if key is None else f" key {key}"
    return rf"{re.escape(target + numbered)} {re.escape(outcome)} after \d+ ms"
