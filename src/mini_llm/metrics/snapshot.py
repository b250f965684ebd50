"""One worker's numbers as a file, and the merge of every worker's file into what one scrape shows.

Each worker of `mini-llm serve` writes its snapshot to the server's metrics folder (atomically: a reader
never sees half a file); the worker answering /metrics merges its own live numbers with the others'.
Counters and histograms are summed over every file, a stopped or replaced worker's too, so a counter
never goes down while the server runs; gauges describe the present, so only live workers' count.
A file is named by the worker's pid and its start time: a new worker under a dead one's reused pid
writes its own file, and a pid alone never makes an unrelated process count as a live worker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

import msgspec

from mini_llm.metrics.series import Sums, add_histogram

SUFFIX: Final = ".metrics"


class Series(msgspec.Struct, array_like=True):
    labels: tuple[str, ...]
    value: int


class HistogramSeries(msgspec.Struct, array_like=True):
    labels: tuple[str, ...]
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    total: float


class Keys(msgspec.Struct, array_like=True):
    """A provider's keys in one worker: an end time per cooling key, so a cooldown over since the write counts free."""

    keys: int
    cooling_until: list[float]  # time.monotonic() values: one clock for every process on Linux

    def available(self, now: float) -> int:
        return self.keys - sum(1 for until in self.cooling_until if until > now)


class Snapshot(msgspec.Struct):
    pid: int
    started: str  # with the pid, one process start: see this_process()
    live: bool  # False in the last write at shutdown: its gauges describe nothing any more
    counters: dict[str, list[Series]]
    histograms: dict[str, list[HistogramSeries]]
    streams_active: int
    keys: dict[str, Keys]
    breakers_open: list[tuple[str, str]]  # (provider, model) labels of breakers that are not closed


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def process_start(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (proc(5): /proc/<pid>/stat, field 22); None if none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            stat = source.read()
    except OSError:
        return None
    # Field 2 is the command name in parentheses, which may hold spaces and ")": count from the last ")".
    return stat.rpartition(b")")[2].split()[19].decode()


def this_process() -> str:
    """This process's `started`: its start time where /proc has one, else a random token (liveness then by pid)."""
    return process_start(os.getpid()) or f"token-{secrets.token_hex(8)}"


def path_for(folder: str, pid: int, started: str) -> str:
    return os.path.join(folder, f"{pid}-{started}{SUFFIX}")


def write(folder: str, snapshot: Snapshot) -> None:
    """Replace the worker's file in one step (rename is atomic within a file system, POSIX rename(2))."""
    final = path_for(folder, snapshot.pid, snapshot.started)
    partial = f"{final}.partial"
    with open(partial, "wb") as out:
        out.write(_encoder.encode(snapshot))
    os.replace(partial, final)


def _alive(pid: int, started: str) -> bool:
    """Whether the process that wrote a snapshot still runs: the same pid with the same start time."""
    if started.isdigit():
        return process_start(pid) == started
    try:  # no /proc when it was written: the pid alone, which a reused pid can fool
        os.kill(pid, 0)  # signal 0: only the check that the process exists (kill(2))
    except (ProcessLookupError, PermissionError):  # gone, or someone else's process under a reused pid
        return False
    return True


def read_others(folder: str, own_pid: int, own_started: str) -> Iterator[Snapshot]:
    """The other workers' snapshots; one whose process is gone is marked not live. Unreadable files are skipped."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    own = os.path.basename(path_for(folder, own_pid, own_started))
    for name in names:
        if not name.endswith(SUFFIX) or name == own:
            continue
        with contextlib.suppress(OSError, msgspec.DecodeError):
            with open(os.path.join(folder, name), "rb") as source:
                snapshot = _decoder.decode(source.read())
            snapshot.live = snapshot.live and _alive(snapshot.pid, snapshot.started)
            yield snapshot


@dataclass(slots=True)
class Merged:
    """What a scrape shows: counters and histograms summed over all snapshots, gauges over the live ones."""

    counters: dict[str, dict[tuple[str, ...], int]] = field(default_factory=dict)
    histograms: dict[str, Sums] = field(default_factory=dict)
    streams_active: int = 0
    keys_available: dict[str, int] = field(default_factory=dict)  # the fewest any live worker can use
    breakers_open: set[tuple[str, str]] = field(default_factory=set)  # open in at least one live worker


def merge(snapshots: Iterable[Snapshot], now: float) -> Merged:
    merged = Merged()
    for snapshot in snapshots:
        for name, series in snapshot.counters.items():
            _add_counts(merged.counters.setdefault(name, {}), series)
        for name, histogram_series in snapshot.histograms.items():
            _add_histograms(merged.histograms.setdefault(name, {}), histogram_series)
        if not snapshot.live:
            continue
        merged.streams_active += snapshot.streams_active
        for provider, keys in snapshot.keys.items():
            available = keys.available(now)
            merged.keys_available[provider] = min(available, merged.keys_available.get(provider, available))
        merged.breakers_open.update(snapshot.breakers_open)
    return merged


def _add_counts(into: dict[tuple[str, ...], int], series: list[Series]) -> None:
    for one in series:
        into[one.labels] = into.get(one.labels, 0) + one.value


def _add_histograms(into: Sums, series: list[HistogramSeries]) -> None:
    for one in series:
        add_histogram(into, one.labels, one.counts, one.total)
