"""One error type carrying status and a safe message, rendered in each client protocol's shape."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from mini_llm.asgi import Headers

Dialect = Literal["openai", "anthropic"]
# The event vocabulary of a stream: chat completions (OpenAI), messages (Anthropic) or OpenAI's Responses API.
EventFormat = Literal["openai", "anthropic", "responses"]

# How much of a client-supplied value an error message or the access log quotes.
CLIP_CHARS: Final = 200

_OPENAI_TYPES: Final = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES: Final = {
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def clip(value: str) -> str:
    """The value quoted (repr) and cut to CLIP_CHARS: a 5 MB model name must not become 5 MB of log."""
    if len(value) <= CLIP_CHARS:
        return repr(value)
    return f"{value[:CLIP_CHARS]!r}... ({len(value)} characters)"


class GatewayError(Exception):
    """An error whose message is safe to show a client: no key, no stack trace."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Headers | None = None,
        openai_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers: Headers = headers or []  # extra response headers, e.g. Allow on a 405
        # The OpenAI `type` when OpenAI's own API uses another than the status's usual one
        # (a bad key is 401 invalid_request_error, code invalid_api_key).
        self.openai_type = openai_type


class UpstreamUnreachable(GatewayError, ConnectionError):
    """The provider could not be reached or dropped the connection (502).

    `outcome` names it in the access log's list of attempts: "unreachable" (no connection), "reset" (the
    connection broke before the answer was in), "cut" (a stream ended before its first event),
    "oversized-event", "bad-encoding" (a Content-Encoding the gateway cannot undo).
    """

    def __init__(self, message: str, outcome: str = "unreachable") -> None:
        super().__init__(502, message, code="upstream_unreachable")
        self.outcome = outcome


class UpstreamTimeout(GatewayError, TimeoutError):
    """The provider went silent for longer than MINI_LLM_UPSTREAM_TIMEOUT (504).

    `outcome` is "timeout", or "pool-full" when no connection came free in that time: the provider was not asked.
    """

    def __init__(self, message: str, outcome: str = "timeout") -> None:
        super().__init__(504, message, code="upstream_timeout")
        self.outcome = outcome


def openai_type(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _OPENAI_TYPES.get(status, "invalid_request_error")


def anthropic_type(status: int) -> str:
    if status in _ANTHROPIC_TYPES:
        return _ANTHROPIC_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(protocol: Dialect, error: GatewayError) -> bytes:
    """The JSON body the protocol's SDK turns into its own exception class."""
    if protocol == "anthropic":
        return msgspec.json.encode(
            {"type": "error", "error": {"type": anthropic_type(error.status), "message": error.message}}
        )
    return msgspec.json.encode(
        {
            "error": {
                "message": error.message,
                "type": error.openai_type or openai_type(error.status),
                "param": error.param,
                "code": error.code,
            }
        }
    )


def stream_error_event(events: EventFormat, error: GatewayError, sequence_number: int = 0) -> bytes:
    """An SSE frame reporting an error after the 200 status went out.

    OpenAI's stream is bare `data:` events (https://platform.openai.com/docs/api-reference/chat-streaming),
    so the error object goes in one; Anthropic names it `event: error`
    (https://docs.anthropic.com/en/api/messages-streaming#error-events). The Responses API names it too,
    with the error's fields at the top level and the stream's next `sequence_number`
    (https://platform.openai.com/docs/api-reference/responses-streaming/error): the events relayed
    before it, as the provider numbers them from 0.
    """
    if events == "responses":
        event = {
            "type": "error",
            "code": error.code or openai_type(error.status),
            "message": error.message,
            "param": error.param,
            "sequence_number": sequence_number,
        }
        return b"event: error\ndata: " + msgspec.json.encode(event) + b"\n\n"
    body = error_body(events, error)
    if events == "anthropic":
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"


class ClientDisconnected(Exception):
    """The client went away before the request was read; there is nobody left to answer."""
