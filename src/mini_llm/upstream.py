"""The per-worker aiohttp pool: builds the upstream request and maps client errors to 502/504."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

import aiohttp
from yarl import URL

from mini_llm.asgi import Headers
from mini_llm.errors import GatewayError, UpstreamTimeout, UpstreamUnreachable
from mini_llm.providers import DEFAULT_ANTHROPIC_VERSION
from mini_llm.routing import Target

# RFC 9110 7.6.1 hop-by-hop fields, plus what the gateway sets itself or must never forward:
# the client's own credentials and tenancy headers, cookies, where the client is (the provider
# does not need the caller's address), and the body framing.
_DROPPED_REQUEST_HEADERS: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"accept-encoding",
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-real-ip",
        b"cookie",
        b"openai-organization",
        b"openai-project",
        b"expect",
        b"content-type",
    }
)

_RELAYED_RESPONSE_HEADERS: Final = frozenset(
    {
        b"content-type",
        b"content-encoding",
        b"location",  # redirects are relayed, not followed (allow_redirects=False)
        b"retry-after",
        b"retry-after-ms",
        b"x-should-retry",
        b"x-request-id",
        b"request-id",
        b"openai-processing-ms",
        b"openai-version",
    }
)
_RELAYED_RESPONSE_PREFIXES: Final = (b"x-ratelimit-", b"anthropic-ratelimit-")
# What the aiohttp client raises for a provider that fails; mapped to 502/504 by Upstream._failure.
_CLIENT_FAILURES: Final = (TimeoutError, aiohttp.ClientError)


def upstream_headers(target: Target, client: Mapping[bytes, bytes]) -> dict[str, str]:
    """The client's headers minus hop-by-hop and credentials, plus the provider's own auth."""
    dropped = _DROPPED_REQUEST_HEADERS
    listed = client.get(b"connection")
    if listed:
        # RFC 9110 7.6.1: headers named in Connection are hop-by-hop too.
        dropped = dropped | {token.strip().lower() for token in listed.split(b",")}
    headers = {
        name.decode("latin-1"): value.decode("utf-8", "replace")
        for name, value in client.items()
        if name not in dropped
    }
    # The body was validated as a JSON object, whatever the client labelled it (curl -d says form).
    headers["Content-Type"] = "application/json"
    headers["Accept-Encoding"] = "identity"
    key = target.key
    if target.provider.protocol == "anthropic":
        if key is not None:
            headers["x-api-key"] = key
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    elif key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def relayed_headers(raw: tuple[tuple[bytes, bytes], ...]) -> Headers:
    """The upstream response headers that clients use; never another tenant's credentials."""
    out: Headers = []
    for name, value in raw:
        lower = name.lower()
        if lower in _RELAYED_RESPONSE_HEADERS or lower.startswith(_RELAYED_RESPONSE_PREFIXES):
            out.append((lower, value))
    return out


class Upstream:
    """One pooled ClientSession per worker, opened and closed in ASGI lifespan."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # (provider, endpoint) -> parsed URL: aiohttp would otherwise parse the string per request.
        self._urls: dict[tuple[str, str], URL] = {}

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            keepalive_timeout=30,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # NOTE: no total: a long stream is fine as long as bytes keep coming.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _failure(self, target: Target, doing: str, exc: Exception) -> GatewayError:
        """Connection failures become 502 and silence past the timeout 504, naming the provider only."""
        name = target.provider.name
        if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
            return UpstreamTimeout(f"provider {name!r} went silent for {self.timeout:g}s {doing}")
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return UpstreamUnreachable(f"cannot reach provider {name!r} at {exc.host}:{exc.port} ({reason})")
        return UpstreamUnreachable(f"provider {name!r} failed {doing}: {type(exc).__name__}")

    async def post(
        self, target: Target, path: str, body: bytes | memoryview, client: Mapping[bytes, bytes]
    ) -> aiohttp.ClientResponse:
        """Send the request and return once the status line and headers are in."""
        assert self._session is not None, "Upstream.open() runs in lifespan startup"
        url = self._urls.get((target.provider.name, path))
        if url is None:
            url = self._urls[target.provider.name, path] = URL(target.provider.url(path))
        try:
            # A redirect goes back to the client as the provider sent it: a proxy never follows one.
            return await self._session.post(
                url, data=body, headers=upstream_headers(target, client), allow_redirects=False
            )
        except _CLIENT_FAILURES as exc:
            raise self._failure(target, "before answering", exc) from exc

    async def read(self, target: Target, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except _CLIENT_FAILURES as exc:
            raise self._failure(target, "while sending its answer", exc) from exc

    async def chunks(self, target: Target, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The body as it arrives, without copying, with the same error mapping as `read`."""
        read = response.content.readany  # one await per chunk; iter_any() would add an iterator layer
        try:
            while chunk := await read():
                yield chunk
        except _CLIENT_FAILURES as exc:
            raise self._failure(target, "mid-stream", exc) from exc
