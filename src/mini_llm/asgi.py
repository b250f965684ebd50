"""The ASGI vocabulary the gateway uses, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """Request headers keyed by lowercase name; repeated headers are joined with a comma (RFC 9110 5.3)."""
    out: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        key = name.lower()
        out[key] = out[key] + b"," + value if key in out else value
    return out
