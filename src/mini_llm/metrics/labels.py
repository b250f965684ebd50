"""Label values with a bounded set: names the configuration gives, or a fixed stand-in (README "Operating it").

Clients choose model names and paths; a label taking every value a client sends would grow a series per
value without end (and could carry anything a client typed). Every label goes through one of these maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mini_llm.aliases import Alias
from mini_llm.providers import MOCK, Provider

OTHER: Final = "other"  # a model or provider the configuration does not name
UNKNOWN: Final = "unknown"  # a route or outcome beyond the first CAP distinct ones
CAP: Final = 64  # distinct values a code-chosen label (route, outcome, reason) may take in one worker
STREAM_OUTCOMES: Final = ("complete", "client_gone", "upstream_error", "cut")
# Status label of a request that never had a response status (the client left first).
NO_STATUS: Final = "0"
STATUSES: Final = {status: str(status) for status in range(100, 600)}


def configured_models(providers: Mapping[str, Provider], aliases: Mapping[str, Alias]) -> frozenset[str]:
    """The model names a label may carry: aliases, their targets' models, declared models, as `provider:model` too."""
    pairs = {target for alias in aliases.values() for target in alias.targets}
    pairs |= {(provider.name, model) for provider in providers.values() for model in provider.models}
    names = {MOCK, *aliases, *(model for _, model in pairs), *(f"{provider}:{model}" for provider, model in pairs)}
    return frozenset(names)


class Capped:
    """A label whose values the code chooses (a route, an attempt outcome): the first CAP kept, later ones UNKNOWN.

    A cap and not a list, so a route or an outcome added elsewhere shows under its own name; the cap only
    guards against a bug that would make the values unbounded.
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[object, str] = {}  # the request path gets from it directly, calling only on a miss

    def __call__(self, value: object) -> str:
        label = self.seen.get(value)
        if label is not None:
            return label
        if len(self.seen) >= CAP:
            return UNKNOWN
        label = self.seen[value] = str(value)
        return label


class Labels:
    """The label maps of one worker, built once from the configuration; each lookup is a dict get."""

    __slots__ = ("models", "outcome", "providers", "reason", "route", "stream_outcome")

    def __init__(self, providers: Mapping[str, Provider], aliases: Mapping[str, Alias]) -> None:
        # None: a request that never named a model (health, /v1/models, a 400 before the body was read).
        self.models: dict[str | None, str] = {
            None: "",
            **{name: name for name in configured_models(providers, aliases)},
        }
        self.providers: dict[str, str] = {name: name for name in providers}
        self.route = Capped()
        self.outcome = Capped()
        self.reason = Capped()
        self.stream_outcome = Capped()

    def model(self, name: str | None) -> str:
        return self.models.get(name, OTHER)

    def provider(self, name: str) -> str:
        return self.providers.get(name, OTHER)
