"""Per-worker state built in lifespan, and the per-request view handlers work on."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mini_llm.asgi import Headers, Receive, Scope, Send
from mini_llm.config import Settings
from mini_llm.errors import Dialect
from mini_llm.gateway.failover import AttemptRecord, Failover
from mini_llm.gateway.open_streams import OpenStreams, drain_timed_out
from mini_llm.gateway.relay import StreamOutcome
from mini_llm.gateway.request_ids import GATEWAY_HEADER, HEADER, RequestIds
from mini_llm.gateway.routing import Router
from mini_llm.gateway.sending import send_whole
from mini_llm.metrics.recorder import Recorder
from mini_llm.providers import Target
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
    metrics: Recorder = field(init=False)
    request_ids: RequestIds = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", OpenStreams(self.settings.stream_buffer_bytes))
        object.__setattr__(self, "failover", Failover(self.settings, self.settings.providers))
        object.__setattr__(self, "metrics", Recorder(self.settings, self.failover))
        object.__setattr__(self, "request_ids", RequestIds())

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
    """One HTTP request, and the facts about it that the access log and the metrics read when it is over."""

    scope: Scope
    receive: Receive
    send: Send
    headers: dict[bytes, bytes]
    protocol: Dialect
    started: bool = False
    client_gone: bool = False
    status: int = 0
    note: str = ""  # the text access line's routing and stream fields, made only when the log is on
    error: str | None = None  # the gateway's error message, when it answered with one or cut the answer
    # x-mini-llm-target and x-mini-llm-attempts, once the attempts are over; error answers carry them too.
    routing_headers: Sequence[tuple[bytes, bytes]] = ()
    request_id: str = ""  # the client's x-request-id if usable, else one the gateway made
    began: float = 0.0  # time.perf_counter() when the request arrived
    route: str = ""  # the metrics' route label: the route's path ({id} for by-id paths), or "unknown"
    upstream_wait: float = 0.0  # seconds spent waiting on providers (their answers, and the waits they asked for)
    model: str | None = None  # the model the client asked for (alias, provider:model or a name)
    target: Target | None = None  # the target that answered
    attempts: Sequence[AttemptRecord] = ()
    cooldowns: Sequence[tuple[str, str]] = ()  # (provider, reason) for each key this request cooled
    stream_outcome: StreamOutcome | None = None  # None if no stream went out
    events: int = 0
    ttft: float | None = None  # seconds from arrival to the stream's first token
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    def gateway_headers(self, relayed: Sequence[tuple[bytes, bytes]] = (), *, whole: bool = True) -> Headers:
        """The gateway's own headers on an answer: routing, the request id and, on a whole answer, the overhead.

        The id goes in x-request-id too unless the provider's answer has its own there (OpenAI's, which its
        SDK reads for support requests): the provider's is relayed as it came, and x-mini-llm-request-id
        carries the gateway's on every answer.
        """
        request_id = self.request_id.encode()
        headers = [*self.routing_headers, (GATEWAY_HEADER, request_id)]
        if not any(name == HEADER for name, _ in relayed):
            headers.append((HEADER, request_id))
        if whole:
            overhead = (time.perf_counter() - self.began - self.upstream_wait) * 1000
            headers.append((b"x-mini-llm-overhead-ms", f"{overhead:.3f}".encode()))
        return headers

    async def answer(self, status: int, headers: Headers, body: bytes) -> None:
        """A whole answer of the gateway's own (not a provider's), with the gateway's headers."""
        self.status = status
        await send_whole(self.send, status, [*headers, *self.gateway_headers()], body)
