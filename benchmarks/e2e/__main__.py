"""`python -m benchmarks.e2e`: run the end-to-end load benchmark and write results/latest.{md,json}."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import before_venv, report
from .procs import StartError
from .run import Options, log, run
from .systems import NAMES

_DEFAULT_OUT = Path(__file__).with_name("results")


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip() and int(part)]


def parse_options(argv: list[str] | None) -> tuple[Options, Path]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 s phases, no LiteLLM (slow to start), 1,000 idle streams",
    )
    parser.add_argument("--systems", help=f"comma-separated subset of: {', '.join(NAMES)} (default: all)")
    parser.add_argument("--duration", type=int, help="seconds per load phase (default 6, --quick 1)")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent streams (default 200)")
    parser.add_argument(
        "--ttfb-concurrency", type=int, default=20, help="concurrent streams for the TTFB run (default 20)"
    )
    parser.add_argument("--token-delay", type=float, default=0.005, help="seconds between events (default 0.005)")
    parser.add_argument("--idle", help="idle stream counts, comma-separated, 0 to skip (default 1000,10000)")
    parser.add_argument("--idle-system", default="mini-llm", choices=list(NAMES), help="default mini-llm")
    parser.add_argument(
        "--before",
        default=os.environ.get(before_venv.VARIABLE) or before_venv.DEFAULT,
        metavar="REV",
        help=f"git revision mini-llm-before runs (default ${before_venv.VARIABLE}, else {before_venv.DEFAULT})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds of the fast path's alternating load (before and after, metrics on and off), 0 to skip"
        " (default 5, --quick 3)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the --workers 2 vs 1 worker run")
    parser.add_argument("--out", type=Path, default=_DEFAULT_OUT, help=f"output directory (default {_DEFAULT_OUT})")
    args = parser.parse_args(argv)
    default = [name for name in NAMES if not (args.quick and name == "litellm")]
    systems = [name.strip() for name in args.systems.split(",")] if args.systems else default
    unknown = [name for name in systems if name not in NAMES]
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}")
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) >= 2
    options = Options(
        systems=systems,
        duration=args.duration or (1 if args.quick else 6),
        warmup=1,
        concurrency=args.concurrency,
        ttfb_concurrency=args.ttfb_concurrency,
        token_delay=args.token_delay,
        scaling=not args.no_scaling,
        cpus=cores,
        idle=_counts(args.idle if args.idle is not None else ("1000" if args.quick else "1000,10000")),
        idle_system=args.idle_system,
        sut_cpu=cores[1] if pinned else None,
        load_cpu=cores[0] if pinned else None,
        before=args.before,
        rounds=args.rounds if args.rounds is not None else (3 if args.quick else 5),
    )
    return options, args.out


def main(argv: list[str] | None = None) -> int:
    options, out = parse_options(argv)
    try:
        results = run(options)
    except StartError as exc:  # an upstream did not start: nothing can be measured
        log(f"benchmark aborted: {exc}")
        return 1
    md, js = report.write(results, out, sys.argv[1:] if argv is None else argv)
    log(f"wrote {md} and {js}")
    print(md.read_text())
    return 0 if not report.failures(results) else 1


if __name__ == "__main__":
    sys.exit(main())
