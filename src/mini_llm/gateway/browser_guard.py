"""What a browser may reach: the Host a request names (DNS rebinding) and the Origin it comes from (CORS)."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Final

from mini_llm.asgi import Headers, Message, Scope, Send
from mini_llm.errors import GatewayError
from mini_llm.hosts import host_name, is_loopback

# Load balancers probe by IP address, whatever names the gateway serves; these two reveal no configuration
# beyond the /health payload and never spend a key.
_PROBE_PATHS: Final = frozenset({"/health", "/ready"})
_HOST_VERDICTS_KEPT: Final = 256  # distinct Host values remembered; any further one is checked each time
# What the two SDKs send from a browser, besides their own families of headers (x-stainless-*, openai-*,
# anthropic-*, e.g. anthropic-dangerous-direct-browser-access), which a preflight may ask for by name.
_ALLOWED_HEADERS: Final = (
    b"authorization",
    b"x-api-key",
    b"content-type",
    b"anthropic-version",
    b"anthropic-beta",
    b"idempotency-key",
)
_ALLOWED_HEADER_PREFIXES: Final = (b"x-stainless-", b"openai-", b"anthropic-")
_PREFLIGHT_MAX_AGE: Final = b"600"  # seconds; browsers cap it anyway (Chromium at 7200)
# Every answer depends on Origin (403 or not), so shared caches must key on it (RFC 9110 12.5.5).


class BrowserGuard:
    """Refuses what a web page must not get through, before any route runs or any body is read.

    Host (DNS rebinding): without gateway keys, or on a loopback bind, only loopback names, the bind
    address itself and MINI_LLM_ALLOWED_HOSTS are served, so a page whose own name was rebound to the
    gateway's address is refused. With keys beyond loopback, which a rebinding page does not have, any
    Host is served unless MINI_LLM_ALLOWED_HOSTS lists them. Origin: a browser names the page that sent
    a request; only the gateway's own origin (the playground, on a served Host) and
    MINI_LLM_ALLOWED_ORIGINS get through. Requests without Origin (SDKs, curl) are not a browser's
    cross-site requests and pass.
    """

    def __init__(
        self, bind_host: str, allowed_hosts: Iterable[str], allowed_origins: Iterable[str], *, keys_required: bool
    ) -> None:
        bind = host_name(bind_host)
        served = set(allowed_hosts)
        self._checks_host = not keys_required or is_loopback(bind) or bool(served)
        if bind is not None:
            served.add(bind)  # the playground opened at http://10.0.0.5:3333 on a gateway bound to 10.0.0.5
        self._served = frozenset(served)
        self._host_verdicts: dict[bytes, bool] = {}
        self._origins = frozenset(origin.encode() for origin in allowed_origins)

    def admit(self, scope: Scope, headers: dict[bytes, bytes]) -> bytes | None:
        """Raise 421 for a Host not served, 403 for an Origin not allowed; return a cross origin to answer."""
        host = headers.get(b"host")
        served = not self._checks_host or (host is not None and self._serves(host))
        if host is not None and not served and scope["path"] not in _PROBE_PATHS:
            # RFC 9110 15.5.20: 421, the server is not willing to answer for this authority.
            raise GatewayError(
                421,
                "this gateway does not serve the host named in the Host header; "
                "list the name in MINI_LLM_ALLOWED_HOSTS to serve it",
                code="host_not_allowed",
            )
        origin = headers.get(b"origin")
        if origin is None:
            return None
        scheme: str = scope["scheme"]
        # Same origin only on a served Host: a rebound name's page must not count as the gateway's own.
        if served and host is not None and origin == scheme.encode() + b"://" + host.lower():
            return None  # the gateway's own page: same origin, no CORS headers needed
        if origin in self._origins:
            return origin
        raise GatewayError(
            403,
            "requests from this origin are not allowed: a browser page may call the gateway only from "
            "its own origin or one listed in MINI_LLM_ALLOWED_ORIGINS",
            code="origin_not_allowed",
        )

    def _serves(self, host: bytes) -> bool:
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            name = host_name(host.decode("latin-1"))
            verdict = is_loopback(name) or name in self._served
            if len(self._host_verdicts) < _HOST_VERDICTS_KEPT:
                self._host_verdicts[host] = verdict
        return verdict


def is_preflight(method: str, headers: dict[bytes, bytes]) -> bool:
    """A CORS preflight (Fetch standard 4.8): OPTIONS with Origin and Access-Control-Request-Method."""
    return method == "OPTIONS" and b"origin" in headers and b"access-control-request-method" in headers


def preflight_headers(origin: bytes, methods: bytes, headers: dict[bytes, bytes]) -> Headers:
    """The answer to an allowed origin's preflight: the path's methods, and the headers the SDKs send.

    Authorization cannot be covered by a `*` wildcard (Fetch standard 3.2.6), so the names are
    listed: the fixed ones, plus any requested one of the SDKs' header families.
    """
    # A dict keeps the order names came in and finds a repeated one in O(1).
    allowed = dict.fromkeys(_ALLOWED_HEADERS)
    for asked in headers.get(b"access-control-request-headers", b"").split(b","):
        name = asked.strip().lower()
        if name.startswith(_ALLOWED_HEADER_PREFIXES):
            allowed[name] = None
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", methods),
        (b"access-control-allow-headers", b", ".join(allowed)),
        (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
        # With the relay's `Vary: Origin`; repeated Vary lines combine (RFC 9110 5.3).
        (b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers"),
    ]


def cors_headers(origin: bytes) -> Headers:
    """What an allowed cross origin needs to read the response (the relay adds `Vary: Origin` to every answer)."""
    return [
        (b"access-control-allow-origin", origin),
        (b"access-control-expose-headers", b"*"),  # x-request-id, retry-after, x-ratelimit-*, ...
    ]


def with_headers(send: Send, added: Headers) -> Send:
    """`send` that appends `added` to the headers of the response start, and only there.

    A plain function handing back `send`'s awaitable: no coroutine of its own for every body chunk.
    """

    def send_with_headers(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            # Every sender builds a fresh message dict: updating it in place saves a copy per response.
            message["headers"] = [*message["headers"], *added]
        return send(message)

    return send_with_headers
