"""One `mini-llm` child process: its own process group, tied to its parent, stderr drained to a tail."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import IO, Final

from mini_llm._parent_death import PARENT_PID_ENV

TAIL_LINES: Final = 20


def describe_status(status: int) -> str:
    """Popen's returncode in words: a negative one is the signal that ended the process."""
    if status >= 0:
        return f"exited with status {status}"
    try:
        return f"was killed by {signal.Signals(-status).name}"
    except ValueError:  # a signal without a name, such as SIGRTMIN+1
        return f"was killed by signal {-status}"


class Child:
    """A started `python -m mini_llm.cli ...` process.

    It leads its own process group, so the whole group (granian's workers too) can be killed at
    once: granian's workers outlive a main process that was SIGKILLed, and would keep the port.
    stderr is read continuously into a bounded tail, so a chatty child never blocks on a full pipe.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mini_llm.cli", *args],
            # The child ties itself to this process at start-up (Linux parent-death signal).
            env={**env, PARENT_PID_ENV: str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stderr is not None
        self._reader = threading.Thread(
            target=self._drain, args=(self._proc.stderr,), name=f"mini-llm-{self.pid}-stderr", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _drain(self, pipe: IO[bytes]) -> None:
        with pipe:
            for line in pipe:
                self.tail.append(line.decode(errors="replace").rstrip())

    def poll(self) -> int | None:
        return self._proc.poll()

    def terminate(self) -> None:
        """SIGTERM to the main process only: granian then drains and stops its workers itself."""
        self._proc.send_signal(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL the whole group (a no-op when it is empty) and reap the main process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        return self._proc.wait()

    def drained(self) -> bool:
        """True once stderr reached its end, i.e. every line the child wrote is in `tail`."""
        return not self._reader.is_alive()
