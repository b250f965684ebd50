"""Runs `mini-llm serve` as a real subprocess on a free port and captures its output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import IO

from mini_llm.config import without_gateway_settings

BANNER = re.compile(r"mini-llm gateway running on (http://[0-9.]+:[0-9]+)$")


# The switches a run of the suite sets for every gateway it starts (Makefile: pytest-pure, pytest-aiohttp).
MATRIX_SETTINGS = ("MINI_LLM_UPSTREAM_CLIENT",)


def matrix_environ() -> dict[str, str]:
    """This environment minus gateway settings, but with the run's matrix switches: a pure run runs
    pure gateways (MINI_LLM_NO_EXTENSIONS stays anyway), an aiohttp run gateways on aiohttp."""
    env = without_gateway_settings(os.environ)
    env.update({name: os.environ[name] for name in MATRIX_SETTINGS if name in os.environ})
    return env


class GatewayProcess:
    """A gateway child process; `log` holds everything it wrote to stdout and stderr."""

    def __init__(self, env: Mapping[str, str], args: tuple[str, ...] = ()) -> None:
        self.env = matrix_environ()
        self.env.update(env)
        self.args = args
        self.url = ""
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._banner = threading.Event()
        self._readers: list[threading.Thread] = []

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mini_llm.cli", "serve", "--port", "0", *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(pipe,), daemon=True)
            for pipe in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()
        if not self._banner.wait(timeout):
            self.stop()
            raise AssertionError(f"gateway did not start:\n{self.log}")
        self.wait_healthy(timeout)
        return self

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            match = BANNER.match(line.rstrip("\n"))
            if match:
                self.url = match.group(1)
                self._banner.set()

    def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        """The access line is written after the response ends, so give the pipe a moment."""
        deadline = time.monotonic() + timeout
        while text not in self.log and time.monotonic() < deadline:
            time.sleep(0.02)
        return text in self.log

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"gateway never became healthy:\n{self.log}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._close_pipes()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_pipes()
        return self.proc.returncode

    def _close_pipes(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            return
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run `mini-llm ARGS` to completion (for commands that exit, or must fail at start-up)."""
    clean = matrix_environ()
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mini_llm.cli", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(text)
    return handle.name
