"""Find the processes a test's gateway left behind, by a mark in their environment (workers inherit it)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

MARK_VAR = "SDK_TEST_MARK"


def new_mark() -> dict[str, str]:
    """An `env` for a Gateway whose processes, workers included, `marked` can then find."""
    return {MARK_VAR: uuid.uuid4().hex}


def marked(env: dict[str, str]) -> list[int]:
    """Live processes carrying the mark; a zombie's environ reads empty, so zombies do not count."""
    needle = f"{MARK_VAR}={env[MARK_VAR]}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def gone(env: dict[str, str], within: float = 10.0) -> list[int]:
    """Wait (bounded) for every marked process to end; returns those still alive."""
    deadline = time.monotonic() + within
    while marked(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    return marked(env)


def process_group(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[2])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
