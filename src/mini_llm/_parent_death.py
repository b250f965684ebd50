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

    None off Linux. `prctl` is looked up here, in the parent, so the returned function only makes
    system calls and is safe in a pre-exec hook. NOTE: the kernel fires when the *thread* that
    forked the child exits, so fork from a thread that outlives the child. The `getppid` check
    covers a parent that died before the `prctl`.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def tie(parent: int) -> None:
        prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return tie
