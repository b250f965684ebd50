"""The `mini-llm` command: serve, mock-upstream, smoke, bench, config check."""

# ruff: noqa: E402 - the GC threshold is set before the imports, on purpose
from __future__ import annotations

import gc

# Set before the imports below: nearly all that start-up allocates lives as long as the process, and
# with CPython's default gen-0 threshold (700) the imports of `serve` and its worker ran ~55 collections
# (~6 ms of cold start) that found ~100 KiB of cycles in all. A forked worker inherits this threshold
# until lifespan start-up sets its own (gateway.app.GC_THRESHOLDS).
_DEFAULT_GC_THRESHOLDS = gc.get_threshold()
gc.set_threshold(50_000, 10, 10)

import argparse
import logging
import logging.config
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TypeAlias

from mini_llm import __version__
from mini_llm._flags import FlagError
from mini_llm._parent_death import tie_to_supervisor
from mini_llm.config import ConfigError, Settings, load_settings

EXIT_FAILED = 1
EXIT_PORT = 1
EXIT_CONFIG = 2
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command its reader left
SMOKE_KEY_ENV = "MINI_LLM_SMOKE_API_KEY"  # the gateway key `smoke` presents
CODES_SERVE = (
    "  0  stopped normally (a drained SIGTERM/SIGINT included)\n"
    "  1  no free port, or a worker that kept crashing\n"
    "  2  usage or configuration error (one line on stderr names the setting)"
)
CODES_MOCK = (
    "  0  stopped normally (SIGTERM/SIGINT included)\n  1  no free port, or a worker that kept crashing\n"
    "  2  usage error"
)
CODES_CONFIG = "  0  the configuration is valid\n  2  usage error, or a bad setting (one line on stderr names it)"
CODES_ALL = (
    "  0    success\n"
    "  1    a run-time failure: a smoke check, a bench request, no free port, a worker that kept crashing\n"
    "  2    usage or configuration error, or a bench server that failed to start (one line on stderr)\n"
    "  130  bench or smoke interrupted (Ctrl-C; the bench's servers are stopped)\n"
    "  141  stdout closed before the output was written (e.g. `| head -1`); nothing more is printed"
)


def _fail(message: str, status: int) -> int:
    print(f"mini-llm: {message}", file=sys.stderr, flush=True)
    return status


def _interruptible() -> None:
    """Make Ctrl-C raise KeyboardInterrupt even in a process started with SIGINT ignored.

    A shell without job control starts background commands with SIGINT ignored (POSIX XCU 2.11,
    "Signals and Error Handling"), exec keeps that, and Python then installs no handler, nor does
    asyncio's runner its cancel: SIGINT would do nothing at all to a command whose documented way
    to stop early is Ctrl-C (and the bench's SIGTERM, re-raised as SIGINT, neither).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _load(args: argparse.Namespace) -> Settings:
    """CLI flags become env vars, so they win over env and file and the workers see them too."""
    overrides = {
        "MINI_LLM_HOST": getattr(args, "host", None),
        "MINI_LLM_PORT": getattr(args, "port", None),
        "MINI_LLM_WORKERS": getattr(args, "workers", None),
        "MINI_LLM_CONFIG": getattr(args, "config", None),
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = str(value)
    settings = load_settings(os.environ)
    if settings.no_extensions:
        os.environ["MINI_LLM_NO_EXTENSIONS"] = "1"
    return settings


def _serve(args: argparse.Namespace) -> int:
    from mini_llm import server

    ready_file = args.ready_file or os.environ.get("MINI_LLM_READY_FILE") or None
    try:
        settings = _load(args)
        open_warning = settings.check_exposure()  # beyond loopback without keys: a ConfigError unless opted out
        from mini_llm import hotpath

        if ready_file:
            server.check_ready_file(ready_file)
    except (ConfigError, FlagError, ValueError) as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    try:
        port = server.pick_port(settings.host, settings.port, settings.port_retries)
    except server.PortUnavailable as exc:
        return _fail(str(exc), EXIT_PORT)
    os.environ["MINI_LLM_PORT"] = str(port)
    logging.config.dictConfig(server.log_config(settings.log_format))
    log = logging.getLogger("mini_llm")
    log.info("mini-llm %s, hot path: %s; %s", __version__, hotpath.IMPLEMENTATION, settings.summary())
    if open_warning:
        log.warning("%s", open_warning)
    if hotpath.FALLBACK_REASON:
        log.warning("hot path: %s", hotpath.FALLBACK_REASON)
    return server.run(
        "mini_llm.gateway.app:app",
        settings.host,
        port,
        settings.workers,
        settings.drain_timeout,
        settings.drain_delay,
        "mini-llm gateway",
        ready_file,
        settings.log_format,
    )


def _mock_upstream(args: argparse.Namespace) -> int:
    from mini_llm import server

    if args.token_delay is not None:
        os.environ["MINI_LLM_MOCK_TOKEN_DELAY"] = str(args.token_delay)
    try:
        if args.ready_file:
            server.check_ready_file(args.ready_file)
    except ValueError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    try:
        port = server.pick_port(args.host, args.port, 0)
    except server.PortUnavailable as exc:
        return _fail(str(exc), EXIT_PORT)
    return server.run(
        "mini_llm.tools.mock_server:app", args.host, port, args.workers, 5, 0, "mini-llm mock upstream", args.ready_file
    )


def _config_check(args: argparse.Namespace) -> int:
    from mini_llm.upstream.choice import explain_client

    try:
        settings = _load(args)
        open_warning = settings.check_exposure()  # the refusal `serve` would stop with
    except (ConfigError, FlagError) as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    print(f"configuration OK: {settings.summary()}\n")
    if open_warning:
        print(f"warning: {open_warning}\n")
    print(settings.describe())
    print("\nupstream clients:")
    for provider in settings.providers.values():
        print(f"  {provider.name:<10} {explain_client(provider, settings, os.environ)}")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from mini_llm.tools import smoke

    try:
        url = smoke.gateway_url(args.url)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    _interruptible()
    try:
        table, passed = smoke.smoke(url, args.model or None, args.timeout, os.environ.get(SMOKE_KEY_ENV) or None)
    except smoke.Unreachable as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("smoke interrupted", EXIT_INTERRUPTED)
    print(table, flush=True)
    return 0 if passed else EXIT_FAILED


def _bench(args: argparse.Namespace) -> int:
    from mini_llm.tools.bench import Options, bench

    options = Options(
        concurrency=args.concurrency,
        duration=args.duration,
        requests=args.requests,
        streams=args.streams,
        stream_tokens=args.stream_tokens,
        workers=args.workers,
        token_delay=args.token_delay,
        no_extensions=args.no_extensions,
    )
    _interruptible()
    try:
        return bench(options, args.json)
    except KeyboardInterrupt:
        return _fail("bench interrupted; its servers are stopped", EXIT_INTERRUPTED)


def _number(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a bad value is a usage error (exit 2) that names the range."""

    def parse(raw: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{raw!r} is not {noun} in {low:g}..{high:g}")
        return value

    return parse


# A string: the class is generic only for type checkers.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _command(commands: Commands, name: str, summary: str, description: str, codes: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its exit codes."""
    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 79),
        epilog=f"exit status:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_serve(commands: Commands) -> None:
    serve = _command(
        commands,
        "serve",
        "serve the gateway (granian, uvloop, HTTP/1.1)",
        "Serve the gateway. Flags win over MINI_LLM_* variables, which win over the config file. "
        "Prints 'mini-llm gateway running on http://HOST:PORT' on stdout once a worker answers; logs go to stderr.",
        CODES_SERVE,
    )
    serve.add_argument("--host", help="bind address (MINI_LLM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (MINI_LLM_PORT, default 3333; 0 = any free port)")
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (MINI_LLM_WORKERS, default 1)")
    serve.add_argument("--config", metavar="FILE", help="TOML config file (MINI_LLM_CONFIG)")
    serve.add_argument(
        "--ready-file",
        metavar="FILE",
        help="once serving, write {url, host, port, pid} as JSON to this path (MINI_LLM_READY_FILE); for supervisors",
    )
    serve.set_defaults(func=_serve)


def _add_mock_upstream(commands: Commands) -> None:
    mock = _command(
        commands,
        "mock-upstream",
        "serve the mock provider as its own HTTP server",
        "Serve the mock provider over HTTP (OpenAI routes under /v1, Anthropic's /v1/messages), "
        "for benchmarks and end-to-end tests of the real network path.",
        CODES_MOCK,
    )
    mock.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    mock.add_argument("--port", type=int, default=9999, help="port (default 9999; 0 = any free port)")
    mock.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    mock.add_argument("--token-delay", type=float, metavar="S", help="seconds between streamed tokens (default 0)")
    mock.add_argument(
        "--ready-file", metavar="FILE", help="once serving, write {url, host, port, pid} as JSON to this path"
    )
    mock.set_defaults(func=_mock_upstream)


def _add_smoke(commands: Commands) -> None:
    smoke = _command(
        commands,
        "smoke",
        "check a running gateway: health, models, chat and messages per model",
        "Check a running gateway: /health (and its hot path), /v1/models, then chat and messages, stream and "
        "non-stream, for each --model, or else for every model /v1/models lists (the aliases, the models "
        "providers declare, and mock). Prints a table with latencies; a model of the other protocol shows n/a. "
        "Requests are tiny (max_tokens 5) but real. A gateway that requires keys (MINI_LLM_API_KEYS) gets the "
        f"one in ${SMOKE_KEY_ENV} (an environment variable, so the key stays out of the process list).",
        "  0  every check passed\n  1  a check failed, or nothing answers at --url\n  2  usage error\n"
        "  130  interrupted (Ctrl-C)",
    )
    smoke.add_argument("--url", default="http://127.0.0.1:3333", help="gateway URL (default http://127.0.0.1:3333)")
    smoke.add_argument("--model", action="append", help="model or alias to check (repeatable)")
    smoke.add_argument(
        "--timeout",
        type=_number(float, 0.001, 3600),
        default=60.0,
        metavar="S",
        help="seconds per request (default 60)",
    )
    smoke.set_defaults(func=_smoke)


def _add_bench(commands: Commands) -> None:
    bench = _command(
        commands,
        "bench",
        "compare a gateway against the mock upstream it proxies",
        "Start a mock upstream and a gateway in front of it (child processes, always stopped), send the same load "
        "straight to the mock and through the gateway (chat completions, then streams; every answer checked), and "
        "print rate and latency p50/p99 side by side with the gateway/direct ratio. Progress goes to stderr.",
        "  0  every request answered correctly\n  1  a request failed (see the errors column)\n"
        "  2  usage error, or a server failed to start\n  130  interrupted (Ctrl-C or SIGTERM); servers stopped",
    )
    bench.add_argument(
        "--concurrency",
        type=_number(int, 1, 4096),
        default=32,
        metavar="N",
        help="concurrent chat requests (default 32)",
    )
    bench.add_argument(
        "--duration", type=_number(float, 0.1, 3600), default=5.0, metavar="S", help="seconds per run (default 5)"
    )
    bench.add_argument(
        "--requests",
        type=_number(int, 1, 10**9),
        metavar="N",
        help="requests (or streams) per run, instead of --duration",
    )
    bench.add_argument(
        "--streams",
        type=_number(int, 0, 4096),
        default=8,
        metavar="N",
        help="concurrent streams (default 8; 0 skips them)",
    )
    bench.add_argument(
        "--stream-tokens",
        type=_number(int, 1, 4096),
        default=50,
        metavar="N",
        help="token events per stream (default 50)",
    )
    bench.add_argument(
        "--workers",
        type=_number(int, 1, 256),
        default=1,
        metavar="N",
        help="workers of the gateway and of the mock (default 1)",
    )
    bench.add_argument(
        "--token-delay",
        type=_number(float, 0, 10),
        default=0.0,
        metavar="S",
        help="the mock's seconds between tokens (default 0)",
    )
    bench.add_argument("--no-extensions", action="store_true", help="run the gateway on the pure-Python hot path")
    bench.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    bench.set_defaults(func=_bench)


def _add_config(commands: Commands) -> None:
    config = _command(commands, "config", "configuration tools", "Configuration tools.", CODES_CONFIG)
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = _command(
        config_commands,
        "check",
        "validate and print the effective configuration (keys masked)",
        "Validate the configuration (environment, then the --config file) and print every effective setting "
        "with its variable, the providers with masked keys (sk-...abcd), the aliases, and the client each provider "
        "uses (aiohttp for one behind an HTTP(S)_PROXY, which is named with its credentials masked).",
        CODES_CONFIG,
    )
    check.add_argument("--config", metavar="FILE", help="TOML config file (MINI_LLM_CONFIG)")
    check.set_defaults(func=_config_check)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mini-llm",
        description="A small, very fast LLM API gateway.",
        epilog=f"exit status (each command's --help has its own list):\n{CODES_ALL}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mini-llm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_serve, _add_mock_upstream, _add_smoke, _add_bench, _add_config):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    tie_to_supervisor()
    try:
        try:
            args = _parser().parse_args(argv)
            if args.func is not _serve:  # the mock server and the bench's load client run for long
                gc.set_threshold(*_DEFAULT_GC_THRESHOLDS)
            status: int = args.func(args)
        finally:  # --help too: a reader gone early (`| head -1`) shows here, not at interpreter exit
            sys.stdout.flush()
    except BrokenPipeError:
        # As the Python docs advise (signal module, "Note on SIGPIPE"): point stdout at devnull so
        # the flush at exit cannot fail again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
