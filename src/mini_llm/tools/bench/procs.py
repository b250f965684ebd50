"""Child servers for `mini-llm bench`: started with a ready file, always stopped (SIGTERM, then kill)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from mini_llm._parent_death import PARENT_PID_ENV

READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
_TAIL_LINES: Final = 8


class ChildFailed(Exception):
    """A child died or never became ready; the message ends with the tail of its output."""


@dataclass(slots=True)
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    url: str = ""
    pid: int = 0  # from the ready file: the process that serves (and answers signals)


class Children:
    """Every child started here is stopped on exit from the `with` block, whatever ends it."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.started: list[Child] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        # A second Ctrl-C must not cut the clean-up short; each stop is bounded anyway.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self.started:
                _stop(self.started.pop())
        finally:
            signal.signal(signal.SIGINT, previous)

    async def start(self, name: str, args: list[str], env: Mapping[str, str]) -> Child:
        """Run `mini-llm ARGS --ready-file F` and wait until F appears (polling with an await, so
        Ctrl-C cancels a slow start at once); ChildFailed if the child dies or takes too long."""
        ready = self.scratch / f"{name.replace(' ', '-')}.ready"
        child = self._spawn(name, [*args, "--ready-file", str(ready)], env)
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if child.proc.poll() is not None:
                status = child.proc.returncode
                raise ChildFailed(f"{name} exited with status {status} before it was ready{_tail(child.log)}")
            if time.monotonic() > deadline:
                raise ChildFailed(f"{name} was not ready within {READY_TIMEOUT:g} s{_tail(child.log)}")
            await asyncio.sleep(0.02)
        record = json.loads(ready.read_text(encoding="utf-8"))
        child.url, child.pid = str(record["url"]), int(record["pid"])
        return child

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> Child:
        """In its own session, so that a kill can take its granian workers down with it, and a
        terminal's Ctrl-C reaches the bench only (which then stops the children in order)."""
        log = open(self.scratch / f"{name.replace(' ', '-')}.log", "w+b")  # noqa: SIM115 (closed in _stop)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mini_llm.cli", *args],
            env={**env, PARENT_PID_ENV: str(os.getpid())},  # a killed bench takes its children along
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, proc, log)
        self.started.append(child)
        return child


def _tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()[-_TAIL_LINES:]
    return "; its last output:\n  " + "\n  ".join(lines) if lines else " (it printed nothing)"


def _stop(child: Child) -> None:
    """SIGTERM (the gateway drains), then SIGKILL to the whole process group if it hangs."""
    proc = child.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    child.log.close()
