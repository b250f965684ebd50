"""Watches a relayed stream's events on the side, for the log and the metrics: count, first token, usage, end."""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec

from mini_llm.errors import EventFormat
from mini_llm.gateway.usage import Tokens, usage_tokens
from mini_llm.hotpath import SSEEvent

__all__ = ["EventFormat", "StreamObserver"]


class _Usage(msgspec.Struct):
    usage: dict[str, Any] | None = None


class _AnthropicStart(msgspec.Struct):
    message: _Usage


class _Code(msgspec.Struct):
    code: Any = None


class _EndedResponse(msgspec.Struct):
    usage: dict[str, Any] | None = None
    error: _Code | None = None


class _ResponsesEnd(msgspec.Struct):
    response: _EndedResponse


class _Typed(msgspec.Struct):
    type: str = ""


class _Delta(msgspec.Struct):
    content: Any = None
    refusal: Any = None
    reasoning_content: Any = None
    reasoning: Any = None
    tool_calls: Any = None
    function_call: Any = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    text: Any = None  # the legacy completions API


class _Chunk(msgspec.Struct):
    choices: list[_Choice] | None = None


def _has_output(choice: _Choice) -> bool:
    """Whether a chunk's choice carries something generated: text, a refusal, reasoning or a tool call."""
    delta = choice.delta
    if delta is None:
        return bool(choice.text)
    return bool(
        delta.content or delta.refusal or delta.reasoning_content or delta.reasoning or delta.tool_calls
    ) or bool(delta.function_call)


class _Error(msgspec.Struct):
    error: Any = None


_USAGE = msgspec.json.Decoder(_Usage)
_ANTHROPIC_START = msgspec.json.Decoder(_AnthropicStart)
_RESPONSES_END = msgspec.json.Decoder(_ResponsesEnd)
_TYPED = msgspec.json.Decoder(_Typed)
_ERROR = msgspec.json.Decoder(_Error)
_CHUNK = msgspec.json.Decoder(_Chunk)

# The Responses API's terminal events, each with the whole response and its `usage`
# (https://platform.openai.com/docs/api-reference/responses-streaming); `response.failed` is an error too.
_RESPONSES_ENDS: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})
# The `response.failed` codes that another attempt may not meet (openai-python's ResponseError.code): the
# others (invalid_prompt, invalid_image, image_too_large, ...) are the request's, and fail on every target.
_TRANSIENT_FAILURES: Final = frozenset({"server_error", "rate_limit_exceeded", "vector_store_timeout"})
# What a Responses stream opens with before its output: the response's state, not an answer yet. An error or a
# failure right after them is still the stream's opening, so the failover can retry it.
_RESPONSES_OPENING: Final = frozenset({"response.created", "response.queued", "response.in_progress"})


class StreamObserver:
    """What the access log says about a stream; it reads events, it never changes or ends one."""

    __slots__ = (
        "done",
        "error",
        "events",
        "final",
        "first_token",
        "malformed",
        "opened_with_error",
        "opening",
        "protocol",
        "started",
        "truncated",
        "usage",
    )

    def __init__(self, protocol: EventFormat) -> None:
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
        self.opening = 0  # the events before the first one that commits the stream (a Responses stream's state)
        self.final = False  # the error is the request's own (a response.failed for a bad prompt): no retry helps

    def observe(self, event: SSEEvent) -> None:
        """Never raises: an event it cannot read only leaves the usage unknown, it never ends a relay."""
        self.events += 1
        try:
            self._observe(event)
        except Exception:  # e.g. RecursionError from a deeply nested `usage`: count it, relay on
            self.malformed += 1
        if self.events == self.opening + 1:
            self.opened_with_error = self.error and not self.final

    @property
    def committed(self) -> bool:
        """Whether an event past the opening has come: the stream's commit point (see EventRelay.first)."""
        return self.events > self.opening

    def _observe(self, event: SSEEvent) -> None:
        data = event.data
        if self.protocol == "anthropic":
            self._anthropic(event.event, data)
        elif self.protocol == "responses":
            self._responses(event.event, data)
        elif data == "[DONE]":
            self.done = True
        else:
            # Decoded only until the first token: not the role chunk, nor a chunk without choices (Azure's
            # prompt_filter_results), nor an error; any generated output, text or tool call, is one.
            if self.first_token is None and any(_has_output(choice) for choice in _CHUNK.decode(data).choices or ()):
                self.first_token = time.perf_counter()
            # An error chunk: `{"error": {...}}`, or a chunk with an `error` member besides its others (some
            # OpenAI-compatible providers send `{"id": ..., "object": "chat.completion.chunk", "error": {...}}`).
            # The substring test keeps the decode off every ordinary chunk.
            if '"error"' in data and _ERROR.decode(data).error is not None:
                self.error = True
            # OpenAI sends `"usage":null` on every chunk when the client asked for usage: those are not decoded.
            # Other servers may put a space after the colon, so the test is on the name alone.
            elif '"usage"' in data and '"usage":null' not in data:
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

    def _responses(self, name: str, data: str) -> None:
        """The Responses API's named events; a provider that sends no `event:` line names them in `type`."""
        if name == "message":  # the SSE default: no event line
            name = _TYPED.decode(data).type
        if name in _RESPONSES_OPENING:
            if self.events == self.opening + 1:
                self.opening += 1
        elif name.endswith(".delta"):
            # Any output's delta is a first token: text, refusal, reasoning, a tool call's arguments, audio.
            if self.first_token is None:
                self.first_token = time.perf_counter()
        elif name in _RESPONSES_ENDS:
            self.done = True
            response = _RESPONSES_END.decode(data).response
            if name == "response.failed":
                self.error = True
                code = None if response.error is None else response.error.code
                self.final = code is not None and code not in _TRANSIENT_FAILURES
            self.usage.update(response.usage or {})
        elif name == "error":
            self.error = True

    def tokens(self) -> Tokens:
        """(input, output) tokens of the usage the stream reported, None where it reported none."""
        return usage_tokens(self.usage)

    def log_fields(self) -> str:
        ttft = f"{(self.first_token - self.started) * 1000:.1f}" if self.first_token else "-"
        usage = ",".join(f"{k}={v}" for k, v in self.usage.items() if isinstance(v, int)) or "-"
        state = "error" if self.error else "truncated" if self.truncated else "done" if self.done else "eof"
        return f"events={self.events} ttft_ms={ttft} usage={usage} malformed={self.malformed} end={state}"
