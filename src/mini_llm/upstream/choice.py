"""Which client carries a provider's requests: the built-in mock, the gateway's own HTTP/1.1 client, or aiohttp.

The fast client only talks to the provider's origin. A provider whose base URL the environment sends through
a proxy goes through aiohttp instead, created with `trust_env=True`, which honours that proxy. The proxy rules
are aiohttp's (https://docs.aiohttp.org/en/stable/client_advanced.html#proxy-support): urllib's
`getproxies_environment` and `proxy_bypass_environment` (https://docs.python.org/3/library/urllib.request.html),
restated here on a given mapping, so the choice is a pure function of its arguments and urllib.request (20 ms
to import) stays out of the worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mini_llm.config import Settings
from mini_llm.providers import MOCK, Provider

ClientName = Literal["mock", "fast", "aiohttp"]

_SUFFIX = "_proxy"
# aiohttp reads only these schemes' proxies (ALL_PROXY is not one), and ignores an https:// or wss://
# proxy URL with a warning: it speaks to a proxy in plain HTTP only.
_PROXIED_SCHEMES = ("http", "https", "ws", "wss")
_IGNORED_PROXY_SCHEMES = ("https", "wss")


@dataclass(frozen=True, slots=True)
class EnvProxy:
    """A proxy the environment names for a URL: the variable that set it (`HTTPS_PROXY`) and its URL."""

    variable: str
    url: str

    def masked_url(self) -> str:
        """The URL without its user name and password (`http://***@proxy:3128`), safe to print.

        Everything before the last `@` but a real scheme goes: a password may hold `:`, `/` or `://`.
        """
        before, at, host = self.url.rpartition("@")
        if not at:
            return self.url
        scheme, sep, _ = before.partition("://")
        # RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); anything else may be part of a password.
        is_scheme = scheme[:1].isalpha() and scheme.replace("+", "a").replace("-", "a").replace(".", "a").isalnum()
        kept = f"{scheme}://" if sep and scheme.isascii() and is_scheme else ""
        return f"{kept}***@{host}"


def _env_proxies(environ: Mapping[str, str]) -> dict[str, EnvProxy]:
    """`<scheme>_proxy` variables by scheme (`no` for NO_PROXY), as urllib's getproxies_environment reads them.

    Any case counts, a lowercase `_proxy` name wins over the others, and an empty lowercase one removes the
    scheme. Under CGI (REQUEST_METHOD set) a `HTTP_PROXY` may come from a client's `Proxy:` header
    (CVE-2016-1000110, "httpoxy"), so only the lowercase `http_proxy` counts then.
    """
    proxies: dict[str, EnvProxy] = {}
    for name, value in environ.items():
        lowered = name.lower()
        if value and lowered.endswith(_SUFFIX):
            proxies[lowered[: -len(_SUFFIX)]] = EnvProxy(name, value)
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in environ.items():
        if name.endswith(_SUFFIX):
            scheme = name.lower()[: -len(_SUFFIX)]
            if value:
                proxies[scheme] = EnvProxy(name, value)
            else:
                proxies.pop(scheme, None)
    return proxies


def _bypassed(host: str, no_proxy: str) -> bool:
    """urllib's proxy_bypass_environment: NO_PROXY is `*` or comma-separated names and domain suffixes."""
    if no_proxy == "*":
        return True
    host = host.lower()
    head, colon, port = host.rpartition(":")
    host_only = head if colon and port.isascii() and port.isdigit() else host
    for entry in no_proxy.split(","):
        if not entry.strip():
            continue
        name = entry.strip().lstrip(".").lower()  # "." stays a suffix match once the dots are gone
        if name in (host_only, host) or host_only.endswith(f".{name}") or host.endswith(f".{name}"):
            return True
    return False


def _host_as_aiohttp_sees_it(host: str) -> str:
    """yarl hands aiohttp an internationalised name decoded from its A-label (RFC 5891 5.5): `xn--...` as Unicode."""
    if "xn--" in host:
        with suppress(UnicodeError):
            return host.encode("ascii").decode("idna")
    return host


def _proxy_scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # aiohttp fails on such a proxy URL too, so it still counts as a proxy
        return ""


def proxy_for(url: str, environ: Mapping[str, str]) -> EnvProxy | None:
    """The proxy aiohttp with `trust_env=True` would send a request to `url` through, or None (direct)."""
    parts = urlsplit(url)
    proxies = _env_proxies(environ)
    no_proxy = proxies.get("no")
    host = parts.hostname
    if host is not None and no_proxy is not None and _bypassed(_host_as_aiohttp_sees_it(host), no_proxy.url):
        return None
    proxy = proxies.get(parts.scheme) if parts.scheme in _PROXIED_SCHEMES else None
    if proxy is None or _proxy_scheme(proxy.url) in _IGNORED_PROXY_SCHEMES:
        return None
    return proxy


def client_for(provider: Provider, settings: Settings, environ: Mapping[str, str]) -> ClientName:
    """The mock for the built-in mock, aiohttp for a provider behind a proxy, else MINI_LLM_UPSTREAM_CLIENT."""
    if provider.protocol == MOCK:
        return "mock"
    if proxy_for(provider.base_url, environ) is not None:
        return "aiohttp"
    return settings.upstream_client


def explain_client(provider: Provider, settings: Settings, environ: Mapping[str, str]) -> str:
    """`client_for` in words, for `config check`: which client, and the proxy (credentials masked) if one."""
    if provider.protocol == MOCK:
        return "built in, no network"
    proxy = proxy_for(provider.base_url, environ)
    if proxy is not None:
        return f"aiohttp: {proxy.variable} sends it through the proxy {proxy.masked_url()}"
    return f"{settings.upstream_client} (MINI_LLM_UPSTREAM_CLIENT)"
