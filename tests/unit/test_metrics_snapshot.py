"""Worker snapshots: written atomically, read back, merged (counters over all, gauges over live workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mini_llm.metrics.snapshot import (
    HistogramSeries,
    Keys,
    Series,
    Snapshot,
    merge,
    path_for,
    process_start,
    read_others,
    this_process,
    write,
)


def _snapshot(
    pid: int,
    *,
    started: str = "1",
    live: bool = True,
    requests: int = 1,
    streams: int = 0,
    keys: Keys | None = None,
) -> Snapshot:
    return Snapshot(
        pid=pid,
        started=started,
        live=live,
        counters={"requests": [Series(("/v1/chat/completions", "fast", "openai", "200"), requests)]},
        histograms={"overheads": [HistogramSeries(("/v1/chat/completions",), [requests, 0, 1], 0.5)]},
        streams_active=streams,
        keys={"openai": keys or Keys(2, [])},
        breakers_open=[("openai", "gpt-4o-mini")] if streams else [],
    )


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_counters_and_histograms_add_up_over_every_snapshot_dead_ones_included() -> None:
    merged = merge([_snapshot(1, requests=2), _snapshot(2, requests=3, live=False)], now=0.0)
    assert merged.counters["requests"] == {("/v1/chat/completions", "fast", "openai", "200"): 5}
    assert merged.histograms["overheads"] == {("/v1/chat/completions",): ([5, 0, 2], 1.0)}


def test_gauges_come_from_live_workers_only() -> None:
    merged = merge([_snapshot(1, streams=2), _snapshot(2, streams=5, live=False)], now=0.0)
    assert merged.streams_active == 2
    merged = merge([_snapshot(1), _snapshot(2, streams=5, live=False)], now=0.0)
    assert merged.breakers_open == set()  # the open breaker was the gone worker's
    merged = merge([_snapshot(1), _snapshot(2, streams=1)], now=0.0)
    assert merged.breakers_open == {("openai", "gpt-4o-mini")}  # open in any live worker


def test_keys_available_is_the_fewest_any_live_worker_can_use_and_cooldowns_end_on_time() -> None:
    cooling = Keys(2, [100.0])  # one key cooling until monotonic time 100
    snapshots = [_snapshot(1), _snapshot(2, keys=cooling), _snapshot(3, live=False, keys=Keys(2, [1e9, 1e9]))]
    assert merge(snapshots, now=99.0).keys_available == {"openai": 1}
    assert merge(snapshots, now=100.5).keys_available == {"openai": 2}  # over since the write: free again


def _start_of(pid: int) -> str:
    started = process_start(pid)
    assert started is not None and started.isdigit(), started
    return started


def test_a_written_snapshot_is_read_back_by_another_worker_and_a_dead_ones_marked_not_live(tmp_path: Path) -> None:
    folder = str(tmp_path)
    dead = _dead_pid()
    parent = os.getppid()  # a live process: the test's parent
    write(folder, _snapshot(parent, started=_start_of(parent), requests=4))
    write(folder, _snapshot(dead, requests=7))
    own = this_process()
    write(folder, _snapshot(os.getpid(), started=own, requests=100))  # the reader's own file: it has its live numbers
    (tmp_path / "123-1.metrics.partial").write_bytes(b"half")  # a write under way
    (tmp_path / "456-1.metrics").write_bytes(b"not msgpack")  # cannot be read: skipped
    others = {snapshot.pid: snapshot for snapshot in read_others(folder, os.getpid(), own)}
    assert set(others) == {parent, dead}
    assert others[parent].live
    assert not others[dead].live
    assert others[dead].counters["requests"][0].value == 7
    assert not Path(f"{path_for(folder, dead, '1')}.partial").exists()  # the rename left no partial file


def test_a_live_pid_with_another_start_time_is_not_live(tmp_path: Path) -> None:
    """A pid reused by an unrelated process: the pid runs, but not the process that wrote the snapshot."""
    parent = os.getppid()
    write(str(tmp_path), _snapshot(parent, started=str(int(_start_of(parent)) + 1), streams=3))
    [snapshot] = read_others(str(tmp_path), os.getpid(), this_process())
    assert not snapshot.live
    assert merge([snapshot], now=0.0).streams_active == 0  # its gauges are gone, its counters stay
    assert merge([snapshot], now=0.0).counters["requests"] == {("/v1/chat/completions", "fast", "openai", "200"): 1}


def test_without_a_start_time_liveness_falls_back_to_the_pid(tmp_path: Path) -> None:
    """A snapshot written where /proc had no start time carries a random token instead."""
    write(str(tmp_path), _snapshot(os.getppid(), started="token-0a1b", requests=2))
    write(str(tmp_path), _snapshot(_dead_pid(), started="token-2c3d", requests=3))
    live = {snapshot.counters["requests"][0].value: snapshot.live for snapshot in read_others(str(tmp_path), 0, "")}
    assert live == {2: True, 3: False}


# Renames itself when told (a process may write only its own /proc comm), says so, and waits for the end.
RENAMED_CHILD = (
    "import sys; sys.stdin.readline(); open('/proc/self/comm', 'w').write('a) b (c'); print(); sys.stdin.read()"
)


def test_a_process_start_holds_when_the_process_name_has_spaces_and_parentheses() -> None:
    child = subprocess.Popen([sys.executable, "-c", RENAMED_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        before = _start_of(child.pid)
        child.stdin.write(b"rename\n")
        child.stdin.flush()
        child.stdout.readline()
        assert "(a) b (c)" in Path(f"/proc/{child.pid}/stat").read_text()  # field 2 now holds ") " and " ("
        assert process_start(child.pid) == before
    finally:
        child.communicate()  # closes its stdin: it ends
    assert process_start(child.pid) is None  # exited and reaped: no such process


def test_a_missing_folder_reads_as_no_other_worker(tmp_path: Path) -> None:
    assert list(read_others(str(tmp_path / "gone"), os.getpid(), this_process())) == []
