"""The gateway's own HTTP/1.1 client: one keep-alive pool per origin on asyncio.Protocol, one client per worker.

A request is its cached head template, the forwarded client headers and the body's own buffers,
written in one `writelines` (no copy of the body); the answer is parsed by the hot-path parser.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from mini_llm.providers import Target
from mini_llm.upstream import Body
from mini_llm.upstream.failures import ProviderFailures
from mini_llm.upstream.fast_response import FastResponse
from mini_llm.upstream.pool import OriginPool, PoolTimeout
from mini_llm.upstream.request_head import HeadTemplate, Origin, origin_of
from mini_llm.upstream.tls import client_context

# Templates are per (provider, method, path, key): few providers and paths, but keys rotate and the
# by-id paths (/responses/{id}) are one each. Past this many the cache starts over, so a long key
# list or many ids cost a rebuild now and then, never memory.
ROUTES_LIMIT: Final = 1024


@dataclass(frozen=True, slots=True)
class _Route:
    """What one (provider, method, path, key) needs per request, prepared once."""

    template: HeadTemplate
    pool: OriginPool
    failures: ProviderFailures


class FastClient:
    """Implements `Upstream`: a request to a provider over a pooled keep-alive connection."""

    __slots__ = (
        "_failures",
        "_idle_timeout",
        "_origins",
        "_pool_limit",
        "_pools",
        "_routes",
        "_timeout",
        "_tls",
        "_uses_tls",
    )

    def __init__(self, timeout: float, pool_limit: int, idle_timeout: float, *, tls: bool = True) -> None:
        self._timeout = timeout
        self._uses_tls = tls  # False when no provider it serves is https: no trust store to load
        self._pool_limit = pool_limit
        self._idle_timeout = idle_timeout
        self._routes: dict[tuple[str, str, str, str | None], _Route] = {}
        self._origins: dict[str, Origin] = {}  # provider name -> its parsed base URL
        self._pools: dict[Origin, OriginPool] = {}
        self._failures: dict[str, ProviderFailures] = {}
        self._tls: ssl.SSLContext | None = None

    async def open(self) -> None:
        """Load the TLS trust store now, at the worker's start, not in the first request's time.

        Only if a provider needs it: loading it costs about 25 ms of cold start. Pools and their
        connections are made on first use.
        """
        if self._uses_tls:
            self._tls = client_context()

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._routes.clear()

    async def send(
        self, target: Target, path: str, body: Body, client: Mapping[bytes, bytes], *, method: str = "POST"
    ) -> FastResponse:
        route = self._routes.get((target.provider.name, method, path, target.key))
        if route is None:
            route = self._route(target, path, method)
        pool, failures = route.pool, route.failures
        try:
            connection = await pool.acquire()
        except PoolTimeout as exc:
            raise failures.no_connection_free() from exc
        except TimeoutError as exc:
            raise failures.silent(False) from exc
        except OSError as exc:
            raise failures.unreachable(exc, pool.origin.host, pool.origin.port) from exc
        template = route.template
        if not template.content:
            body = ()  # whatever the client sent with a GET or DELETE: after a head without a length, never
        length = 0
        for buffer in body:
            length += len(buffer)
        response = FastResponse(connection, failures, pool.loop)
        assert connection.transport is not None  # acquire() hands out connected ones only
        try:
            connection.transport.writelines([template.head(client, length), *body])
            await response.answered()
        except BaseException:
            response.close()
            raise
        return response

    def _route(self, target: Target, path: str, method: str) -> _Route:
        provider = target.provider
        name = provider.name
        origin = self._origins.get(name)
        if origin is None:
            origin = self._origins[name] = origin_of(provider.base_url)
        pool = self._pools.get(origin)
        if pool is None:
            tls = None
            if origin.tls:
                assert self._tls is not None, "FastClient.open() runs in lifespan startup, with tls for https"
                tls = self._tls
            pool = self._pools[origin] = OriginPool(origin, self._pool_limit, self._timeout, self._idle_timeout, tls)
        failures = self._failures.get(name)
        if failures is None:
            failures = self._failures[name] = ProviderFailures(name, self._timeout)
        if len(self._routes) >= ROUTES_LIMIT:
            self._routes.clear()
        template = HeadTemplate(target, path, origin, method)
        route = self._routes[name, method, path, target.key] = _Route(template, pool, failures)
        return route
