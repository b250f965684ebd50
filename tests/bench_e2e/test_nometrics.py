"""mini-llm-nometrics for real: its launch turns the metrics off (and mini-llm's leaves them on), the check
before the load tells the two apart, and the paired rounds run with the two alone, no earlier build."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from e2e import summary, systems
from e2e.__main__ import parse_options
from e2e.procs import free_port, running
from e2e.run import Upstream, _fast_path, expect_metrics


def test_nometrics_runs_by_default_beside_the_gateway() -> None:
    names = list(systems.table())
    assert names.index("mini-llm-nometrics") == names.index("mini-llm-chain") + 1
    nometrics = systems.table()["mini-llm-nometrics"]
    assert (nometrics.metrics, systems.table()["mini-llm"].metrics) == (False, True)
    assert "mini-llm-nometrics" in parse_options(["--quick"])[0].systems
    options, _ = parse_options(["--systems", "mini-llm,mini-llm-nometrics", "--rounds", "7"])
    assert (options.systems, options.rounds) == (["mini-llm", "mini-llm-nometrics"], 7)


@pytest.mark.parametrize(("name", "on"), [("mini-llm", True), ("mini-llm-nometrics", False)])
def test_the_metrics_are_on_or_off_as_the_system_says(tmp_path: Path, name: str, on: bool) -> None:
    system = systems.table()[name]
    assert system.per_upstream is not None
    with (
        running(systems.raw_upstream(tmp_path, free_port()), None, tmp_path) as upstream,
        running(system.per_upstream(tmp_path, free_port(), upstream.url), None, tmp_path) as gateway,
    ):
        expect_metrics(gateway, on)
        with pytest.raises(RuntimeError, match=f"{name}: GET /metrics answered {200 if on else 404}, not"):
            expect_metrics(gateway, not on)


@pytest.mark.timeout(120)
def test_the_rounds_run_with_the_gateway_and_nometrics_alone(tmp_path: Path) -> None:
    """One real round on the raw upstream: both systems loaded, whole, and the cost is a finite ratio."""
    options, _ = parse_options(["--systems", "mini-llm,mini-llm-nometrics", "--rounds", "1", "--duration", "1"])
    with running(systems.raw_upstream(tmp_path, free_port()), None, tmp_path) as raw:
        rounds = _fast_path(systems.table(), Upstream(raw.url, raw.pids, raw.cold_start_s), tmp_path, options)
    [measured] = rounds
    assert set(measured) == {"mini-llm", "mini-llm-nometrics"}
    for phases in measured.values():
        assert phases["wrk64"]["requests"] > 0 and phases["wrk64"]["errors"] == 0
        assert phases["streams"]["whole"] == phases["streams"]["completed"] > 0
    cost = summary.metrics_cost_medians({"fast_path_rounds": rounds})["mini-llm"]
    assert cost["rounds"] == 1
    assert all(math.isfinite(cost[f"x_{figure}"]) and cost[f"x_{figure}"] > 0 for figure in summary.FAST_PATH_FIGURES)
