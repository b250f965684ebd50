"""Gateway, AsyncGateway and MockUpstream: `mini-llm` child processes managed from Python."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mini_llm.sdk import _toml
from mini_llm.sdk._drivers import run_async, run_blocking
from mini_llm.sdk._supervisor import Supervisor, url_of

# Strong references: a gateway started and then dropped must still be stopped at exit.
_running: set[_Blocking | _Awaitable] = set()


def _as_json(value: object) -> object:
    """What json.dumps cannot write itself: any other mapping as a dict, any other sequence as a list."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence):
        return list(value)
    raise TypeError(f"an alias target must be a string, a list of strings or a table, not {type(value).__name__}")


@atexit.register
def _stop_all() -> None:
    """A normal interpreter exit stops what is still running (a killed one relies on the kernel, see Child)."""
    for managed in list(_running):
        managed._stop_at_exit()


class _Managed:
    """What every managed process offers: where it answers, its pid, how often it was restarted."""

    def __init__(self, supervisor: Supervisor, restart_on_crash: bool) -> None:
        self._supervisor = supervisor
        self._restart_on_crash = restart_on_crash

    @property
    def url(self) -> str:
        """`http://host:port`, the real port once started (also after a restart)."""
        self._supervisor.running()
        return url_of(self._supervisor.host, self._supervisor.port)

    @property
    def openai_base_url(self) -> str:
        """For `openai.OpenAI(base_url=...)`: the URL with `/v1`."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For `anthropic.Anthropic(base_url=...)`: the bare URL (the SDK appends `/v1/messages`)."""
        return self.url

    @property
    def pid(self) -> int:
        """The current child's process id (a restart changes it)."""
        return self._supervisor.running().pid

    @property
    def restarts(self) -> int:
        """How many times restart_on_crash brought the child back."""
        return self._supervisor.restarts


class _Blocking(_Managed):
    """start() and stop() block the calling thread; restart_on_crash watches from a daemon thread."""

    _watcher: threading.Thread | None = None
    _final_status: int | None = None

    def start(self) -> Self:
        """Start the child and return once it answers /health; raises GatewayStartError otherwise."""
        run_blocking(self._supervisor.start())
        _running.add(self)
        if self._restart_on_crash:
            # NOTE: children it restarts are tied to this thread, so it stops them itself before it ends.
            self._watcher = threading.Thread(target=self._watch, name=f"{self._supervisor.label} watcher", daemon=True)
            self._watcher.start()
        return self

    def _watch(self) -> None:
        self._final_status = run_blocking(self._supervisor.supervise())

    def stop(self) -> int | None:
        """SIGTERM, stop_timeout to drain, then SIGKILL; returns the exit status (None if it was not running)."""
        self._supervisor.stopping = True
        _running.discard(self)
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return run_blocking(self._supervisor.shutdown())
        watcher.join()
        return self._final_status

    def _stop_at_exit(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class _Awaitable(_Managed):
    """The asyncio twin: the same steps, awaited; the child is spawned in the event loop's thread."""

    _watcher: asyncio.Task[int | None] | None = None

    async def start(self) -> Self:
        """Start the child and return once it answers /health; raises GatewayStartError otherwise."""
        await run_async(self._supervisor.start())
        _running.add(self)
        if self._restart_on_crash:
            self._watcher = asyncio.create_task(run_async(self._supervisor.supervise()))
        return self

    async def stop(self) -> int | None:
        """SIGTERM, stop_timeout to drain, then SIGKILL; returns the exit status (None if it was not running)."""
        self._supervisor.stopping = True
        _running.discard(self)
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return await run_async(self._supervisor.shutdown())
        return await watcher

    def _stop_at_exit(self) -> None:
        """The event loop is gone by now, so stop the child the blocking way."""
        self._supervisor.stopping = True
        run_blocking(self._supervisor.shutdown())

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class _GatewayOptions(_Managed):
    """The constructor Gateway and AsyncGateway share."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        env: Mapping[str, str] | None = None,
        config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        aliases: Mapping[str, str | Sequence[str] | Mapping[str, Any]] | None = None,
        workers: int | None = None,
        no_extensions: bool | None = None,
        restart_on_crash: bool = False,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        inherit_env: bool = True,
    ) -> None:
        child_env = dict(env or {})
        if aliases is not None:
            child_env["MINI_LLM_MODEL_ALIASES"] = json.dumps(dict(aliases), default=_as_json)
        if no_extensions is not None:
            child_env["MINI_LLM_NO_EXTENSIONS"] = "1" if no_extensions else "0"
        # A mapping is turned into TOML now, so a value TOML cannot hold fails here, not at start().
        config_text = _toml.dumps(config) if isinstance(config, Mapping) else None
        config_path = None if config is None or isinstance(config, Mapping) else os.fspath(config)

        def args(workdir: Path) -> list[str]:
            argv = ["serve", "--host", host]
            if workers is not None:
                argv += ["--workers", str(workers)]
            if config_text is not None:
                config_file = workdir / "config.toml"
                config_file.write_text(config_text, encoding="utf-8")
                argv += ["--config", str(config_file)]
            elif config_path is not None:
                argv += ["--config", config_path]
            return argv

        supervisor = Supervisor(
            "mini-llm gateway", args, host, port, child_env, startup_timeout, stop_timeout, inherit_env
        )
        super().__init__(supervisor, restart_on_crash)


class Gateway(_GatewayOptions, _Blocking):
    """A `mini-llm serve` child process of this interpreter, for scripts and tests.

    `port=None` picks a free port; `.url` is the real one. `env` is merged over os.environ for the
    child (`inherit_env=False`: over os.environ without MINI_LLM_* settings and built-in provider
    variables such as OPENAI_API_KEY); `config` is a TOML file path or a mapping in the config
    file's shape; `aliases` maps alias -> "provider:model", a list of them (a fallback chain) or
    {"targets": [...], "weights": [...]} (MINI_LLM_MODEL_ALIASES, replacing the file's table). start()
    returns once the child wrote its ready file and answers /health, or raises GatewayStartError
    (exit status and last stderr lines) after `startup_timeout` seconds or when the child exits.

    `restart_on_crash=True` restarts a child that exits unexpectedly, after 0.1 s doubling to 5 s
    (reset once it has run for 10 s), on the same port even when it was picked with port=None, so
    `.url` stays valid; while another process holds that port, the restarts keep retrying.

    No orphans: a normal interpreter exit stops the child (atexit), and on Linux the kernel sends
    it SIGTERM when this process dies, even by SIGKILL. That signal is tied to the *thread* that
    started the gateway, so start it from a thread that outlives it (the main thread, usually).
    """


class AsyncGateway(_GatewayOptions, _Awaitable):
    """The asyncio twin of Gateway, with the same arguments: `await gw.start()`, `await gw.stop()`, `async with`.

    The child is spawned in the event loop's thread, so the loop must run in a thread that outlives
    the gateway (see Gateway about the kernel's parent-death signal).
    """


class MockUpstream(_Blocking):
    """The mock provider as its own HTTP server (`mini-llm mock-upstream`): a stand-in for OpenAI and Anthropic.

    `token_delay` is the pause in seconds before each streamed event (slow or idle streams).
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        token_delay: float = 0.0,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        argv = ["mock-upstream", "--host", host, "--token-delay", repr(token_delay)]
        supervisor = Supervisor("mini-llm mock upstream", lambda _: argv, host, port, {}, startup_timeout, stop_timeout)
        super().__init__(supervisor, restart_on_crash=False)

    def provider_env(self) -> dict[str, str]:
        """Environment pointing a gateway's openai and anthropic providers here (with placeholder keys)."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": "mock-upstream-key",
            "ANTHROPIC_BASE_URL": self.anthropic_base_url,
            "ANTHROPIC_API_KEY": "mock-upstream-key",
        }
