"""The worker's upstream clients: one per kind in use, and which one serves each provider."""

from __future__ import annotations

from collections.abc import Mapping

from mini_llm.config import Settings
from mini_llm.providers import Provider
from mini_llm.upstream import Upstream
from mini_llm.upstream.choice import ClientName, client_for, proxy_for


def _build(kind: ClientName, settings: Settings, proxies: Mapping[str, str], tls: bool) -> Upstream:
    """Import a client's module only when a provider uses it: aiohttp alone costs start-up time."""
    if kind == "mock":
        from mini_llm.upstream.mock_provider import MockProvider

        return MockProvider(settings.mock_token_delay)
    if kind == "fast":
        from mini_llm.upstream.fast_client import FastClient

        return FastClient(
            settings.upstream_timeout, settings.upstream_pool_limit, settings.upstream_idle_timeout, tls=tls
        )
    from mini_llm.upstream.aiohttp_client import AiohttpClient

    return AiohttpClient(
        settings.upstream_timeout, settings.upstream_pool_limit, settings.upstream_idle_timeout, proxies
    )


class UpstreamClients:
    """Maps each provider to its client, built once per worker and opened in lifespan start-up."""

    def __init__(self, providers: Mapping[str, Provider], settings: Settings, environ: Mapping[str, str]) -> None:
        # Which client serves each provider: "mock", "fast" or "aiohttp" (for /health).
        self.kinds: dict[str, ClientName] = {
            name: client_for(provider, settings, environ) for name, provider in providers.items()
        }
        # The proxy of each provider behind one: looked up once here, never per request.
        proxies: dict[str, str] = {}
        for name, provider in providers.items():
            proxy = proxy_for(provider.base_url, environ)
            if proxy is not None and self.kinds[name] == "aiohttp":
                proxies[name] = proxy.url
        # The fast client loads a trust store only if a provider it can actually serve is https.
        tls = any(
            provider.usable and self.kinds[name] == "fast" and provider.base_url.lower().startswith("https:")
            for name, provider in providers.items()
        )
        clients = {kind: _build(kind, settings, proxies, tls) for kind in sorted(set(self.kinds.values()))}
        self._clients = list(clients.values())
        # Provider name -> its client; a plain dict, so the per-request lookup costs no Python call.
        self.by_provider: dict[str, Upstream] = {name: clients[kind] for name, kind in self.kinds.items()}

    async def open(self) -> None:
        for client in self._clients:
            await client.open()

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
