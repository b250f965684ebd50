"""One worker's numbers as a file, and the merge of every worker's file into what one scrape shows.

Each worker of `mini-llm serve` writes its snapshot to the server's metrics folder (atomically: a reader
never sees half a file); the worker answering /metrics merges its own live numbers with the others'.
Counters and histograms are summed over every file, a stopped or replaced worker's too, so a counter
never goes down while the server runs; gauges describe the present, so only live workers' count.
"""

from __future__ import annotations

import contextlib
import os
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
    live: bool  # False in the last write at shutdown: its gauges describe nothing any more
    counters: dict[str, list[Series]]
    histograms: dict[str, list[HistogramSeries]]
    streams_active: int
    keys: dict[str, Keys]
    breakers_open: list[tuple[str, str]]  # (provider, model) labels of breakers that are not closed


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Snapshot)


def path_for(folder: str, pid: int) -> str:
    return os.path.join(folder, f"{pid}{SUFFIX}")


def write(folder: str, snapshot: Snapshot) -> None:
    """Replace the worker's file in one step (rename is atomic within a file system, POSIX rename(2))."""
    final = path_for(folder, snapshot.pid)
    partial = f"{final}.partial"
    with open(partial, "wb") as out:
        out.write(_encoder.encode(snapshot))
    os.replace(partial, final)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only the check that the process exists (kill(2))
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process under a reused pid: not our worker
        return False
    return True


def read_others(folder: str, own_pid: int) -> Iterator[Snapshot]:
    """The other workers' snapshots; one whose process is gone is marked not live. Unreadable files are skipped."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        stem, _, suffix = name.partition(".")
        if f".{suffix}" != SUFFIX or not stem.isdigit() or int(stem) == own_pid:
            continue
        with contextlib.suppress(OSError, msgspec.DecodeError):
            with open(os.path.join(folder, name), "rb") as source:
                snapshot = _decoder.decode(source.read())
            snapshot.live = snapshot.live and _running(snapshot.pid)
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
