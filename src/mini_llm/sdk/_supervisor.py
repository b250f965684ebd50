"""Start, watch and stop one child; every wait is yielded, so a blocking and an asyncio driver share it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Final, TypeVar

from mini_llm.config import without_gateway_settings
from mini_llm.sdk._child import Child, describe_status

T = TypeVar("T")

# A step is either seconds to sleep, or a URL whose /health the driver probes, sending back True
# when it answered 200 (and None after a sleep).
Step = float | str
Steps = Generator[Step, bool | None, T]

POLL: Final = 0.02
WATCH_POLL: Final = 0.1
DRAIN_WAIT: Final = 2.0
BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 5.0
STABLE_AFTER: Final = 10.0

log = logging.getLogger("mini_llm.sdk")


class GatewayStartError(RuntimeError):
    """The child exited, timed out or was stopped before it answered; the message holds its last stderr lines."""

    def __init__(self, message: str, returncode: int | None, stderr_tail: Sequence[str]) -> None:
        lines = "\n".join(f"  {line}" for line in stderr_tail) or "  (nothing)"
        super().__init__(f"{message}; its last stderr lines:\n{lines}")
        self.returncode = returncode
        self.stderr_tail = tuple(stderr_tail)


def loopback(host: str) -> str:
    """Where to connect to reach a server bound to `host` (a wildcard means this machine)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def url_of(host: str, port: int) -> str:
    address = loopback(host)
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


def _ready_port(path: Path) -> int | None:
    """The port from the ready file the child writes (atomically) once it answers /health."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    port: int = record["port"]
    return port


class Supervisor:
    """The life of one managed `mini-llm` command (serve or mock-upstream): start, restart, stop.

    `args` builds the command line (without --port and --ready-file) once the working directory
    for temporary files exists. Generators do the work and yield their waits (see `Step`).
    """

    def __init__(
        self,
        label: str,
        args: Callable[[Path], Sequence[str]],
        host: str,
        port: int | None,
        env: Mapping[str, str],
        startup_timeout: float,
        stop_timeout: float,
        inherit_env: bool = True,
    ) -> None:
        self.label = label
        self._inherit_env = inherit_env
        self.host = host
        self.port = self._requested_port = port or 0
        self.restarts = 0
        self.stopping = False
        self.child: Child | None = None
        self._args = args
        self._env = dict(env)
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._workdir: Path | None = None
        self._backoff = BACKOFF_FIRST

    def running(self) -> Child:
        if self.child is None:
            raise RuntimeError(f"{self.label} is not running: start it first")
        return self.child

    def start(self) -> Steps[None]:
        if self.child is not None:
            raise RuntimeError(f"{self.label} is already running")
        self.stopping = False
        self.port = self._requested_port
        self.restarts = 0
        self._backoff = BACKOFF_FIRST
        self._workdir = Path(tempfile.mkdtemp(prefix="mini-llm-sdk-"))
        try:
            yield from self._launch({})
        except BaseException:
            self._remove_workdir()
            raise

    def _launch(self, extra_env: Mapping[str, str]) -> Steps[None]:
        """Spawn the child and wait for its ready file and /health; on any failure the child is killed."""
        assert self._workdir is not None
        ready = self._workdir / "ready.json"
        ready.unlink(missing_ok=True)
        argv = [*self._args(self._workdir), "--port", str(self.port), "--ready-file", str(ready)]
        inherited = os.environ if self._inherit_env else without_gateway_settings(os.environ)
        child = Child(argv, {**inherited, **self._env, **extra_env})
        try:
            self.port = yield from self._await_ready(child, ready)
        except BaseException:
            child.kill()
            raise
        self.child = child

    def _await_ready(self, child: Child, ready: Path) -> Steps[int]:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            status = child.poll()
            if status is not None:
                problem = f"{describe_status(status)} before it was ready"
            elif self.stopping:
                problem = "was stopped before it was ready"
            elif time.monotonic() >= deadline:
                problem = f"was not ready within {self._startup_timeout:g} s, so it was killed"
            else:
                port = _ready_port(ready)
                if port is not None and (yield url_of(self.host, port)):
                    return port
                yield POLL
                continue
            returncode = child.kill()  # the whole group: a worker left behind would keep stderr open
            yield from self._drain(child)
            raise GatewayStartError(f"{self.label} (pid {child.pid}) {problem}", returncode, child.tail)

    def _drain(self, child: Child) -> Steps[None]:
        """Give the stderr reader a moment to take the child's last lines (it was killed or exited)."""
        deadline = time.monotonic() + DRAIN_WAIT
        while not child.drained() and time.monotonic() < deadline:
            yield POLL

    def _pause(self, seconds: float) -> Steps[None]:
        """Sleep in short steps, so that stop() never waits for a whole backoff."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            yield WATCH_POLL

    def supervise(self) -> Steps[int | None]:
        """Restart the child whenever it exits unexpectedly, until stop(); then stop it and return its status."""
        up_since = time.monotonic()
        while not self.stopping:
            assert self.child is not None
            if self.child.poll() is None:
                if time.monotonic() - up_since >= STABLE_AFTER:
                    self._backoff = BACKOFF_FIRST
                yield WATCH_POLL
                continue
            yield from self._recover(self.child)
            up_since = time.monotonic()
        return (yield from self.shutdown())

    def _recover(self, dead: Child) -> Steps[None]:
        """Relaunch on the same port (no port retries, so the URL stays valid), backing off exponentially."""
        status = dead.kill()  # the main process is gone; its orphaned workers may still hold the port
        yield from self._drain(dead)
        tail = "\n".join(dead.tail)
        log.warning(
            "%s (pid %d) %s; restarting it. Its last stderr lines:\n%s",
            self.label,
            dead.pid,
            describe_status(status),
            tail,
        )
        while not self.stopping:
            yield from self._pause(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
            try:
                yield from self._launch({"MINI_LLM_PORT_RETRIES": "0"})
            except GatewayStartError as exc:
                if not self.stopping:
                    log.warning("restarting %s failed, retrying: %s", self.label, exc)
                continue
            self.restarts += 1
            return

    def shutdown(self) -> Steps[int | None]:
        """SIGTERM, up to stop_timeout to drain, then SIGKILL for the whole group; None if it was not running."""
        child, self.child = self.child, None
        if child is None:
            return None
        try:
            if child.poll() is None:
                child.terminate()
                deadline = time.monotonic() + self._stop_timeout
                while child.poll() is None and time.monotonic() < deadline:
                    yield POLL
            status = child.kill()
            yield from self._drain(child)
        finally:
            self._remove_workdir()
        return status

    def _remove_workdir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
