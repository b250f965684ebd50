"""What `mini-llm bench` shows: progress on stderr, then a table or one JSON document on stdout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TextIO

from mini_llm import __version__
from mini_llm.tools.bench.load import Load, Tally, percentile

_COMPARED: Final = ("rate", "p50_ms", "p99_ms")


class Progress:
    """One updating line on a terminal; on a pipe, one line per finished run; never on stdout."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()

    def note(self, text: str) -> None:
        print(f"bench: {text}", file=self.out, flush=True)

    def update(self, label: str, load: Load, tally: Tally, elapsed: float) -> None:
        if self.live:
            goal = f"/{load.requests}" if load.requests else f" ({elapsed:.1f}/{load.duration:g} s)"
            line = f"bench: {label}: {tally.done}{goal} done, {tally.errors} errors"
            print(f"\r\x1b[K{line}", end="", file=self.out, flush=True)

    def done(self, label: str, tally: Tally) -> None:
        if self.live:
            print("\r\x1b[K", end="", file=self.out)
        self.note(f"{label}: {tally.done} done in {tally.seconds:.1f} s, {tally.errors} errors")


def result(scenario: str, target: str, tally: Tally) -> dict[str, Any]:
    """One run: `ok` counts valid answers, and rate and percentiles are over those only."""
    ordered = sorted(tally.latencies)
    return {
        "scenario": scenario,
        "target": target,
        "ok": len(ordered),
        "errors": tally.errors,
        "seconds": round(tally.seconds, 3),
        "rate": round(len(ordered) / tally.seconds, 1) if tally.seconds else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "first_error": tally.first_error or None,
    }


def _ratio(gateway: float, direct: float) -> float | None:
    return round(gateway / direct, 3) if direct else None


def document(
    options: Mapping[str, Any], hot_path: str, processes: Mapping[str, Mapping[str, Any]], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `--json` document; its keys are stable (README: CLI reference)."""
    by_run = {(r["scenario"], r["target"]): r for r in results}
    ratios = {
        scenario: {key: _ratio(by_run[scenario, "gateway"][key], by_run[scenario, "direct"][key]) for key in _COMPARED}
        for scenario in dict.fromkeys(r["scenario"] for r in results)
    }
    return {
        "version": __version__,
        "hot_path": hot_path,
        "options": dict(options),
        "processes": {name: dict(child) for name, child in processes.items()},
        "results": results,
        "ratios": ratios,
    }


def table(doc: Mapping[str, Any]) -> str:
    """Direct and gateway rows per scenario, then their ratio (gateway / direct), then any first errors."""
    opts = doc["options"]
    lines = [
        f"mini-llm bench {doc['version']}: hot path {doc['hot_path']}, {opts['workers']} worker(s), "
        f"chat at concurrency {opts['concurrency']}, {opts['streams']} concurrent streams of "
        f"{opts['stream_tokens']} tokens",
        "",
        f"{'scenario':<8} {'target':<8} {'rate/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}",
    ]

    def times(value: float | None, width: int) -> str:
        return f"{'-' if value is None else f'{value:.2f}x':>{width}}"

    for run in doc["results"]:
        lines.append(
            f"{run['scenario']:<8} {run['target']:<8} {run['rate']:>10.1f} "
            f"{run['p50_ms']:>9.2f} {run['p99_ms']:>9.2f} {run['errors']:>7}"
        )
        if run["target"] == "gateway":
            ratio = doc["ratios"][run["scenario"]]
            lines.append(
                f"{run['scenario']:<8} {'ratio':<8} {times(ratio['rate'], 10)} "
                f"{times(ratio['p50_ms'], 9)} {times(ratio['p99_ms'], 9)}"
            )
    errors = [f"{r['scenario']} {r['target']}, first error: {r['first_error']}" for r in doc["results"] if r["errors"]]
    return "\n".join(lines + ([""] if errors else []) + errors)
