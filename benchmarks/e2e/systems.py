"""The upstreams and the systems under test: how each one is launched, and where its clients send."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from . import before_venv, litellm_venv, nginx, payloads, tensorzero_venv
from .procs import Launch

_HERE: Final = Path(__file__).parent
CHAT_PATH: Final = "/v1/chat/completions"
CHAIN_MODEL: Final = "bench"  # what mini-llm-chain's clients send: an alias of two targets on one upstream
Interpreter = Callable[[Path], str]  # the Python that runs a gateway, given the run's directory (for a build log)


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


def gateway(
    name: str,
    client: str,
    pure: bool = False,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    python: Interpreter | None = None,
) -> Callable[[Path, int, str], Launch]:
    """mini-llm serve with upstream client `client` (MINI_LLM_UPSTREAM_CLIENT) on either hot path, `env` on
    top; run by this harness's Python (the working tree) unless `python` names another build."""

    def launch(workdir: Path, port: int, upstream: str) -> Launch:
        settings = {
            "OPENAI_BASE_URL": f"{upstream}/v1",
            "OPENAI_API_KEY": "dummy-key",
            "MINI_LLM_NO_EXTENSIONS": "1" if pure else "0",
            "MINI_LLM_UPSTREAM_CLIENT": client,
            # No cap on upstream connections, as in the other systems (the idle run holds 10,000 streams).
            "MINI_LLM_UPSTREAM_POOL_LIMIT": "65535",
            "MINI_LLM_PORT_RETRIES": "0",
            "MINI_LLM_DRAIN_TIMEOUT": "1",
            **(env or {}),
        }
        interpreter = python(workdir) if python else sys.executable
        argv = [interpreter, "-m", "mini_llm.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        hot_path = b'"hot_path":"python"' if pure else b'"hot_path":"cython"'
        expected = (hot_path, b'"openai":"%s"' % client.encode())  # /health's upstream_clients
        return Launch(name, [*argv, "--workers", str(workers)], port, settings, expect_in_health=expected)

    return launch


def chain_aliases(model: str = payloads.MODEL) -> str:
    """MINI_LLM_MODEL_ALIASES for mini-llm-chain: CHAIN_MODEL falls back from `model` to `model`-b, both on
    the one OpenAI upstream, so the first target always answers and only the chain's bookkeeping is added."""
    return json.dumps({CHAIN_MODEL: [f"openai:{model}", f"openai:{model}-b"]})


def at_revision(revision: str) -> Interpreter:
    """The Python of the gateway built at `revision` (built on first use, in the cache, never in the run)."""

    def python(workdir: Path) -> str:
        _, interpreter = before_venv.ensure(revision, workdir / "mini-llm-before-install.log")
        return str(interpreter)

    return python


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
    first_target: str | None = None  # checked before the load: this `provider:model` answers at once
    metrics: bool | None = None  # checked before the load: GET /metrics answers (True) or is off, a 404 (False)


def table(before: str = before_venv.DEFAULT) -> dict[str, System]:
    """Every system by name, in the default order; mini-llm-before is the gateway at git revision `before`."""
    systems = (
        System("direct", "no proxy: the client talks to the upstream (the baseline)"),
        System("nginx", "nginx proxy_pass, upstream keep-alive, proxy_buffering off", per_upstream=_nginx),
        System(
            "mini-llm",
            "mini-llm serve, compiled (Cython) hot path, its own upstream client",
            per_upstream=gateway("mini-llm", "fast"),
            metrics=True,
        ),
        System(
            "mini-llm-before",
            f"mini-llm at git revision {before} (its own venv and pins), as mini-llm otherwise",
            per_upstream=gateway("mini-llm-before", "fast", python=at_revision(before)),
        ),
        System(
            "mini-llm-chain",
            f"mini-llm, clients send model {CHAIN_MODEL!r}: an alias of 2 targets whose first answers",
            per_upstream=gateway("mini-llm-chain", "fast", env={"MINI_LLM_MODEL_ALIASES": chain_aliases()}),
            model=CHAIN_MODEL,
            first_target=f"openai:{payloads.MODEL}",
        ),
        System(
            "mini-llm-nometrics",
            "mini-llm, MINI_LLM_METRICS=off: what recording the metrics costs",
            per_upstream=gateway("mini-llm-nometrics", "fast", env={"MINI_LLM_METRICS": "off"}),
            metrics=False,
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
    return {system.name: system for system in systems}


NAMES: Final = tuple(table())
