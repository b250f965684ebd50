"""Model resolution: alias (one target or a chain), then `provider:model`, then inference from the model name."""

from __future__ import annotations

import random
from collections.abc import Mapping

from mini_llm.aliases import Alias
from mini_llm.errors import GatewayError, clip
from mini_llm.providers import MOCK, Hop, Provider, WireProtocol


class Router:
    """Resolves client model names to the targets a request tries, in order. Keys are the failover's."""

    def __init__(
        self, providers: Mapping[str, Provider], aliases: Mapping[str, Alias], rng: random.Random | None = None
    ) -> None:
        self.providers = providers
        self.aliases = aliases
        self._rng = rng or random.Random()
        # Each alias's targets in fallback order: as configured, or by weight (heaviest first) when weighted.
        self._chains: dict[str, tuple[Hop, ...]] = {}
        self._weights: dict[str, list[float]] = {}  # weighted aliases only, in the order of their chain
        for name, alias in aliases.items():
            hops = [(providers[provider], model) for provider, model in alias.targets]
            if alias.weights is None:
                self._chains[name] = tuple(hops)
                continue
            weights = alias.weights
            order = sorted(range(len(hops)), key=lambda i: -weights[i])  # stable: ties keep the configured order
            self._chains[name] = tuple(hops[i] for i in order)
            self._weights[name] = [weights[i] for i in order]

    def hops(self, model: str) -> tuple[Hop, ...]:
        """Alias first; `provider:model` only for a configured provider; else infer (claude -> anthropic).

        Any name containing `claude`, in any case, is Anthropic's: `claude-sonnet-4-5`, but also
        `us.anthropic.claude-...` or `bedrock:claude-...` when `bedrock` is no configured provider.
        A weighted alias starts at a target drawn by weight; the others follow, heaviest first.
        """
        chain = self._chains.get(model)
        if chain is not None:
            weights = self._weights.get(model)
            if weights is None:
                return chain
            first = self._rng.choices(range(len(chain)), weights)[0]
            return (chain[first], *chain[:first], *chain[first + 1 :])
        prefix, sep, rest = model.partition(":")
        if sep and rest and prefix in self.providers:
            return ((self.providers[prefix], rest),)
        if model == MOCK:
            return ((self.providers[MOCK], model),)
        if "claude" in model.lower():
            return ((self.providers["anthropic"], model),)
        return ((self.providers["openai"], model),)

    def plan(self, model: str, protocol: WireProtocol, endpoint: str) -> tuple[Hop, ...]:
        """The targets a request on `endpoint` tries, in order, or a clear 400.

        Targets whose provider has no key configured are left out; if that leaves none, the 400 names
        the first one's key setting.
        """
        hops = self.hops(model)
        usable = True
        for provider, _ in hops:
            if not provider.speaks(protocol):
                raise GatewayError(
                    400,
                    f"model {clip(model)} resolves to provider {provider.name!r}, which speaks the "
                    f"{provider.protocol} protocol and cannot serve {endpoint} ({protocol} protocol); "
                    "protocol translation is not supported",
                    param="model",
                    code="protocol_mismatch",
                )
            usable = usable and provider.usable
        if usable:
            return hops
        configured = tuple(hop for hop in hops if hop[0].usable)
        if not configured:
            provider = hops[0][0]
            raise _not_configured(provider.name, provider.key_setting, param="model")
        return configured

    def fixed(self, name: str) -> tuple[Hop, ...]:
        """The one target of a route without a model (the Responses API's by-id routes), or a clear 400."""
        provider = self.providers.get(name)
        if provider is None or not provider.usable:
            raise _not_configured(name, provider.key_setting if provider is not None else f"a provider named {name!r}")
        return ((provider, ""),)

    def model_ids(self) -> list[tuple[str, str]]:
        """(model id, owner) pairs for /v1/models: aliases first, then models the config declares."""
        seen: dict[str, str] = {alias: target.targets[0][0] for alias, target in self.aliases.items()}
        for provider in self.providers.values():
            for model in provider.models:
                seen.setdefault(model, provider.name)
        return list(seen.items())


def _not_configured(name: str, setting: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        400,
        f"provider {name!r} has no API key configured on the gateway: set {setting}",
        param=param,
        code="provider_not_configured",
    )
