"""The upstreams and the systems under test: how each one is launched."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from . import litellm_venv, nginx
from .procs import Launch

_PASSTHROUGH: Final = Path(__file__).with_name("passthrough.py")


def mock_upstream(port: int, token_delay: float) -> Launch:
    argv = [sys.executable, "-m", "mini_llm.cli", "mock-upstream", "--port", str(port)]
    return Launch("mock-upstream", [*argv, "--token-delay", str(token_delay)], port)


def _gateway(pure: bool) -> Callable[[Path, int, str], Launch]:
    def launch(workdir: Path, port: int, upstream: str) -> Launch:
        env = {
            "OPENAI_BASE_URL": f"{upstream}/v1",
            "OPENAI_API_KEY": "dummy-key",
            "MINI_LLM_NO_EXTENSIONS": "1" if pure else "0",
            "MINI_LLM_PORT_RETRIES": "0",
            "MINI_LLM_DRAIN_TIMEOUT": "1",
        }
        argv = [sys.executable, "-m", "mini_llm.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        hot_path = b'"hot_path":"python"' if pure else b'"hot_path":"cython"'
        return Launch("mini-llm-pure" if pure else "mini-llm", argv, port, env, expect_in_health=hot_path)

    return launch


def _nginx(workdir: Path, port: int, upstream: str) -> Launch:
    return nginx.proxy(workdir / f"nginx-proxy-{port}", port, upstream.removeprefix("http://"))


def _passthrough(workdir: Path, port: int, upstream: str) -> Launch:
    return Launch("aiohttp", [sys.executable, str(_PASSTHROUGH), "--port", str(port), "--upstream", upstream], port)


@dataclass(frozen=True)
class System:
    """A system under test. `per_upstream` starts it for one upstream; `routed` starts it once for all of
    them, a model name per upstream (LiteLLM: its start-up is too slow to repeat)."""

    name: str
    what: str
    per_upstream: Callable[[Path, int, str], Launch] | None = None
    routed: Callable[[Path, int, dict[str, str]], Launch] | None = None


SYSTEMS: Final = {
    system.name: system
    for system in (
        System("direct", "no proxy: the client talks to the upstream (the baseline)"),
        System("nginx", "nginx proxy_pass, upstream keep-alive, proxy_buffering off", per_upstream=_nginx),
        System("mini-llm", "mini-llm serve, compiled (Cython) hot path", per_upstream=_gateway(pure=False)),
        System("mini-llm-pure", "mini-llm serve, MINI_LLM_NO_EXTENSIONS=1", per_upstream=_gateway(pure=True)),
        System("aiohttp", "minimal aiohttp pass-through (passthrough.py)", per_upstream=_passthrough),
        System(
            "litellm",
            f"LiteLLM proxy {litellm_venv.PIN}, 1 uvicorn worker, no database",
            routed=litellm_venv.launch,
        ),
    )
}
