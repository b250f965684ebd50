"""Which of a provider's response headers reach the client, and in what state: scrubbed and sendable."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

from mini_llm.asgi import Headers
from mini_llm.errors import CLIP_CHARS
from mini_llm.gateway.scrub import mask
from mini_llm.providers import Target

logger = logging.getLogger("mini_llm")

# What clients use. Never Content-Encoding or Content-Length: the body is relayed decoded, and
# granian frames it itself (RFC 9110 8.4, 8.6: both describe the bytes as the provider sent them).
_RELAYED: Final = frozenset(
    {
        b"content-type",
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
_RELAYED_PREFIXES: Final = (b"x-ratelimit-", b"anthropic-ratelimit-")
# RFC 9110 5.5: a field value is visible characters, spaces, tabs and obs-text; granian refuses
# the rest (the other C0 controls and DEL) and would answer the whole response with a 500.
_CONTROL: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def relayed_headers(raw: Iterable[tuple[bytes, bytes]], secret: bytes | None) -> Headers:
    """The provider headers clients use, the key masked; a value that cannot be sent is dropped.

    All values are checked in one pass over them joined (a tab is a legal value byte); only an
    answer with something to fix pays for the per-header work.
    """
    out: Headers = []
    for name, value in raw:  # names are lower case already (UpstreamResponse.headers)
        if name in _RELAYED or name.startswith(_RELAYED_PREFIXES):
            out.append((name, value))
    values = b"\t".join([value for _, value in out])
    if _CONTROL.search(values):
        out = _sendable(out)
    if secret and secret in values:
        out = [(name, mask(value, secret)) for name, value in out]
    return out


def _sendable(headers: Headers) -> Headers:
    kept: Headers = []
    for name, value in headers:
        if _CONTROL.search(value):
            # NOTE: never the value: it is the provider's, and may hold anything.
            logger.warning("dropped the provider's %s header: its value has a control character", name.decode())
        else:
            kept.append((name, value))
    return kept


# x-mini-llm-target values by (provider, model), made once each: the set is small, but a client can send any
# `provider:model`, so it starts over past this many.
_TARGETS_LIMIT: Final = 4096
_target_values: dict[tuple[str, str], bytes] = {}
_COUNTS: Final = tuple(str(count).encode() for count in range(64))


# On an answer given before any attempt (a 400 for the request itself): no provider was asked.
NO_ATTEMPTS: Final = ((b"x-mini-llm-attempts", b"0"),)


def routing_headers(answered_by: Target | None, attempts: int) -> Headers:
    """`x-mini-llm-target` (the target that answered, if one did) and `x-mini-llm-attempts` (requests sent).

    The model may be a client's own text: anything a field value cannot carry (RFC 9110 5.5) is
    percent-encoded, so the header can never split a response, and a long name is cut.
    """
    count = (b"x-mini-llm-attempts", _COUNTS[attempts] if attempts < len(_COUNTS) else str(attempts).encode())
    if answered_by is None:
        return [count]
    hop = (answered_by.provider.name, answered_by.model[:CLIP_CHARS])  # a client's model may be megabytes
    value = _target_values.get(hop)
    if value is None:
        value = _target_value(*hop)
        if len(_target_values) >= _TARGETS_LIMIT:
            _target_values.clear()
        _target_values[hop] = value
    return [(b"x-mini-llm-target", value), count]


def _target_value(provider: str, model: str) -> bytes:
    text = f"{provider}:{model}" if model else provider  # no model: a by-id route of the Responses API
    if not (text.isascii() and text.isprintable()) or text != text.strip():
        text = quote(text, safe=":/@+=,;._-~")
    return text.encode()
