"""Model resolution: alias, then `provider:model`, then inference from the model name."""

from __future__ import annotations

from collections.abc import Mapping

from mini_llm.errors import GatewayError, clip
from mini_llm.providers import MOCK, Provider, Target, WireProtocol


class Router:
    """Resolves client model names; holds the per-worker key rotation through the providers."""

    def __init__(self, providers: Mapping[str, Provider], aliases: Mapping[str, tuple[str, str]]) -> None:
        self.providers = providers
        self.aliases = aliases

    def locate(self, model: str) -> tuple[Provider, str]:
        """Alias first; `provider:model` only for a configured provider; else infer (claude -> anthropic).

        Any name containing `claude`, in any case, is Anthropic's: `claude-sonnet-4-5`, but also
        `us.anthropic.claude-...` or `bedrock:claude-...` when `bedrock` is no configured provider.
        """
        alias = self.aliases.get(model)
        if alias is not None:
            return self.providers[alias[0]], alias[1]
        prefix, sep, rest = model.partition(":")
        if sep and rest and prefix in self.providers:
            return self.providers[prefix], rest
        if model == MOCK:
            return self.providers[MOCK], model
        if "claude" in model.lower():
            return self.providers["anthropic"], model
        return self.providers["openai"], model

    def resolve(self, model: str, protocol: WireProtocol, endpoint: str) -> Target:
        """Pick provider and key for a request on `endpoint`, or raise a clear 400."""
        provider, upstream_model = self.locate(model)
        if not provider.speaks(protocol):
            raise GatewayError(
                400,
                f"model {clip(model)} resolves to provider {provider.name!r}, which speaks the "
                f"{provider.protocol} protocol and cannot serve {endpoint} ({protocol} protocol); "
                "protocol translation is not supported",
                param="model",
                code="protocol_mismatch",
            )
        if provider.key_required and not provider.keys:
            raise GatewayError(
                400,
                f"provider {provider.name!r} has no API key configured on the gateway: set {provider.key_setting}",
                param="model",
                code="provider_not_configured",
            )
        key = provider.next_key()
        if key is None:
            return Target(provider, upstream_model, None, None)
        return Target(provider, upstream_model, *key)

    def model_ids(self) -> list[tuple[str, str]]:
        """(model id, owner) pairs for /v1/models: aliases first, then models the config declares."""
        seen: dict[str, str] = {alias: target[0] for alias, target in self.aliases.items()}
        for provider in self.providers.values():
            for model in provider.models:
                seen.setdefault(model, provider.name)
        return list(seen.items())
