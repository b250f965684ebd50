"""Runs every system under test, one after the other, against the same upstreams, and collects the results."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Final

from . import idle, litellm_venv, machine, payloads, procstat, streams, summary, wrk
from .procs import Child, StartError, free_port, http_get, running
from .systems import CHAT_PATH, System, gateway, mock_upstream, raw_upstream, table

Tally = Callable[[Any], int]  # what a load phase completed: wrk requests or streams
AUTH: Final = litellm_venv.MASTER_KEY  # every client sends it; only LiteLLM checks it
METRICS_PATH: Final = "/metrics"
IDLE_TOKEN_DELAY: Final = 600.0  # the idle upstream sends headers, then nothing while we measure
# Upstream role -> the load phases run through each system against it: wrk at 64 and 1 connections,
# `concurrency` streams, and `ttfb_concurrency` streams (a light load, so TTFB is not queueing).
SESSIONS: Final = {
    "mock": ("wrk64", "wrk1", "streams"),
    "mock-delay": ("streams", "ttfb"),
    "raw": ("wrk64", "wrk1", "streams"),
}
SCALING_WORKERS: Final = (1, 2)
FAST_PATH_PHASES: Final = ("wrk64", "streams")


@dataclass(frozen=True)
class Options:
    systems: list[str]
    duration: int
    warmup: int
    concurrency: int
    ttfb_concurrency: int
    token_delay: float
    idle: list[int]
    idle_system: str
    scaling: bool
    cpus: list[int]  # every CPU the run may use
    sut_cpu: int | None
    load_cpu: int | None
    before: str  # the git revision mini-llm-before runs
    rounds: int  # of the fast path's alternating before-and-after load; 0 skips it


@dataclass(frozen=True)
class Upstream:
    """An upstream role: its base URL and the processes serving it."""

    url: str
    pids: Callable[[], list[int]]
    cold_start_s: float


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def model_for(system: System, role: str) -> str:
    """The model a system's clients send for `role`: its own, or for a routed system (LiteLLM) the name it
    maps to that role's upstream."""
    if system.model is not None:
        return system.model
    return payloads.MODEL if role == "mock" else f"{payloads.MODEL}-{role}"


def _load_cpu_seconds() -> float:
    """CPU time of the load side: this process (the stream client) and its waited-for children (wrk)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _core(cpu: int | None) -> dict[str, float]:
    return procstat.core_seconds(cpu) if cpu is not None else {}


def interference(before: dict[str, float], after: dict[str, float], sut_cpu_s: float, wall: float) -> dict[str, float]:
    """What the system's core did besides the system, in cores: other processes' user and system time
    (another job sharing the core inflates every CPU figure), steal (the hypervisor's), softirq."""
    if not before:
        return {}
    delta = {kind: after[kind] - before[kind] for kind in before}
    busy = delta["user"] + delta["nice"] + delta["system"]
    return {
        "sut_core_other": max(0.0, busy - sut_cpu_s) / wall,
        "sut_core_steal": delta["steal"] / wall,
        "sut_core_softirq": delta["softirq"] / wall,
    }


def _measured(run: Callable[[], Any], count: Tally, sut: list[int], up: list[int], cpu: int | None) -> dict[str, Any]:
    """Run one load phase and add the CPU time the system, the upstream and the load side spent on it."""
    core = _core(cpu)
    before = procstat.cpu_seconds(sut), procstat.cpu_seconds(up), _load_cpu_seconds(), time.perf_counter()
    result = run()
    after = procstat.cpu_seconds(sut), procstat.cpu_seconds(up), _load_cpu_seconds(), time.perf_counter()
    sut_cpu, up_cpu, load_cpu, wall = (b - a for a, b in zip(before, after, strict=True))
    done = count(result)
    return {
        **asdict(result),
        "wall_s": wall,
        "sut_cpu_s": sut_cpu,
        "sut_cpu_ms_per_request": sut_cpu * 1000 / done if sut and done else None,
        "sut_core_use": sut_cpu / wall if sut else None,
        "upstream_cpu_ms_per_request": up_cpu * 1000 / done if done else None,
        "upstream_core_use": up_cpu / wall,
        "load_core_use": load_cpu / wall,
        **(interference(core, _core(cpu), sut_cpu, wall) if sut else {}),
    }


def _load(phase: str, url: str, model: str, concurrency: int, seconds: int) -> tuple[Callable[[], Any], Tally]:
    """The load of a phase (wrk64 and wrk1: connections; streams and ttfb: `concurrency` streams at once),
    and how to count what it completed."""
    if phase.startswith("wrk"):
        body = payloads.request_body(False, model)
        return (lambda: wrk.run(url, body, AUTH, int(phase[3:]), seconds)), (lambda r: r.requests)
    body = payloads.request_body(True, model)
    return (lambda: streams.run(url, body, AUTH, concurrency, seconds)), (lambda r: r.completed)


def _describe(phase: str, result: dict[str, Any]) -> str:
    if phase.startswith("wrk"):
        cpu = result["sut_cpu_ms_per_request"]
        return f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, errors {result['errors']}" + (
            f", {cpu:.3f} ms CPU/req" if cpu else ""
        )
    return (
        f"{result['concurrency']} at once: {result['streams_per_s']:,.0f} streams/s,"
        f" TTFB p50 {result['ttfb_p50_ms']:.2f} ms, whole {result['whole']}/{result['completed']}"
    )


def _session(
    target: str, sut: list[int], up: list[int], role: str, model: str, opts: Options, cpu: int | None
) -> dict[str, Any]:
    """The role's phases through one system; the first phase's load, run briefly first, warms it up."""
    warm, _ = _load(SESSIONS[role][0], target, model, opts.ttfb_concurrency, opts.warmup)
    warm()
    phases: dict[str, Any] = {}
    for phase in SESSIONS[role]:
        concurrency = opts.ttfb_concurrency if phase == "ttfb" else opts.concurrency
        load, count = _load(phase, target, model, concurrency, opts.duration)
        phases[phase] = _measured(load, count, sut, up, cpu)
        log(f"  {role} {phase}: {_describe(phase, phases[phase])}")
    return phases


def _run_system(system: System, upstreams: dict[str, Upstream], workdir: Path, opts: Options) -> dict[str, Any]:
    record: dict[str, Any] = {"what": system.what, "cold_start_s": [], "peak_rss_kb": 0, "sessions": {}, "errors": []}

    def session(child: Child | None, role: str) -> None:
        url = child.url if child else upstreams[role].url
        sut = child.pids() if child else []
        target = url + (system.path if child else CHAT_PATH)
        model = model_for(system, role)
        if child:
            check_before_load(system, child, target, model)
        record["sessions"][role] = _session(target, sut, upstreams[role].pids(), role, model, opts, opts.sut_cpu)
        record["peak_rss_kb"] = max(record["peak_rss_kb"], procstat.memory_kb(sut, "VmHWM"))

    try:
        if system.routed is not None:
            litellm_venv.ensure(workdir / "litellm-install.log")
            routes = {model_for(system, role): up.url for role, up in upstreams.items()}
            with running(system.routed(workdir, free_port(), routes), opts.sut_cpu, workdir) as child:
                record["cold_start_s"].append(child.cold_start_s)
                log(f"  started in {child.cold_start_s:.2f} s")
                for role in upstreams:
                    session(child, role)
            return record
        for role, upstream in upstreams.items():
            if system.per_upstream is None:
                session(None, role)
                continue
            with running(system.per_upstream(workdir, free_port(), upstream.url), opts.sut_cpu, workdir) as child:
                record["cold_start_s"].append(child.cold_start_s)
                session(child, role)
    except (StartError, RuntimeError, OSError) as exc:
        log(f"  {system.name} failed: {exc}")
        record["errors"].append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return record


def post(target: str, model: str = payloads.MODEL) -> Message:
    """One non-stream request; its response headers (an error status raises urllib's HTTPError, an OSError)."""
    request = urllib.request.Request(
        target,
        data=payloads.request_body(False, model),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {AUTH}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        headers: Message = response.headers
        return headers


def expect_first_attempt(headers: Message, first: str) -> None:
    """The answer came from the chain's `first` target at its first attempt (x-mini-llm-target and
    x-mini-llm-attempts): otherwise the run would time a fallback, not the fast path it is meant to show."""
    got = headers.get("x-mini-llm-target"), headers.get("x-mini-llm-attempts")
    if got != (first, "1"):
        raise RuntimeError(f"answered by {got[0]} after {got[1]} attempt(s), not by {first} at once")


def expect_metrics(child: Child, on: bool) -> None:
    """GET /metrics answers 200 with the metrics on and 404 with them off (MINI_LLM_METRICS): otherwise the
    metrics cost would compare the gateway with itself."""
    answer = http_get(child.port, METRICS_PATH, timeout=10.0)
    status, wanted = (answer[0] if answer else None), (200 if on else 404)
    if status != wanted:
        raise RuntimeError(f"{child.launch.name}: GET {METRICS_PATH} answered {status}, not {wanted}")


def check_before_load(system: System, child: Child, target: str, model: str) -> None:
    """What a system must show before it is loaded: its chain's first target answers, its metrics are on or off."""
    if system.first_target:
        expect_first_attempt(post(target, model), system.first_target)
    if system.metrics is not None:
        expect_metrics(child, system.metrics)


def _idle(workdir: Path, opts: Options) -> list[dict[str, Any]]:
    system = table(opts.before)[opts.idle_system]
    if system.per_upstream is None:
        return []
    results = []
    with running(mock_upstream(free_port(), IDLE_TOKEN_DELAY), opts.load_cpu, workdir) as upstream:
        for count in opts.idle:
            with running(system.per_upstream(workdir, free_port(), upstream.url), opts.sut_cpu, workdir) as child:
                post(f"{child.url}{CHAT_PATH}")  # warm
                body = payloads.request_body(True, max_tokens=1)
                result = idle.measure(f"{child.url}{CHAT_PATH}", body, AUTH, count, child.pids, 30 + count / 100)
            log(
                f"idle {system.name}: {result.opened}/{result.streams} open, {result.kb_per_stream:.1f} KB per stream"
                + (f" ({result.note})" if result.note else "")
            )
            results.append({"system": system.name, **asdict(result)})
    return results


def _scaling(workdir: Path, raw: Upstream, opts: Options) -> list[dict[str, Any]]:
    """mini-llm with 1 and with 2 workers, free to use every core (the load stays pinned), wrk at 64
    connections against the raw upstream: how far a second worker takes it."""
    every = ",".join(map(str, opts.cpus))
    results = []
    for workers in SCALING_WORKERS:
        launch = gateway("mini-llm", "fast", workers=workers)(workdir, free_port(), raw.url)
        with running(launch, every, workdir) as child:
            target = f"{child.url}{CHAT_PATH}"
            warm, _ = _load("wrk64", target, payloads.MODEL, 0, opts.warmup)
            warm()
            load, count = _load("wrk64", target, payloads.MODEL, 0, opts.duration)
            result = _measured(load, count, child.pids(), raw.pids(), None)
        log(f"scaling mini-llm, {workers} worker(s), unpinned: {_describe('wrk64', result)}")
        results.append({"workers": workers, "cpus": every, **result})
    return results


def _fast_path(systems: dict[str, System], raw: Upstream, workdir: Path, opts: Options) -> list[dict[str, Any]]:
    """Issue 11's before and after, and issue 12's metrics on and off: the gateways of
    summary.FAST_PATH_SYSTEMS that the run has, all started at once on the raw upstream and pinned alike;
    each round loads one after the other, the order rotating, so a shared machine's drift lands on each
    alike. The summary pairs them round by round."""
    names = [name for name in summary.FAST_PATH_SYSTEMS if name in opts.systems]
    if not summary.compared(names) or opts.rounds < 1:
        return []
    seconds = max(1, opts.duration // 2)
    rounds: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        children: dict[str, Child] = {}
        for name in names:
            launch = systems[name].per_upstream
            assert launch is not None, name  # every fast-path system is a mini-llm serve
            children[name] = stack.enter_context(running(launch(workdir, free_port(), raw.url), opts.sut_cpu, workdir))
        targets = {name: children[name].url + systems[name].path for name in names}
        models = {name: model_for(systems[name], "raw") for name in names}
        for name in names:
            check_before_load(systems[name], children[name], targets[name], models[name])
            warm, _ = _load("wrk64", targets[name], models[name], opts.ttfb_concurrency, opts.warmup)
            warm()
        for index in range(opts.rounds):
            turn = index % len(names)
            measured: dict[str, Any] = {}
            for name in names[turn:] + names[:turn]:
                measured[name] = {}
                for phase in FAST_PATH_PHASES:
                    load, count = _load(phase, targets[name], models[name], opts.concurrency, seconds)
                    measured[name][phase] = _measured(load, count, children[name].pids(), raw.pids(), opts.sut_cpu)
            rounds.append(measured)
            log(
                f"fast path round {index + 1}/{opts.rounds}: "
                + "; ".join(f"{name} {_describe('wrk64', measured[name]['wrk64'])}" for name in names)
            )
    return rounds


@contextlib.contextmanager
def _upstreams(workdir: Path, opts: Options) -> Iterator[dict[str, Upstream]]:
    with contextlib.ExitStack() as stack:
        roles: dict[str, Upstream] = {}
        launches = {
            "mock": mock_upstream(free_port(), 0.0),
            "mock-delay": mock_upstream(free_port(), opts.token_delay),
            "raw": raw_upstream(workdir, free_port()),
        }
        for role, launch in launches.items():
            child = stack.enter_context(running(launch, opts.load_cpu, workdir))
            roles[role] = Upstream(child.url, child.pids, child.cold_start_s)
        yield roles


def run(opts: Options) -> dict[str, Any]:
    if opts.load_cpu is not None:
        os.sched_setaffinity(0, {opts.load_cpu})  # the client, wrk and the upstreams inherit this core
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # for idle streams; children inherit it
    load_average = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {
        "options": asdict(opts),
        "systems": {},
        "fast_path_rounds": [],
        "idle": [],
        "scaling": [],
    }
    with tempfile.TemporaryDirectory(prefix="mini-llm-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx workers run as an unprivileged user when we are root
        with _upstreams(workdir, opts) as upstreams:
            results["upstreams"] = {
                role: {"url": up.url, "cold_start_s": up.cold_start_s} for role, up in upstreams.items()
            }
            systems = table(opts.before)
            for name in opts.systems:
                log(f"{name}: {systems[name].what}")
                results["systems"][name] = _run_system(systems[name], upstreams, workdir, opts)
            try:
                results["fast_path_rounds"] = _fast_path(systems, upstreams["raw"], workdir, opts)
            except (StartError, RuntimeError, OSError) as exc:
                log(f"fast path failed: {exc}")
                results["fast_path_error"] = str(exc).splitlines()[0]
            if opts.scaling:
                try:
                    results["scaling"] = _scaling(workdir, upstreams["raw"], opts)
                except (StartError, RuntimeError, OSError) as exc:
                    log(f"scaling failed: {exc}")
                    results["scaling_error"] = str(exc).splitlines()[0]
        if opts.idle:
            try:
                results["idle"] = _idle(workdir, opts)
            except (StartError, RuntimeError, OSError) as exc:
                log(f"idle streams failed: {exc}")
                results["idle_error"] = str(exc).splitlines()[0]
    results["machine"] = machine.describe(load_average)  # after the run: LiteLLM may have been installed by it
    return results
