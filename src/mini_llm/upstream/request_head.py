"""The bytes of the fast client's request head: a template per provider, path and key, made once.

Only the forwarded client headers and the Content-Length change from one request to the next;
the request line, Host, the provider's auth and the fixed headers are prepared once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from mini_llm.hosts import DEFAULT_PORTS
from mini_llm.providers import DEFAULT_ANTHROPIC_VERSION, Target
from mini_llm.upstream import BODILESS_METHODS
from mini_llm.upstream.request_headers import fixed_headers, forwarded_headers, needs_default_version

# RFC 3986 3.3: what a path may hold as it is; anything else is percent-encoded (an existing %XX stays).
_PATH_SAFE: Final = "/%:@!$&'()*+,;=-._~"
# RFC 3986 3.4: a query may hold "/" and "?" besides; the brackets stay as clients send them in array
# parameters (`include[]=...`), so the provider gets the query exactly as the client wrote it.
_QUERY_SAFE: Final = _PATH_SAFE + "?[]"
_DEFAULT_VERSION: Final = b"anthropic-version: " + DEFAULT_ANTHROPIC_VERSION.encode() + b"\r\n"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a provider is: what the pool is keyed by and the connection goes to (RFC 9110 4.3.1)."""

    scheme: str
    host: str
    port: int
    # The Host header's value: the host, bracketed if an IPv6 literal, and the port unless the default.
    authority: bytes

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def origin_of(base_url: str) -> Origin:
    """The origin of a configured base URL (checked at start-up: http(s), a host, no credentials)."""
    parts = urlsplit(base_url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[scheme]
    name = b"[" + host.encode() + b"]" if ":" in host else host.encode("idna")
    authority = name if port == DEFAULT_PORTS[scheme] else name + b":%d" % port
    return Origin(scheme, host, port, authority)


def request_target(url: str) -> bytes:
    """The origin-form request target of `url` (RFC 9112 3.2.1): its path, and its query if it has one."""
    parts = urlsplit(url)
    path = quote(parts.path, safe=_PATH_SAFE)
    return (path + "?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else path).encode()


class HeadTemplate:
    """The fixed part of one (provider, method, path, key)'s request head; `head()` adds what varies."""

    __slots__ = ("_default_version", "content", "prefix")

    def __init__(self, target: Target, path: str, origin: Origin, method: str = "POST") -> None:
        content = method not in BODILESS_METHODS
        lines = [method.encode() + b" " + request_target(target.provider.url(path)) + b" HTTP/1.1"]
        lines.append(b"Host: " + origin.authority)
        lines += [name + b": " + value for name, value in fixed_headers(target, content)]
        self._default_version = needs_default_version(target)
        self.content = content  # False for a method in BODILESS_METHODS: no body goes after the head
        self.prefix = b"\r\n".join(lines) + b"\r\n"

    def head(self, client: Mapping[bytes, bytes], length: int) -> bytes:
        """The whole head: the template, the forwarded client headers, then the body's length (if it has one)."""
        parts = [self.prefix]
        versioned = not self._default_version  # an OpenAI-protocol request needs none
        for name, value in forwarded_headers(client):
            parts += (name, b": ", value, b"\r\n")
            versioned = versioned or name == b"anthropic-version"
        if not versioned:  # the client's own goes on as sent; without one (or a dropped one), the default
            parts.append(_DEFAULT_VERSION)
        parts.append(b"Content-Length: %d\r\n\r\n" % length if self.content else b"\r\n")
        return b"".join(parts)
