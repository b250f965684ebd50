"""The `mini-llm` command: serve, mock-upstream, smoke, config check."""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from collections.abc import Sequence

from mini_llm import __version__
from mini_llm._flags import FlagError
from mini_llm.config import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_PORT = 1


def _fail(message: str, status: int) -> int:
    print(f"mini-llm: {message}", file=sys.stderr, flush=True)
    return status


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

    try:
        settings = _load(args)
        from mini_llm import hotpath
    except (ConfigError, FlagError) as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    try:
        port = server.pick_port(settings.host, settings.port, settings.port_retries)
    except server.PortUnavailable as exc:
        return _fail(str(exc), EXIT_PORT)
    os.environ["MINI_LLM_PORT"] = str(port)
    logging.config.dictConfig(server.LOG_CONFIG)
    log = logging.getLogger("mini_llm")
    log.info("mini-llm %s, hot path: %s; %s", __version__, hotpath.IMPLEMENTATION, settings.summary())
    if hotpath.FALLBACK_REASON:
        log.warning("hot path: %s", hotpath.FALLBACK_REASON)
    return server.run(
        "mini_llm.app:app",
        settings.host,
        port,
        settings.workers,
        settings.drain_timeout,
        settings.drain_delay,
        "mini-llm gateway",
        args.ready_file or os.environ.get("MINI_LLM_READY_FILE") or None,
    )


def _mock_upstream(args: argparse.Namespace) -> int:
    from mini_llm import server

    if args.token_delay is not None:
        os.environ["MINI_LLM_MOCK_TOKEN_DELAY"] = str(args.token_delay)
    try:
        port = server.pick_port(args.host, args.port, 0)
    except server.PortUnavailable as exc:
        return _fail(str(exc), EXIT_PORT)
    return server.run(
        "mini_llm.mock_upstream:app", args.host, port, args.workers, 5, 0, "mini-llm mock upstream", args.ready_file
    )


def _config_check(args: argparse.Namespace) -> int:
    try:
        settings = _load(args)
    except (ConfigError, FlagError) as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    print(f"configuration OK ({settings.config_file or 'environment only'})")
    print(settings.summary())
    for alias, (provider, model) in settings.aliases.items():
        print(f"alias {alias} -> {provider}:{model}")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from mini_llm.smoke import smoke

    table, passed = smoke(args.url, args.model or None, args.timeout)
    print(table, flush=True)
    return 0 if passed else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mini-llm", description="A small, very fast LLM API gateway.")
    parser.add_argument("--version", action="version", version=f"mini-llm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway (granian, uvloop, HTTP/1.1)")
    serve.add_argument("--host", help="bind address (MINI_LLM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (MINI_LLM_PORT, default 3333; 0 = any free port)")
    serve.add_argument("--workers", type=int, help="worker processes (MINI_LLM_WORKERS, default 1)")
    serve.add_argument("--config", help="TOML config file (MINI_LLM_CONFIG)")
    serve.add_argument(
        "--ready-file",
        help="once serving, write {url, host, port, pid} as JSON to this path (MINI_LLM_READY_FILE); for supervisors",
    )
    serve.set_defaults(func=_serve)

    mock = commands.add_parser("mock-upstream", help="serve the mock provider as its own HTTP server")
    mock.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    mock.add_argument("--port", type=int, default=9999, help="port (default 9999; 0 = any free port)")
    mock.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    mock.add_argument("--token-delay", type=float, help="seconds between streamed tokens (default 0)")
    mock.add_argument("--ready-file", help="once serving, write {url, host, port, pid} as JSON to this path")
    mock.set_defaults(func=_mock_upstream)

    check_run = commands.add_parser(
        "smoke", help="check a running gateway: health, models, chat and messages (stream and not) per model"
    )
    check_run.add_argument("--url", default="http://127.0.0.1:3333", help="gateway URL (default http://127.0.0.1:3333)")
    check_run.add_argument(
        "--model", action="append", help="model or alias to check (repeatable; default: every model /v1/models lists)"
    )
    check_run.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    check_run.set_defaults(func=_smoke)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate and summarise the configuration (keys masked)")
    check.add_argument("--config", help="TOML config file (MINI_LLM_CONFIG)")
    check.set_defaults(func=_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
