"""`mini-llm bench`: the same load straight at a mock upstream and through a gateway in front of it.

The developer's quick compare. The heavier harness (wrk, nginx, LiteLLM, CPU pinning) is benchmarks/e2e/.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

import aiohttp
import uvloop

from mini_llm.config import without_gateway_settings
from mini_llm.tools.bench.load import Load, drive
from mini_llm.tools.bench.procs import Child, ChildFailed, Children
from mini_llm.tools.bench.report import Progress, document, result, table

EXIT_OK: Final = 0
EXIT_ERRORS: Final = 1
EXIT_START: Final = 2
DIRECT_MODEL: Final = "bench-model"
GATEWAY_ALIAS: Final = "bench"  # -> openai:bench-model, so the gateway rewrites the model as in real use
# Settings of the caller that must not leak into the children: the bench is self-contained.


@dataclass(frozen=True, slots=True)
class Options:
    concurrency: int
    duration: float
    requests: int | None
    streams: int
    stream_tokens: int
    workers: int
    token_delay: float
    no_extensions: bool


def _isolated_env(options: Options) -> dict[str, str]:
    env = without_gateway_settings(os.environ)  # the hot-path switch follows the caller (the pure test run)
    if options.no_extensions:
        env["MINI_LLM_NO_EXTENSIONS"] = "1"
    return env


def _gateway_env(options: Options, mock: Child) -> dict[str, str]:
    env = _isolated_env(options)
    env.update(
        {
            "OPENAI_BASE_URL": f"{mock.url}/v1",
            "OPENAI_API_KEY": "sk-bench-dummy-key",
            "ANTHROPIC_BASE_URL": mock.url,
            "ANTHROPIC_API_KEY": "sk-bench-dummy-key",
            "MINI_LLM_MODEL_ALIASES": json.dumps({GATEWAY_ALIAS: f"openai:{DIRECT_MODEL}"}),
            "MINI_LLM_WORKERS": str(options.workers),
            "MINI_LLM_DRAIN_TIMEOUT": "2",  # stopped mid-load on Ctrl-C: no need to wait for every answer
        }
    )
    return env


async def _hot_path(gateway: Child) -> str:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/health") as response:
        payload = await response.json()
    return str(payload.get("hot_path", "?"))


async def _run_all(
    options: Options, mock: Child, gateway: Child, progress: Progress
) -> tuple[str, list[dict[str, Any]]]:
    """Chat, then streams; each straight at the mock, then through the gateway, with the same load."""
    scenarios = [("chat", Load(options.concurrency, options.duration, options.requests, 0))]
    if options.streams:
        load = Load(options.streams, options.duration, options.requests, options.stream_tokens)
        scenarios.append(("stream", load))
    results = []
    for scenario, load in scenarios:
        for target, url, model in (
            ("direct", mock.url, DIRECT_MODEL),
            ("gateway", gateway.url, GATEWAY_ALIAS),
        ):
            label = f"{scenario} {target}"
            tally = await drive(
                url + "/v1/chat/completions", model, load, functools.partial(progress.update, label, load)
            )
            progress.done(label, tally)
            results.append(result(scenario, target, tally))
    return await _hot_path(gateway), results


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the bench as Ctrl-C does, children stopped on the way out. Re-raised as SIGINT
    because the event loop's runner turns only that one into a clean cancel and KeyboardInterrupt."""
    signal.raise_signal(signal.SIGINT)


async def _bench(options: Options, progress: Progress) -> dict[str, Any]:
    """Everything runs inside the event loop, so Ctrl-C is one clean cancel wherever it lands."""
    with tempfile.TemporaryDirectory(prefix="mini-llm-bench-") as scratch, Children(Path(scratch)) as children:
        args = ["mock-upstream", "--port", "0", "--workers", str(options.workers)]
        mock = await children.start(
            "mock upstream", [*args, "--token-delay", str(options.token_delay)], _isolated_env(options)
        )
        progress.note(f"mock upstream on {mock.url} (pid {mock.pid})")
        gateway = await children.start("gateway", ["serve", "--port", "0"], _gateway_env(options, mock))
        progress.note(f"gateway on {gateway.url} (pid {gateway.pid})")
        hot_path, results = await _run_all(options, mock, gateway, progress)
    processes = {
        name: {"url": child.url, "pid": child.pid} for name, child in (("mock_upstream", mock), ("gateway", gateway))
    }
    return document(dataclasses.asdict(options), hot_path, processes, results)


def bench(options: Options, as_json: bool) -> int:
    """Start the children, drive the load, stop the children, print; returns the exit status."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        doc = uvloop.run(_bench(options, Progress(sys.stderr)))
    except ChildFailed as exc:
        print(f"mini-llm: {exc}", file=sys.stderr, flush=True)
        return EXIT_START
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps(doc, indent=2) if as_json else table(doc), flush=True)
    return EXIT_ERRORS if any(row["errors"] for row in doc["results"]) else EXIT_OK
