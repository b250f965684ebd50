"""Per-worker state built in lifespan, and the per-request view handlers work on."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mini_llm.asgi import Receive, Scope, Send
from mini_llm.config import Settings
from mini_llm.errors import Dialect
from mini_llm.gateway.failover import Failover
from mini_llm.gateway.open_streams import OpenStreams, drain_timed_out
from mini_llm.gateway.routing import Router
from mini_llm.upstream.clients import UpstreamClients


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a handler needs; the settings are frozen, the worker's mutable state has its own objects.

    That state (upstream pools, key cooldowns and rotation, breakers, open streams) is per worker:
    each worker of a server keeps its own.
    """

    settings: Settings
    router: Router
    upstreams: UpstreamClients
    drain_marker: str | None
    started_at: int = field(default_factory=lambda: int(time.time()))
    streams: OpenStreams = field(init=False)
    failover: Failover = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", OpenStreams(self.settings.stream_buffer_bytes))
        object.__setattr__(self, "failover", Failover(self.settings, self.settings.providers))

    @property
    def draining(self) -> bool:
        """True once `mini-llm serve` got SIGTERM (it creates the marker file for its workers)."""
        return self.drain_marker is not None and os.path.exists(self.drain_marker)

    def begin_drain(self) -> None:
        """The server started draining: streams still open at the drain timeout end with an error event.

        granian stops accepting after the drain delay and kills the worker a moment after the drain
        timeout; ending the streams first gives each client an error event and a proper end.
        """
        settings = self.settings
        asyncio.get_running_loop().call_later(
            settings.drain_delay + settings.drain_timeout,
            self.streams.end_all,
            drain_timed_out(settings.drain_timeout),
        )


@dataclass(slots=True)
class Request:
    """One HTTP request; `status` and `note` are filled in for the access log."""

    scope: Scope
    receive: Receive
    send: Send
    headers: dict[bytes, bytes]
    protocol: Dialect
    started: bool = False
    client_gone: bool = False
    status: int = 0
    note: str = ""
    # x-mini-llm-target and x-mini-llm-attempts, once the attempts are over; error answers carry them too.
    routing_headers: Sequence[tuple[bytes, bytes]] = ()

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path
