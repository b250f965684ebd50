"""The alternative upstream client on aiohttp: for providers behind an HTTP(S) proxy, and the differential reference.

It is imported only by a worker that uses it (aiohttp costs start-up time).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Final

import aiohttp
from yarl import URL

from mini_llm.errors import GatewayError
from mini_llm.providers import Target
from mini_llm.upstream import BODILESS_METHODS, Body, is_event_stream, joined
from mini_llm.upstream.failures import ProviderFailures
from mini_llm.upstream.failures import connect_failure_reason as neutral_connect_failure_reason
from mini_llm.upstream.request_headers import upstream_headers

# What the aiohttp client raises for a provider that fails; mapped to 502/504 by _Failures.
_CLIENT_FAILURES: Final = (TimeoutError, aiohttp.ClientError)
# Parsed URLs are per (provider, path): the by-id paths (/responses/{id}) are one each, so past this
# many the cache starts over, as the fast client's templates do.
URLS_LIMIT: Final = 1024


class _Request(aiohttp.ClientRequest):
    """aiohttp's request, but a DELETE without content has no `Content-Length: 0` either (RFC 9110 8.6)."""

    GET_METHODS = aiohttp.ClientRequest.GET_METHODS | {"DELETE"}  # the methods aiohttp sends bodiless as is


def connect_failure_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection failed, in the fast client's words; aiohttp's own wrappers name TLS and DNS too."""
    if isinstance(exc, aiohttp.ClientSSLError) and not isinstance(exc.os_error, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError) and not isinstance(exc.os_error, socket.gaierror):
        return "DNS lookup failed"
    return neutral_connect_failure_reason(exc.os_error)


class _Failures(ProviderFailures):
    """Maps aiohttp's errors to the gateway's 502/504, in the same words as the fast client's."""

    __slots__ = ()

    def __call__(self, doing: str, exc: Exception) -> GatewayError:
        answering = doing != "before answering"
        if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError and ConnectionTimeoutError are ones too
            return self.silent(answering)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return self.unreachable(exc.os_error, exc.host, exc.port, connect_failure_reason(exc))
        return self.broke(answering, type(exc).__name__)


class AiohttpResponse:
    """An aiohttp ClientResponse behind the gateway's UpstreamResponse: no aiohttp type leaves it."""

    __slots__ = ("_failures", "_response", "content_length", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, failures: _Failures) -> None:
        self._response = response
        self._failures = failures
        self.status = response.status
        self.headers = [(name.lower(), value) for name, value in response.raw_headers]
        self.content_length = response.content_length

    @property
    def is_event_stream(self) -> bool:
        return is_event_stream(self.headers)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _CLIENT_FAILURES as exc:
            raise self._failures("while sending its answer", exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, without copying, with the same error mapping as `read`.

        Each piece is what aiohttp holds at that moment, which its flow control keeps to a few
        hundred KiB: the provider is not read faster than the client takes the bytes.
        """
        read = self._response.content.readany  # one await per chunk; iter_any() would add an iterator layer
        try:
            while chunk := await read():
                yield chunk
                # NOTE: not kept while awaiting the next read: a silent provider's stream would
                # otherwise keep its last read alive, uncounted by the stream budget.
                del chunk
        except _CLIENT_FAILURES as exc:
            raise self._failures("while sending its answer", exc) from exc

    def close(self) -> None:
        self._response.close()


class AiohttpClient:
    """One pooled ClientSession per worker, opened and closed in ASGI lifespan.

    A provider behind an environment proxy (`proxies`, from upstream.choice) goes through it; the
    session never has `trust_env`, which would also read ~/.netrc and add its login to requests.
    """

    def __init__(
        self, timeout: float, pool_limit: int = 0, idle_timeout: float = 30.0, proxies: Mapping[str, str] | None = None
    ) -> None:
        self.timeout = timeout
        self.pool_limit = pool_limit
        self.idle_timeout = idle_timeout
        self.proxies = dict(proxies or {})  # provider name -> proxy URL (a login in it is aiohttp's to use)
        self._session: aiohttp.ClientSession | None = None
        # (provider, endpoint) -> parsed URL: aiohttp would otherwise parse the string per request.
        self._urls: dict[tuple[str, str], URL] = {}
        self._failures: dict[str, _Failures] = {}

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self.pool_limit,  # per (scheme, host, port), as the fast client's pool
            keepalive_timeout=self.idle_timeout,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # NOTE: no total: a long stream is fine as long as bytes keep coming.
            # `connect` bounds the wait for a pool slot too (limit_per_host), as the fast client's pool wait.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.timeout, sock_connect=self.timeout, sock_read=self.timeout
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_Request,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, target: Target, path: str, body: Body, client: Mapping[bytes, bytes], *, method: str = "POST"
    ) -> AiohttpResponse:
        """Send the request and return once the status line and headers are in."""
        assert self._session is not None, "AiohttpClient.open() runs in lifespan startup"
        name = target.provider.name
        url = self._urls.get((name, path))
        if url is None:
            if len(self._urls) >= URLS_LIMIT:
                self._urls.clear()
            # A query (the Responses API's by-id routes) was checked and goes as the client sent it: yarl
            # would re-quote it (`include[]` to `include%5B%5D`, `%41` to `A`), which the fast client does not.
            url = self._urls[name, path] = URL(target.provider.url(path), encoded="?" in path)
        failures = self._failures.get(name)
        if failures is None:
            failures = self._failures[name] = _Failures(name, self.timeout)
        content = method not in BODILESS_METHODS
        data = joined(body) if content else None  # aiohttp writes one buffer
        try:
            # A redirect goes back to the client as the provider sent it: a proxy never follows one.
            response = await self._session.request(
                method,
                url,
                data=data,
                headers=upstream_headers(target, client, content),
                allow_redirects=False,
                proxy=self.proxies.get(name),
            )
        except _CLIENT_FAILURES as exc:
            raise failures("before answering", exc) from exc
        return AiohttpResponse(response, failures)
