"""How a test starts a command it then interrupts: with the SIGINT disposition of its own process,
or with SIGINT ignored, as a shell without job control starts every background command (POSIX XCU
2.11; CI scripts and `make test &` do). exec keeps an ignored signal ignored, so the command must
take SIGINT back itself to stop on Ctrl-C or `kill -INT`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


def _as_is(command: list[str]) -> list[str]:
    return command


def _sigint_ignored(command: list[str]) -> list[str]:
    return ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh", *command]


LAUNCHES = pytest.mark.parametrize("launch", [_as_is, _sigint_ignored], ids=["inherited", "sigint-ignored"])
Launch = Callable[[list[str]], list[str]]
