"""The headers a request carries upstream: the client's, minus what must not travel, plus the provider's auth."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from mini_llm.errors import clip
from mini_llm.providers import DEFAULT_ANTHROPIC_VERSION, Target

logger = logging.getLogger("mini_llm")

# RFC 9110 7.6.1 hop-by-hop fields, plus what the gateway sets itself or must never forward:
# the client's own credentials and tenancy headers, cookies, where the client is (the provider
# does not need the caller's address), the body framing and coding (the body was read as plain
# JSON, RFC 9110 8.4), the path the request took (Via), the page that sent it (Origin, Referer),
# and method overrides, which would turn the gateway's POST into another method at a provider or a
# proxy that honours them.
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
        b"content-encoding",
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
        b"via",
        b"cookie",
        b"openai-organization",
        b"openai-project",
        b"expect",
        b"content-type",
        b"x-http-method-override",
        b"x-http-method",
        b"x-method-override",
        b"origin",
        b"referer",
    }
)
# What a browser adds about the page and itself (Fetch metadata, client hints): the provider does
# not need it, and Anthropic's API refuses a request with an Origin as a browser's direct access.
_DROPPED_REQUEST_PREFIX: Final = b"sec-"


# How many header names the warning below is logged for, per worker: the client picks the names.
WARNED_NAMES_LIMIT: Final = 64
_warned_names: set[str] = set()


def _warn_not_utf8(field: str) -> None:
    """Once per header name per worker: a client repeating a bad header would otherwise fill the log."""
    if field in _warned_names or len(_warned_names) >= WARNED_NAMES_LIMIT:
        return
    _warned_names.add(field)
    further = "; no further names are logged" if len(_warned_names) == WARNED_NAMES_LIMIT else ""
    logger.warning(
        "request header %s not forwarded: it is not valid UTF-8 (logged once per name%s)", clip(field), further
    )


def forwarded_headers(client: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """The client's headers that travel upstream, as sent: hop-by-hop fields and credentials stay behind.

    Both upstream clients send exactly these, so a provider sees the same request whichever one
    serves it. Names with `_` are dropped, as nginx does by default (underscores_in_headers off):
    a server that maps `-` and `_` alike would read `X_Api_Key` as `X-Api-Key`. A value that is
    not valid UTF-8 is dropped (and logged) rather than altered: the aiohttp client writes header
    strings as UTF-8, so it could not send those bytes as they came. granian refuses control
    characters in headers before the app sees them.
    """
    dropped = _DROPPED_REQUEST_HEADERS
    listed = client.get(b"connection")
    if listed:
        # RFC 9110 7.6.1: headers named in Connection are hop-by-hop too.
        dropped = dropped | {token.strip().lower() for token in listed.split(b",")}
    forwarded: list[tuple[bytes, bytes]] = []
    for name, value in client.items():
        if name in dropped or b"_" in name or name.startswith(_DROPPED_REQUEST_PREFIX):
            continue
        if not value.isascii():
            try:
                value.decode()
            except UnicodeDecodeError:
                _warn_not_utf8(name.decode("latin-1"))  # a name is a token, so ASCII (RFC 9110 5.6.2)
                continue
        forwarded.append((name, value))
    return forwarded


def fixed_headers(target: Target, content: bool = True) -> list[tuple[bytes, bytes]]:
    """What every request to the target carries whatever the client sent: the provider's auth, the body's type.

    Keys are checked at start-up to be printable ASCII without spaces: nothing can break a line.
    The body was validated as a JSON object, whatever the client labelled it (curl -d says form).
    A request without `content` (a GET or DELETE) has no body to give a type (RFC 9110 8.3).
    """
    key = target.key
    fixed: list[tuple[bytes, bytes]] = []
    if key is not None:
        if target.provider.protocol == "anthropic":
            fixed.append((b"x-api-key", key.encode()))
        else:
            fixed.append((b"Authorization", b"Bearer " + key.encode()))
    if content:
        fixed.append((b"Content-Type", b"application/json"))
    fixed.append((b"Accept-Encoding", b"identity"))
    return fixed


def needs_default_version(target: Target) -> bool:
    """Anthropic requires `anthropic-version`: a request whose client sent none gets the default."""
    return target.provider.protocol == "anthropic"


def upstream_headers(target: Target, client: Mapping[bytes, bytes], content: bool = True) -> dict[str, str]:
    """The aiohttp client's headers: the forwarded ones plus the fixed ones."""
    headers = {name.decode("latin-1"): value.decode() for name, value in forwarded_headers(client)}
    headers.update((name.decode(), value.decode()) for name, value in fixed_headers(target, content))
    if needs_default_version(target):
        headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    return headers
