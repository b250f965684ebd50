"""examples/grafana-dashboard.json: importable, has the panels operators need, queries only documented metrics.

The README's metrics table is the contract a dashboard relies on (issue: "these names, so dashboards can
rely on them"); tests/e2e/test_grafana_dashboard_metrics.py checks the same queries against a real scrape.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dashboard_queries import (
    TARGET_LABELS,
    QueryError,
    documented_metrics,
    expressions,
    load,
    panels,
    read,
    series_name,
    tokens,
)

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# Grafana's own variables a query may use (Grafana docs, Variables: "Global variables").
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range"})
GRID_COLUMNS = 24

# The panels operators need (issue 12's list, plus breakers, streams and attempts): title, and a metric it reads.
REQUIRED_PANELS = {
    "Request rate by route": "mini_llm_requests_total",
    "Request rate by status class": "mini_llm_requests_total",
    "Error rate": "mini_llm_requests_total",
    "Gateway overhead p50 / p99": "mini_llm_overhead_seconds_bucket",
    "Time to first token p50 / p99": "mini_llm_time_to_first_token_seconds_bucket",
    "Input tokens per minute": "mini_llm_tokens_total",
    "Output tokens per minute": "mini_llm_tokens_total",
    "Keys available": "mini_llm_provider_keys_available",
    "Breakers open by target": "mini_llm_breaker_open",
    "Active streams by instance": "mini_llm_streams_active",
    "Stream outcomes": "mini_llm_streams_total",
    "Upstream attempts by outcome": "mini_llm_upstream_attempts_total",
}


DOCUMENTED = documented_metrics()
HISTOGRAMS = {name for name, (kind, _) in DOCUMENTED.items() if kind == "histogram"}
DASHBOARD = load()
EXPRESSIONS = expressions(DASHBOARD)


def by_title(title: str) -> dict[str, Any]:
    found = [panel for panel in panels(DASHBOARD) if panel.get("title") == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def panel_metrics(panel: dict[str, Any]) -> set[str]:
    return {metric for target in panel["targets"] for metric in read(target["expr"]).metrics}


class TestTheReadmeTable:
    def test_it_lists_the_twelve_metrics_of_the_issue(self) -> None:
        assert documented_metrics() == {
            "mini_llm_requests_total": ("counter", {"route", "model", "provider", "status"}),
            "mini_llm_request_duration_seconds": ("histogram", {"route", "provider"}),
            "mini_llm_overhead_seconds": ("histogram", {"route"}),
            "mini_llm_time_to_first_token_seconds": ("histogram", {"provider", "model"}),
            "mini_llm_tokens_total": ("counter", {"provider", "model", "kind"}),
            "mini_llm_upstream_attempts_total": ("counter", {"provider", "outcome"}),
            "mini_llm_key_cooldowns_total": ("counter", {"provider", "reason"}),
            "mini_llm_provider_keys_available": ("gauge", {"provider"}),
            "mini_llm_breaker_open": ("gauge", {"provider", "model"}),
            "mini_llm_streams_active": ("gauge", frozenset()),
            "mini_llm_streams_total": ("counter", {"outcome"}),
            "mini_llm_build_info": ("gauge", {"version", "hot_path", "upstream_client"}),
        }


class TestImportable:
    def test_dashboard_fields_grafana_needs(self) -> None:
        assert DASHBOARD["schemaVersion"] >= 36
        assert DASHBOARD["title"]
        assert DASHBOARD["uid"]
        assert DASHBOARD["panels"]

    def test_the_data_source_is_a_variable_every_panel_and_query_uses(self) -> None:
        variables = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}
        source = variables["DS_PROMETHEUS"]
        assert (source["type"], source["query"]) == ("datasource", "prometheus")
        queried = [p for p in panels(DASHBOARD) if p["type"] != "row"]
        assert queried
        for panel in queried:
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), panel["title"]
        for name in ("job", "instance"):
            assert variables[name]["datasource"] == DATASOURCE
            assert variables[name]["includeAll"] is True

    def test_every_variable_a_query_uses_is_defined(self) -> None:
        defined = {variable["name"] for variable in DASHBOARD["templating"]["list"]} | GRAFANA_VARIABLES
        used = {variable for expr in EXPRESSIONS for variable in read(expr).variables}
        assert used <= defined, used - defined

    def test_every_query_filters_by_the_job_and_instance_variables(self) -> None:
        for panel in panels(DASHBOARD):
            for target in panel.get("targets", []):
                query = read(target["expr"])
                assert {"job", "instance"} <= query.variables, target["expr"]

    def test_panel_ids_are_unique_and_the_panels_tile_the_grid(self) -> None:
        ids = [panel["id"] for panel in panels(DASHBOARD)]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in panels(DASHBOARD):
            grid = panel["gridPos"]
            left, top = grid["x"], grid["y"]
            assert left >= 0 and left + grid["w"] <= GRID_COLUMNS, panel["title"]
            area = {(x, y) for x in range(left, left + grid["w"]) for y in range(top, top + grid["h"])}
            assert not area & cells, f"{panel['title']!r} overlaps another panel"
            cells |= area


class TestPanels:
    @pytest.mark.parametrize(("title", "metric"), REQUIRED_PANELS.items())
    def test_the_panel_is_there_and_reads_its_metric(self, title: str, metric: str) -> None:
        assert metric in panel_metrics(by_title(title))

    @pytest.mark.parametrize(
        ("title", "unit"),
        [("Gateway overhead p50 / p99", "ms"), ("Time to first token p50 / p99", "s"), ("Error rate", "percentunit")],
    )
    def test_unit(self, title: str, unit: str) -> None:
        assert by_title(title)["fieldConfig"]["defaults"]["unit"] == unit

    def test_overhead_is_in_milliseconds_at_p50_and_p99(self) -> None:
        exprs = [target["expr"] for target in by_title("Gateway overhead p50 / p99")["targets"]]
        assert [expr.split(" * ", 1)[0] for expr in exprs] == ["1000", "1000"]
        assert [re.search(r"histogram_quantile\(([0-9.]+),", expr)[1] for expr in exprs] == ["0.5", "0.99"]  # type: ignore[index]

    def test_time_to_first_token_is_by_provider_at_p50_and_p99(self) -> None:
        exprs = [target["expr"] for target in by_title("Time to first token p50 / p99")["targets"]]
        assert [re.search(r"histogram_quantile\(([0-9.]+),", expr)[1] for expr in exprs] == ["0.5", "0.99"]  # type: ignore[index]
        assert all("sum by (le, provider)" in expr for expr in exprs)

    def test_error_rate_shows_the_5xx_and_4xx_shares(self) -> None:
        targets = by_title("Error rate")["targets"]
        assert [target["legendFormat"] for target in targets] == ["5xx", "4xx"]
        assert ['status=~"5.."' in targets[0]["expr"], 'status=~"4.."' in targets[1]["expr"]] == [True, True]

    @pytest.mark.parametrize(
        "title",
        ["Requests / s", "5xx share", "Request rate by status class", "Error rate", "Gateway overhead p50 / p99"],
    )
    def test_traffic_panels_count_the_api_routes_only(self, title: str) -> None:
        """Prometheus' own scrapes and load balancer health checks would dilute rates, error shares and overhead."""
        for target in by_title(title)["targets"]:
            selectors = re.findall(r"mini_llm_[a-z_]+\{([^}]*)\}", target["expr"])
            assert selectors
            assert all('route=~"/v1/.+"' in selector for selector in selectors), target["expr"]

    def test_tokens_are_per_minute_by_provider_and_model(self) -> None:
        for title, kind in (("Input tokens per minute", "input"), ("Output tokens per minute", "output")):
            (target,) = by_title(title)["targets"]
            assert target["expr"].startswith("60 * sum by (provider, model) (rate(")
            assert f'kind="{kind}"' in target["expr"]


class TestQueries:
    @pytest.mark.parametrize("expr", EXPRESSIONS)
    def test_brackets_and_quotes_balance(self, expr: str) -> None:
        assert tokens(expr)

    @pytest.mark.parametrize("expr", EXPRESSIONS)
    def test_every_metric_is_in_the_readme_table(self, expr: str) -> None:
        query = read(expr)
        assert query.metrics, f"no mini_llm_* metric in {expr!r}"
        assert {series_name(metric, HISTOGRAMS) for metric in query.metrics} <= DOCUMENTED.keys()

    @pytest.mark.parametrize("expr", EXPRESSIONS)
    def test_every_label_is_one_of_its_metrics(self, expr: str) -> None:
        query = read(expr)
        allowed = set(TARGET_LABELS) | query.made_labels
        for metric in query.metrics:
            name = series_name(metric, HISTOGRAMS)
            allowed |= DOCUMENTED[name][1]
            if metric == f"{name}_bucket":
                allowed.add("le")
        assert query.labels <= allowed, query.labels - allowed

    def test_every_documented_metric_is_on_the_dashboard(self) -> None:
        used = {series_name(metric, HISTOGRAMS) for expr in EXPRESSIONS for metric in read(expr).metrics}
        assert used == DOCUMENTED.keys()


class TestTheQueryReader:
    """The checks above are only as good as the reader: it must see what a query really uses, and refuse bad ones."""

    def test_it_finds_metrics_labels_and_variables(self) -> None:
        query = read(
            'sum by (le, route) (rate(mini_llm_overhead_seconds_bucket{job=~"$job", status!="200"}[$__rate_interval]))'
        )
        assert query.metrics == {"mini_llm_overhead_seconds_bucket"}
        assert query.labels == {"le", "route", "job", "status"}
        assert query.variables == {"job", "__rate_interval"}

    def test_label_replace_reads_its_source_and_makes_its_destination(self) -> None:
        query = read(
            'sum by (class) (label_replace(mini_llm_requests_total{route="/x"}, "class", "${1}xx", "status", "(.)"))'
        )
        assert query.labels == {"class", "route", "status"}
        assert query.made_labels == {"class"}
        assert query.variables == set()  # ${1} is inside a string: a regex group, not a Grafana variable

    def test_strings_hide_what_is_inside_them(self) -> None:
        assert read('mini_llm_streams_total{outcome="mini_llm_fake (x]"}').metrics == {"mini_llm_streams_total"}

    def test_a_label_typo_is_caught(self) -> None:
        query = read("sum by (provder) (mini_llm_provider_keys_available)")
        assert query.labels - DOCUMENTED["mini_llm_provider_keys_available"][1] == {"provder"}

    def test_a_histogram_suffix_maps_to_its_histogram_only(self) -> None:
        assert series_name("mini_llm_overhead_seconds_bucket", HISTOGRAMS) == "mini_llm_overhead_seconds"
        assert series_name("mini_llm_overhead_seconds_count", HISTOGRAMS) == "mini_llm_overhead_seconds"
        assert series_name("mini_llm_streams_count", HISTOGRAMS) == "mini_llm_streams_count"

    @pytest.mark.parametrize(
        "bad",
        [
            "sum(rate(mini_llm_requests_total[5m])",
            "sum(rate(mini_llm_requests_total[5m)))",
            'mini_llm_requests_total{route="/v1}',
            "mini_llm_requests_total{route=~'x'",
            "mini_llm_requests_total # comment",
        ],
    )
    def test_an_unbalanced_or_unreadable_query_is_refused(self, bad: str) -> None:
        with pytest.raises(QueryError):
            tokens(bad)
