"""Child processes: free ports, CPU pinning, readiness (first 200 from a health path), stop by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from . import procstat

HOST: Final = "127.0.0.1"
# Settings of the harness's own environment that must not leak into a system under test.
_PRIVATE_PREFIXES: Final = ("MINI_LLM_", "OPENAI_", "ANTHROPIC_", "LITELLM_")


class StartError(RuntimeError):
    """A process did not come up; the message carries the reason and the tail of its log."""


@dataclass
class Launch:
    """How to start one process and how to tell it is ready."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    health: str = "/health"
    expect_in_health: tuple[bytes, ...] = ()  # each must be in the health answer (the settings took effect)
    ready_timeout: float = 60.0
    # A process that picks its own port (TensorZero's embedded gateway) writes it to this file once serving.
    port_file: Path | None = None
    # Ready on any HTTP answer to `health`, not only a 200 (for a server that has no health path).
    any_answer: bool = False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, bytes] | None:
    """A bare HTTP/1.1 GET (no client library in the way of a cold-start measurement); None if refused."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    raw = b"".join(chunks)
    parts = raw.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1]), raw.partition(b"\r\n\r\n")[2]


def read_port(path: Path) -> int:
    """The port a process wrote to `path` (written whole, then renamed), 0 until it is there."""
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update(extra)
    return env


class Child:
    """A started process pinned to a CPU, with its log file and its measured cold start."""

    def __init__(self, launch: Launch, cpu: int | str | None, logdir: Path) -> None:
        """`cpu`: the CPU to pin to, or a taskset list ("0,1" unpins it from the harness's own CPU)."""
        self.launch = launch
        self.port = launch.port
        tag = launch.port or (launch.port_file.parent.name if launch.port_file else "0")
        self.log_path = logdir / f"{launch.name}-{tag}.log"
        pin = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
        with self.log_path.open("wb") as log:
            started = time.perf_counter()
            self.popen = subprocess.Popen(
                pin + launch.argv, env=clean_env(launch.env), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.cold_start_s = self._wait_ready(started)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _wait_ready(self, started: float) -> float:
        deadline = started + self.launch.ready_timeout
        while time.perf_counter() < deadline:
            if self.popen.poll() is not None:
                tail = self.log_tail()
                last = tail.splitlines()[-1:] or ["no output"]
                # The last line first: the report keeps only the first, and it says why (a refused setting).
                raise StartError(f"{self.launch.name} exited with status {self.popen.returncode}: {last[0]}\n{tail}")
            if self.launch.port_file is not None and not self.port:
                self.port = read_port(self.launch.port_file)
                if not self.port:
                    time.sleep(0.002)
                    continue
            answer = http_get(self.port, self.launch.health, timeout=2.0)
            if answer is not None and (answer[0] == 200 or self.launch.any_answer):
                elapsed = time.perf_counter() - started
                if not all(expected in answer[1] for expected in self.launch.expect_in_health):
                    raise StartError(f"{self.launch.name}: {self.launch.health} answered {answer[1][:300]!r}")
                return elapsed
            time.sleep(0.002)
        raise StartError(f"{self.launch.name} not ready within {self.launch.ready_timeout:g}s\n{self.log_tail()}")

    def pids(self) -> list[int]:
        return procstat.tree(self.popen.pid) if self.popen.poll() is None else []

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL; workers left behind by their main process are killed by their own PIDs."""
        family = procstat.identities(self.pids())
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            procstat.kill_same(family)
            self.popen.wait(timeout)
        deadline = time.monotonic() + 2.0
        while procstat.alive_same(family) and time.monotonic() < deadline:
            time.sleep(0.05)
        procstat.kill_same(family)


@contextlib.contextmanager
def running(launch: Launch, cpu: int | str | None, logdir: Path) -> Iterator[Child]:
    child = Child(launch, cpu, logdir)
    try:
        yield child
    finally:
        child.stop()
