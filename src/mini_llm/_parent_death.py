"""Linux's parent-death signal, for children that must never outlive the process that made them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Final

_PR_SET_PDEATHSIG: Final = 1


def parent_death_tie(sig: signal.Signals = signal.SIGTERM) -> Callable[[int], None] | None:
    """A function that, run in a child, makes Linux send it `sig` when `parent` dies (even by SIGKILL).

    None off Linux. NOTE: the kernel fires when the *thread* that forked the child exits, so fork
    from a thread that outlives the child. The `getppid` check covers a parent that died before
    the `prctl`.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def tie(parent: int) -> None:
        prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return tie


# Set by a supervisor (the SDK) for a `mini-llm` child it starts; the child ties itself at start-up.
PARENT_PID_ENV: Final = "MINI_LLM_PARENT_PID"


def tie_to_supervisor() -> None:
    """Run first thing in `mini-llm`: SIGTERM (a drain) when the supervising process dies.

    Done here rather than in a pre-exec hook because the supervisor has threads running, and
    Python code between fork and exec in a threaded process can deadlock. The variable is removed,
    so granian's workers (tied to this process instead) do not see it.
    """
    parent = os.environ.pop(PARENT_PID_ENV, None)
    tie = parent_death_tie()
    if parent and parent.isdigit() and tie is not None:
        tie(int(parent))
