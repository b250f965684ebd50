"""granian start-up: port choice with retries, the ready line, SIGTERM drain."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import pathlib
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server.common import AbstractServer

from mini_llm._parent_death import parent_death_tie
from mini_llm.metrics import METRICS_DIR_ENV

# Concurrent connections per worker (granian's backpressure): high, for many idle streams.
MAX_CONNECTIONS_PER_WORKER: Final = 16384
BACKLOG: Final = 2048


PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# granian logs to stdout by default; stdout is kept for the one "running on" line tools read.
LOG_CONFIG: Final[dict[str, Any]] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": PLAIN_FORMAT},
        "granian": {"format": "%(asctime)s %(levelname)s granian: %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "granian": {"class": "logging.StreamHandler", "formatter": "granian", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "_granian": {"handlers": ["granian"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["granian"], "level": "INFO", "propagate": False},
        "mini_llm": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
    # Records of asyncio, aiohttp and other libraries end here; without a handler they would reach
    # logging.lastResort, written as they are.
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


def log_config(log_format: str) -> dict[str, Any]:
    """LOG_CONFIG, or with MINI_LLM_LOG_FORMAT=json the same handlers writing one JSON object per line."""
    if log_format != "json":
        return LOG_CONFIG
    json_formatter = {"()": "mini_llm.log_json.JsonFormatter"}
    return {**LOG_CONFIG, "formatters": {"plain": json_formatter, "granian": json_formatter}}


# Set by run() for the workers it forks, so they can tie themselves to it.
SERVER_PID_ENV: Final = "MINI_LLM_SERVER_PID"
# Tells the workers that the drain began, so they can end their streams at the drain timeout;
# granian itself uses SIGTERM/SIGINT (stop) and SIGHUP (reload) only.
DRAIN_SIGNAL: Final = signal.SIGUSR1
# Seconds between tries of a worker that refused the connection (it has not called listen() yet).
READY_POLL_INTERVAL: Final = 0.002
# Seconds between the drain timeout, when workers end their streams, and granian's kill; granian's
# kill timeout is whole seconds, so a fractional drain timeout is rounded up first.
DRAIN_GRACE: Final = 1


class PortUnavailable(OSError):
    """No port in the allowed range could be bound."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _can_bind(host: str, port: int) -> int | None:
    """Bind a probe socket; returns the bound port (useful for port 0) or None when taken."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR but not SO_REUSEPORT: TIME_WAIT is fine, a live listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return None
            raise PortUnavailable(f"cannot bind {host}:{port}: {exc.strerror}") from exc
        bound: int = probe.getsockname()[1]
        return bound


def pick_port(host: str, port: int, retries: int) -> int:
    """The first free port of port..port+retries (port 0 asks the OS for any free one)."""
    last = min(port + retries, 65535)
    for candidate in range(port, last + 1):
        bound = _can_bind(host, candidate)
        if bound is not None:
            return bound
    tried = f"{port}" if last == port else f"{port}-{last}"
    raise PortUnavailable(
        f"port {tried} on {host} is in use (MINI_LLM_PORT_RETRIES={retries}); choose another with --port"
    )


def _answers_health(host: str, port: int) -> bool:
    """One GET /health to the bound address, on a socket of the family it was bound with.

    Not socket.create_connection: its getaddrinfo encodes the host with the idna codec, whose import
    (with unicodedata) would take ~2 ms of the CPU the worker is starting on.
    """
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.socket(_family(probe_host), socket.SOCK_STREAM) as conn:
            conn.settimeout(1)
            conn.connect((probe_host, port))
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            return conn.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def tie_worker_to_server() -> None:
    """Run in a worker at start-up: it dies at once with the `mini-llm` process that forked it.

    granian's workers otherwise outlive a main process killed with SIGKILL and keep serving on
    the port. SIGKILL, not SIGTERM: the drain deadline is the main process's to enforce, and with
    it gone a draining worker could hold a stream (and the port) for as long as the stream lasts.
    """
    server_pid = os.environ.get(SERVER_PID_ENV)
    tie = parent_death_tie(signal.SIGKILL)
    if server_pid and tie is not None and os.getpid() != int(server_pid):
        tie(int(server_pid))


def on_drain_signal(callback: Callable[[], None]) -> None:
    """Run in a worker at start-up: `callback` runs on the worker's loop when `mini-llm serve` starts draining."""
    server_pid = os.environ.get(SERVER_PID_ENV)
    if server_pid and os.getpid() != int(server_pid):
        asyncio.get_running_loop().add_signal_handler(DRAIN_SIGNAL, callback)


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_ready_file(path: str) -> None:
    """Fail before serving (a configuration error) when the ready file could never be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write the ready file {path!r}: {folder} is not a writable directory")


def write_ready_file(path: str, host: str, port: int) -> None:
    """Tell a supervising process the real address, atomically: it never reads half a file."""
    import json  # here: only a supervised run writes the file

    record = {"url": url_of(host, port), "host": host, "port": port, "pid": os.getpid()}
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as out:
        json.dump(record, out)
    os.replace(partial, path)


class _DrainingGranian(Granian):  # type: ignore[misc,valid-type]
    """On the first SIGTERM/SIGINT: mark draining (/ready -> 503), tell the workers, wait drain_delay, stop.

    granian then stops accepting and lets in-flight requests, streams too, finish within
    workers_kill_timeout; lifespan shutdown closes the upstream pool. The workers end the
    streams still open at the drain timeout themselves, at least DRAIN_GRACE before that kill.
    """

    def __init__(
        self, *args: Any, drain_marker: str, drain_delay: float, banner: str, ready_file: str | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._ready_file = ready_file
        self._drain_marker = drain_marker
        self._drain_delay = drain_delay
        self._draining = False
        self._banner = banner

    def _spawn_workers(self, spawn_target: Any, target_loader: Any) -> None:
        """After spawning, print the "running on" line once a worker answers: it means ready.

        NOTE: this polls from the main thread on purpose; a helper thread alive while granian
        forks workers can leave a lock (e.g. the import lock) held forever in the child.
        """
        super()._spawn_workers(spawn_target, target_loader)
        deadline = time.monotonic() + 60
        while not self.interrupt_signal and time.monotonic() < deadline:
            if _answers_health(self.bind_addr, self.bind_port):
                if self._ready_file:
                    try:
                        write_ready_file(self._ready_file, self.bind_addr, self.bind_port)
                    except OSError as exc:  # checked at start-up; gone since: say so and keep serving
                        print(f"mini-llm: cannot write the ready file: {exc}", file=sys.stderr, flush=True)
                print(f"{self._banner} running on {url_of(self.bind_addr, self.bind_port)}", flush=True)
                return
            if not any(worker.is_alive() for worker in self.wrks):
                return
            time.sleep(READY_POLL_INTERVAL)

    def _write_pidfile(self) -> None:
        """granian's, without the RSS collector its MPServer builds here unconditionally.

        That collector serves only workers_max_rss, which mini-llm never sets, and building it scans
        every process on the machine: ~4 ms of the main process's start-up, before any worker forks.
        """
        AbstractServer._write_pidfile(self)  # type: ignore[no-untyped-call]

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != self.pid:
            # A forked worker inherits this handler until its event loop installs granian's own; a
            # stop that arrives while it is still starting ends it at once (it has nothing in flight).
            os._exit(0)
        if self._draining:  # a second signal stops at once
            self._stop_after(0)
            return
        self._draining = True
        try:
            with contextlib.suppress(OSError), open(self._drain_marker, "w"):
                pass
            self._tell_workers()
        finally:  # telling the workers is a courtesy; the stop itself must never be lost
            self._stop_after(self._drain_delay)

    def _stop_after(self, delay: float) -> None:
        """granian's stop, `delay` seconds from now, from a thread of its own.

        The stop sets the Event the main thread waits on, and a signal handler runs in the main thread
        between two bytecodes: maybe inside that Event's wait(), with the Event's lock held. A set()
        from the handler itself would then wait for that lock forever, and `serve` would never exit.
        """
        threading.Timer(delay, super().signal_handler_interrupt).start()

    def _tell_workers(self) -> None:
        """Send DRAIN_SIGNAL to each running worker, skipping one being respawned or already gone.

        A worker not alive has no pid yet, or one already reaped that the OS may have handed to an
        unrelated process, which SIGUSR1 would kill (its default action): it is never signalled.
        is_alive() reaps an exited worker, so a True answer means the pid is still the worker's.
        """
        for worker in list(self.wrks):
            pid = worker.inner.pid
            if pid is None or not worker.is_alive():
                continue
            with contextlib.suppress(OSError):  # exited since: ProcessLookupError
                os.kill(pid, DRAIN_SIGNAL)


def run(
    target: str,
    host: str,
    port: int,
    workers: int,
    drain_timeout: float,
    drain_delay: float,
    banner: str,
    ready_file: str | None = None,
    log_format: str = "text",
) -> int:
    """Serve the ASGI app `target` until signalled; returns the process exit status.

    `ready_file`, when given, receives {"url", "host", "port", "pid"} as JSON once a worker answers.
    """
    if ready_file:  # a file left by an earlier run must never announce this one before it is up
        pathlib.Path(ready_file).unlink(missing_ok=True)
    # Ignored until a worker's loop handles it: a worker still starting must not die of it.
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)
    with tempfile.TemporaryDirectory(prefix="mini-llm-") as scratch:
        marker = os.path.join(scratch, "draining")
        os.environ["MINI_LLM_DRAIN_MARKER"] = marker
        # Each worker writes its metrics snapshot here, and merges the others' when it answers /metrics.
        metrics_dir = os.path.join(scratch, "metrics")
        os.mkdir(metrics_dir)
        os.environ[METRICS_DIR_ENV] = metrics_dir
        os.environ[SERVER_PID_ENV] = str(os.getpid())
        server = _DrainingGranian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            loop=Loops.uvloop,
            http=HTTPModes.http1,
            websockets=False,
            workers=workers,
            backlog=BACKLOG,
            backpressure=MAX_CONNECTIONS_PER_WORKER,
            http1_settings=HTTP1Settings(keep_alive=True, header_read_timeout=30_000),
            respawn_failed_workers=True,
            workers_kill_timeout=math.ceil(drain_timeout) + DRAIN_GRACE,
            log_access=False,
            log_dictconfig=log_config(log_format),
            drain_marker=marker,
            drain_delay=drain_delay,
            banner=banner,
            ready_file=ready_file,
        )
        try:
            server.serve()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        finally:
            if ready_file:  # a stopped server is not ready
                pathlib.Path(ready_file).unlink(missing_ok=True)
    print(f"{banner} stopped", file=sys.stderr, flush=True)
    return 0
