"""The example Grafana dashboard's PromQL queries, and the README metrics table they are held to.

A small tokenizer, not a PromQL parser (checking without a Prometheus): it proves brackets and quotes
balance and finds the metric and label names a query uses, which is what can drift from what the
gateway exposes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[1] / "examples" / "grafana-dashboard.json"
README = Path(__file__).resolve().parents[1] / "README.md"

# Labels Prometheus itself adds to every scraped series (the scrape config's job, the target's address).
TARGET_LABELS = frozenset({"job", "instance"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# A Grafana variable, `$name` or `${name}`, outside strings and inside them (Grafana interpolates both);
# `${1}` in a label_replace replacement is a regex group: names start with a letter or `_`.
_VARIABLE = r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"
_TOKEN = re.compile(
    "|".join(
        (
            r"(?P<space>\s+)",
            r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""",
            rf"(?P<variable>{_VARIABLE})",
            r"(?P<duration>(?:[0-9]+(?:ms|[smhdwy]))+)",
            r"(?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)",
            r"(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)",
            r"(?P<matcher>=~|!~|!=|==|=)",
            r"(?P<open>[({\[])",
            r"(?P<close>[)}\]])",
            r"(?P<operator><=|>=|[-+*/%^<>,])",
        )
    )
)
_PAIRS = {")": "(", "}": "{", "]": "["}
# label_replace(v, destination, replacement, source, regex): the string arguments that name labels.
_DESTINATION, _SOURCE = 1, 3


class QueryError(ValueError):
    """A query the tokenizer cannot read: an unknown character, an open quote, unbalanced brackets."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass
class Query:
    """What one PromQL expression uses."""

    metrics: set[str] = field(default_factory=set)  # mini_llm_* series names, suffixes included
    labels: set[str] = field(default_factory=set)  # label names read: matchers, by/without, label_replace sources
    made_labels: set[str] = field(default_factory=set)  # labels the query creates (label_replace destinations)
    variables: set[str] = field(default_factory=set)  # Grafana variables, without the $ and braces


def tokens(expr: str) -> list[Token]:
    """The expression's tokens, whitespace dropped; raises QueryError if brackets or quotes do not balance."""
    found: list[Token] = []
    stack: list[str] = []
    at = 0
    while at < len(expr):
        match = _TOKEN.match(expr, at)
        if match is None:
            raise QueryError(f"cannot read {expr[at : at + 20]!r} at {at} in {expr!r}")
        kind, text = match.lastgroup or "", match.group()
        at = match.end()
        if kind == "open":
            stack.append(text)
        elif kind == "close" and (not stack or stack.pop() != _PAIRS[text]):
            raise QueryError(f"unbalanced {text!r} at {at - 1} in {expr!r}")
        if kind != "space":
            found.append(Token(kind, text))
    if stack:
        raise QueryError(f"unclosed {stack[-1]!r} in {expr!r}")
    return found


@dataclass
class _Call:
    """An open label_replace( call: the bracket depth of its arguments, and which argument is being read."""

    depth: int
    argument: int = 0


def read(expr: str) -> Query:
    """The metric names, label names and Grafana variables `expr` uses."""
    query = Query()
    parts = tokens(expr)
    brackets: list[str] = []  # "(", "{", "[", or "by" for the list of a by (...) / without (...)
    calls: list[_Call] = []
    for index, token in enumerate(parts):
        previous = parts[index - 1].text if index else ""
        following = parts[index + 1].kind if index + 1 < len(parts) else ""
        call = calls[-1] if calls and calls[-1].depth == len(brackets) else None
        if token.kind in {"variable", "string"}:
            query.variables.update(re.findall(_VARIABLE, token.text))
        if token.kind == "open":
            brackets.append("by" if token.text == "(" and previous in {"by", "without"} else token.text)
            if previous == "label_replace":
                calls.append(_Call(len(brackets)))
        elif token.kind == "close":
            if call is not None:
                calls.pop()
            brackets.pop()
        elif token.text == "," and call is not None:
            call.argument += 1
        elif token.kind == "string" and call is not None and call.argument in {_DESTINATION, _SOURCE}:
            made = call.argument == _DESTINATION
            (query.made_labels if made else query.labels).add(token.text[1:-1])
        elif token.kind == "ident":
            inside = brackets[-1] if brackets else ""
            if inside == "by" or (inside == "{" and following == "matcher"):
                query.labels.add(token.text)
            elif token.text.startswith("mini_llm_"):
                query.metrics.add(token.text)
    return query


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """README "Operating it" metrics table: name -> (type, labels)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Operating it\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `(mini_llm_[a-z_]+)` \| (counter|gauge|histogram) \|([^|]*)\|", section, re.MULTILINE)
    return {name: (kind, frozenset(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query: the panels' targets and the template variables' label_values() queries."""
    exprs = [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(_label_values_selector(variable["query"]["query"]))
    return exprs


def _label_values_selector(query: str) -> str:
    """`label_values(selector, label)` is Grafana's, not PromQL: its selector is, and its label is read."""
    match = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)", query)
    if match is None:
        raise QueryError(f"not a label_values(selector, label) query: {query!r}")
    return f"max by ({match.group(2)}) ({match.group(1)})"


def series_name(metric: str, histograms: set[str]) -> str:
    """The exposed name a queried series belongs to: a histogram's _bucket/_sum/_count map to the histogram."""
    for suffix in HISTOGRAM_SUFFIXES:
        if metric.endswith(suffix) and metric.removesuffix(suffix) in histograms:
            return metric.removesuffix(suffix)
    return metric
