"""Watches a relayed stream's events on the side, for the access log: count, first token, usage, end."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from mini_llm.errors import Dialect
from mini_llm.hotpath import SSEEvent


class _Usage(msgspec.Struct):
    usage: dict[str, Any] | None = None


class _AnthropicStart(msgspec.Struct):
    message: _Usage


class _Error(msgspec.Struct):
    error: Any = None


_USAGE = msgspec.json.Decoder(_Usage)
_ANTHROPIC_START = msgspec.json.Decoder(_AnthropicStart)
_ERROR = msgspec.json.Decoder(_Error)


class StreamObserver:
    """What the access log says about a stream; it reads events, it never changes or ends one."""

    __slots__ = (
        "done",
        "error",
        "events",
        "first_token",
        "malformed",
        "opened_with_error",
        "protocol",
        "started",
        "truncated",
        "usage",
    )

    def __init__(self, protocol: Dialect) -> None:
        self.protocol = protocol
        self.started = time.perf_counter()
        self.events = 0
        self.first_token: float | None = None
        self.usage: dict[str, Any] = {}
        self.done = False
        self.error = False
        self.truncated = False
        self.malformed = 0
        # Whether the stream's first event was an error: the failover's test at the commit point. An error
        # later in the same read is no longer the first event, and goes to the client as it came.
        self.opened_with_error = False

    def observe(self, event: SSEEvent) -> None:
        """Never raises: an event it cannot read only leaves the usage unknown, it never ends a relay."""
        self.events += 1
        try:
            self._observe(event)
        except Exception:  # e.g. RecursionError from a deeply nested `usage`: count it, relay on
            self.malformed += 1
        if self.events == 1:
            self.opened_with_error = self.error

    def _observe(self, event: SSEEvent) -> None:
        data = event.data
        if self.protocol == "anthropic":
            self._anthropic(event.event, data)
        elif data == "[DONE]":
            self.done = True
        else:
            if self.first_token is None and '"content":""' not in data:
                self.first_token = time.perf_counter()
            # An error chunk: `{"error": {...}}`, or a chunk with an `error` member besides its others (some
            # OpenAI-compatible providers send `{"id": ..., "object": "chat.completion.chunk", "error": {...}}`).
            # The substring test keeps the decode off every ordinary chunk.
            if '"error"' in data and _ERROR.decode(data).error is not None:
                self.error = True
            elif '"usage":{' in data:
                self.usage.update(_USAGE.decode(data).usage or {})

    def _anthropic(self, name: str, data: str) -> None:
        if name == "content_block_delta":
            if self.first_token is None:
                self.first_token = time.perf_counter()
        elif name == "message_start":
            self.usage.update(_ANTHROPIC_START.decode(data).message.usage or {})
        elif name == "message_delta":
            self.usage.update(_USAGE.decode(data).usage or {})
        elif name == "message_stop":
            self.done = True
        elif name == "error":
            self.error = True

    def log_fields(self) -> str:
        ttft = f"{(self.first_token - self.started) * 1000:.1f}" if self.first_token else "-"
        usage = ",".join(f"{k}={v}" for k, v in self.usage.items() if isinstance(v, int)) or "-"
        state = "error" if self.error else "truncated" if self.truncated else "done" if self.done else "eof"
        return f"events={self.events} ttft_ms={ttft} usage={usage} malformed={self.malformed} end={state}"
