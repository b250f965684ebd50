"""CPU time and memory of a whole process tree, and of a whole core, read from /proc (granian runs a main
process and workers)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Final

_TICK: Final = os.sysconf("SC_CLK_TCK")
_PROC: Final = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields after the command name (which may hold spaces and parentheses)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _TICK


def memory_kb(pids: list[int], field: str = "VmRSS") -> int:
    """Sum of one /proc/PID/status field (VmRSS now, VmHWM the peak) over the processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            lines = (_PROC / str(pid) / "status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(_PROC / str(pid) / "fd"))
    except OSError:
        return 0


def _start_time(pid: int) -> int | None:
    """When the process started (in ticks since boot); None once it is gone or a zombie."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and fields[0] != "Z" else None


def identities(pids: list[int]) -> list[tuple[int, int]]:
    """(pid, start time) pairs: a PID reused by an unrelated process later is never mistaken for ours."""
    return [(pid, start) for pid in pids if (start := _start_time(pid)) is not None]


def alive_same(family: list[tuple[int, int]]) -> bool:
    return any(_start_time(pid) == start for pid, start in family)


def kill_same(family: list[tuple[int, int]]) -> None:
    for pid, start in family:
        if _start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def core_seconds(cpu: int) -> dict[str, float]:
    """One CPU's time by kind since boot, from /proc/stat (seconds): what else ran on a pinned core, and
    how much of it the hypervisor took (steal)."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    for line in (_PROC / "stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            return {name: int(value) / _TICK for name, value in zip(names, fields[1:], strict=False)}
    raise ValueError(f"no cpu{cpu} in /proc/stat")
