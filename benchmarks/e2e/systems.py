"""The upstreams and the systems under test: how each one is launched, and where its clients send."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from . import litellm_venv, nginx, payloads, tensorzero_venv
from .procs import Launch

_HERE: Final = Path(__file__).parent
CHAT_PATH: Final = "/v1/chat/completions"


def mock_upstream(port: int, token_delay: float) -> Launch:
    argv = [sys.executable, "-m", "mini_llm.cli", "mock-upstream", "--port", str(port)]
    return Launch("mock-upstream", [*argv, "--token-delay", str(token_delay)], port)


def raw_upstream(workdir: Path, port: int, token_delay: float = 0.0) -> Launch:
    """The raw asyncio.Protocol upstream, answering the mock's own canned answers."""
    json_body, sse_body = workdir / "raw-answer.json", workdir / "raw-answer.sse"
    if not json_body.exists():
        json_body.write_bytes(payloads.canned_json())
        sse_body.write_bytes(payloads.canned_sse())
    argv = [sys.executable, str(_HERE / "raw_upstream.py"), "--port", str(port)]
    argv += ["--json", str(json_body), "--sse", str(sse_body), "--token-delay", str(token_delay)]
    return Launch("raw-upstream", argv, port)


def gateway(name: str, client: str, pure: bool = False, workers: int = 1) -> Callable[[Path, int, str], Launch]:
    """mini-llm serve with upstream client `client` (MINI_LLM_UPSTREAM_CLIENT) on either hot path."""

    def launch(workdir: Path, port: int, upstream: str) -> Launch:
        env = {
            "OPENAI_BASE_URL": f"{upstream}/v1",
            "OPENAI_API_KEY": "dummy-key",
            "MINI_LLM_NO_EXTENSIONS": "1" if pure else "0",
            "MINI_LLM_UPSTREAM_CLIENT": client,
            # No cap on upstream connections, as in the other systems (the idle run holds 10,000 streams).
            "MINI_LLM_UPSTREAM_POOL_LIMIT": "65535",
            "MINI_LLM_PORT_RETRIES": "0",
            "MINI_LLM_DRAIN_TIMEOUT": "1",
        }
        argv = [sys.executable, "-m", "mini_llm.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        hot_path = b'"hot_path":"python"' if pure else b'"hot_path":"cython"'
        expected = (hot_path, b'"openai":"%s"' % client.encode())  # /health's upstream_clients
        return Launch(name, [*argv, "--workers", str(workers)], port, env, expect_in_health=expected)

    return launch


def _nginx(workdir: Path, port: int, upstream: str) -> Launch:
    return nginx.proxy(workdir / f"nginx-proxy-{port}", port, upstream.removeprefix("http://"))


def _passthrough(workdir: Path, port: int, upstream: str) -> Launch:
    argv = [sys.executable, str(_HERE / "passthrough.py"), "--port", str(port), "--upstream", upstream]
    return Launch("aiohttp", argv, port)


@dataclass(frozen=True)
class System:
    """A system under test. `per_upstream` starts it for one upstream; `routed` starts it once for all of
    them, a model name per upstream (LiteLLM: its start-up is too slow to repeat). Clients POST to `path`
    with `model` (None: the model each upstream role is routed by, see run.model_for)."""

    name: str
    what: str
    per_upstream: Callable[[Path, int, str], Launch] | None = None
    routed: Callable[[Path, int, dict[str, str]], Launch] | None = None
    path: str = CHAT_PATH
    model: str | None = payloads.MODEL


SYSTEMS: Final = {
    system.name: system
    for system in (
        System("direct", "no proxy: the client talks to the upstream (the baseline)"),
        System("nginx", "nginx proxy_pass, upstream keep-alive, proxy_buffering off", per_upstream=_nginx),
        System(
            "mini-llm",
            "mini-llm serve, compiled (Cython) hot path, its own upstream client",
            per_upstream=gateway("mini-llm", "fast"),
        ),
        System(
            "mini-llm-aiohttp",
            "mini-llm serve, compiled hot path, MINI_LLM_UPSTREAM_CLIENT=aiohttp (the client before issue 10)",
            per_upstream=gateway("mini-llm-aiohttp", "aiohttp"),
        ),
        System(
            "mini-llm-pure",
            "mini-llm serve, MINI_LLM_NO_EXTENSIONS=1, its own upstream client",
            per_upstream=gateway("mini-llm-pure", "fast", pure=True),
        ),
        System("aiohttp", "minimal aiohttp pass-through (passthrough.py)", per_upstream=_passthrough),
        System(
            "tensorzero",
            f"TensorZero {tensorzero_venv.PIN} gateway (Rust, embedded in its wheel), observability off",
            per_upstream=tensorzero_venv.launch,
            path=tensorzero_venv.PATH,
            model=tensorzero_venv.MODEL,
        ),
        System(
            "litellm",
            f"LiteLLM proxy {litellm_venv.PIN}, 1 uvicorn worker, no database",
            routed=litellm_venv.launch,
            model=None,
        ),
    )
}
