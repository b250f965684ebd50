"""Worker snapshots: written atomically, read back, merged (counters over all, gauges over live workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mini_llm.metrics.snapshot import HistogramSeries, Keys, Series, Snapshot, merge, path_for, read_others, write


def _snapshot(
    pid: int, *, live: bool = True, requests: int = 1, streams: int = 0, keys: Keys | None = None
) -> Snapshot:
    return Snapshot(
        pid=pid,
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


def test_a_written_snapshot_is_read_back_by_another_worker_and_a_dead_ones_marked_not_live(tmp_path: Path) -> None:
    folder = str(tmp_path)
    dead = _dead_pid()
    write(folder, _snapshot(os.getppid(), requests=4))  # a live process: the test's parent
    write(folder, _snapshot(dead, requests=7))
    write(folder, _snapshot(os.getpid(), requests=100))  # the reader's own file: it has its live numbers
    (tmp_path / "123.metrics.partial").write_bytes(b"half")  # a write under way
    (tmp_path / "456.metrics").write_bytes(b"not msgpack")  # cannot be read: skipped
    others = {snapshot.pid: snapshot for snapshot in read_others(folder, os.getpid())}
    assert set(others) == {os.getppid(), dead}
    assert others[os.getppid()].live
    assert not others[dead].live
    assert others[dead].counters["requests"][0].value == 7
    assert not Path(f"{path_for(folder, dead)}.partial").exists()  # the rename left no partial file


def test_a_missing_folder_reads_as_no_other_worker(tmp_path: Path) -> None:
    assert list(read_others(str(tmp_path / "gone"), os.getpid())) == []
