"""The main process's stop signal: it tells the running workers to drain, and nothing it meets there loses the stop."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from pathlib import Path

from granian.server.mp import WorkerProcess

from mini_llm.server import _DrainingGranian


def _exit_at_once() -> None:
    return None


def test_a_stop_skips_workers_being_respawned_or_reaped_and_still_stops(tmp_path: Path) -> None:
    server = _DrainingGranian(
        "mini_llm.gateway.app:app",
        drain_marker=str(tmp_path / "draining"),
        drain_delay=0,
        banner="test",
        ready_file=None,
    )
    server.pid = os.getpid()  # serve() sets it; this is the main process
    # granian's own worker objects (untyped): one made but not started yet, so without a pid.
    being_respawned = WorkerProcess(server, 0, _exit_at_once, ())  # type: ignore[no-untyped-call]
    reaped = WorkerProcess(server, 1, _exit_at_once, ())  # type: ignore[no-untyped-call]
    reaped.inner.start()
    reaped.inner.join()
    # The OS may hand a reaped worker's pid to any new process: here, a bystander that SIGUSR1 would kill.
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        reaped.inner._popen.pid = bystander.pid
        server.wrks = [reaped, being_respawned]
        server.signal_handler_interrupt()
        assert server.main_loop_interrupt.wait(5) and server.interrupt_signal  # set from a thread of its own
        assert (tmp_path / "draining").exists()
        assert bystander.poll() is None, "an unrelated process got the drain signal"
    finally:
        bystander.kill()
        bystander.wait()
    assert multiprocessing.active_children() == []
