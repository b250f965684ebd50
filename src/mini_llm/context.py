"""Per-worker state built in lifespan, and the per-request view handlers work on."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from mini_llm.asgi import Receive, Scope, Send
from mini_llm.config import Settings
from mini_llm.errors import Protocol
from mini_llm.routing import Router
from mini_llm.upstream import Upstream


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a handler needs; immutable apart from the pool and the key rotation."""

    settings: Settings
    router: Router
    upstream: Upstream
    drain_marker: str | None
    started_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def draining(self) -> bool:
        """True once `mini-llm serve` got SIGTERM (it creates the marker file for its workers)."""
        return self.drain_marker is not None and os.path.exists(self.drain_marker)


@dataclass(slots=True)
class Request:
    """One HTTP request; `status` and `note` are filled in for the access log."""

    scope: Scope
    receive: Receive
    send: Send
    headers: dict[bytes, bytes]
    protocol: Protocol
    started: bool = False
    client_gone: bool = False
    status: int = 0
    note: str = ""

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path
