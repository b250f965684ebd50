"""The per-worker aiohttp pool: builds the upstream request and maps client errors to 502/504."""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Final

import aiohttp
from yarl import URL

from mini_llm.errors import GatewayError, UpstreamTimeout, UpstreamUnreachable
from mini_llm.providers import Target
from mini_llm.upstream.request_headers import upstream_headers

# What the aiohttp client raises for a provider that fails; mapped to 502/504 by Upstream._failure.
_CLIENT_FAILURES: Final = (TimeoutError, aiohttp.ClientError)

logger = logging.getLogger("mini_llm")


def connect_failure_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection failed, in words of the gateway's own: the OS or TLS message may quote the address.

    DNS errors carry getaddrinfo's negative EAI codes and TLS errors OpenSSL's, neither of which is
    an errno that os.strerror knows ("Unknown error -2", "Operation not permitted").
    """
    cause = exc.os_error
    if isinstance(cause, ssl.SSLCertVerificationError):
        return "certificate verify failed"
    if isinstance(cause, ssl.SSLError) or isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(cause, socket.gaierror) or isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    code = cause.errno
    return os.strerror(code) if isinstance(code, int) and code > 0 else type(cause).__name__


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
            # NOTE: where the provider is stays in the log; a client only learns which provider failed.
            logger.warning("cannot reach provider %r at %s:%s (%s)", name, exc.host, exc.port, exc.os_error)
            return UpstreamUnreachable(f"cannot reach provider {name!r} ({connect_failure_reason(exc)})")
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
        """The body as it arrives, without copying, with the same error mapping as `read`.

        Each piece is what aiohttp holds at that moment, which its flow control keeps to a few
        hundred KiB: the provider is not read faster than the client takes the bytes.
        """
        read = response.content.readany  # one await per chunk; iter_any() would add an iterator layer
        try:
            while chunk := await read():
                yield chunk
                # NOTE: not kept while awaiting the next read: a silent provider's stream would
                # otherwise keep its last read alive, uncounted by the stream budget.
                del chunk
        except _CLIENT_FAILURES as exc:
            raise self._failure(target, "while sending its answer", exc) from exc
