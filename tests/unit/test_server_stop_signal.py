"""A stop signal ends `mini-llm serve` wherever it lands in the main thread, even inside granian's own wait.

granian's main loop waits on an Event (main_loop_interrupt) that its stop sets. A Python signal
handler runs in the main thread between two bytecodes, so it can run inside Event.wait() while the
Event's lock is held; seen once as a `serve` that never exited on a SIGTERM sent right after start-up.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mini_llm.server import _DrainingGranian


@pytest.mark.parametrize("draining", [False, True], ids=["first-signal", "second-signal"])
def test_a_stop_signal_inside_the_main_loops_wait_still_stops(tmp_path: Path, draining: bool) -> None:
    server = _DrainingGranian(
        "mini_llm.gateway.app:app",
        drain_marker=str(tmp_path / "draining"),
        drain_delay=0,
        banner="test",
        ready_file=None,
    )
    server.pid = os.getpid()  # serve() sets it; this is the main process
    server._draining = draining
    interrupt: threading.Event = server.main_loop_interrupt
    lock: threading.Condition = interrupt._cond  # type: ignore[attr-defined]  # what Event.wait() holds

    def signalled_inside_wait() -> None:
        with lock:
            server.signal_handler_interrupt()

    # The handler runs on a thread of its own, so that a deadlock fails the test instead of hanging it.
    handler = threading.Thread(target=signalled_inside_wait, daemon=True)
    handler.start()
    handler.join(5)
    assert not handler.is_alive(), "the handler waits forever for the lock of the Event it was called inside"
    assert interrupt.wait(5)
    assert server.interrupt_signal
