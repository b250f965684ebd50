"""Everything that talks to a provider, behind one interface the pipeline owns.

The pipeline sees only `Upstream` and `UpstreamResponse`: status, headers as `(bytes, bytes)`
pairs, and the body through `read()` or `chunks()`. No client library's type crosses this line,
so the built-in mock provider, the fast HTTP/1.1 client and the aiohttp client are
interchangeable per provider. Every failure is raised as the gateway's own 502 or 504.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final, Protocol

from mini_llm.providers import Target

# The body as the buffers that go out in order: the client's bytes, or three views around a new model.
Body = Sequence[bytes | memoryview]

# RFC 9110 9.3.1 and 9.3.5: content in a GET or DELETE has no defined meaning, so such a request goes
# without one, and without Content-Type and Content-Length (8.6); a POST always has a Content-Length.
BODILESS_METHODS: Final = frozenset({"GET", "DELETE"})


class UpstreamResponse(Protocol):
    """One provider answer whose status line and headers are in; the body is read once, either way."""

    status: int
    # Header names in lower case, values as sent, in order, repeated headers kept.
    headers: list[tuple[bytes, bytes]]
    # The length the framing declares (Content-Length), None when the body is chunked or close-delimited.
    content_length: int | None

    @property
    def is_event_stream(self) -> bool:
        """True for `text/event-stream`: relayed event by event."""
        ...

    async def read(self) -> bytes:
        """The whole body; raises a GatewayError (502/504) if the provider fails on the way."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece as it arrives, with the same errors as `read`."""
        ...

    def close(self) -> None:
        """Release the answer: a no-op after a complete read, else the connection is dropped."""
        ...


class Upstream(Protocol):
    """A way to reach providers: opened in lifespan start-up, closed at shutdown."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(
        self, target: Target, path: str, body: Body, client: Mapping[bytes, bytes], *, method: str = "POST"
    ) -> UpstreamResponse:
        """Send the body to `path` (a query string included) of the target's provider; return once the
        status line and headers are in. A method in BODILESS_METHODS sends no body (`body` is empty)."""
        ...


def joined(body: Body) -> bytes | memoryview:
    """The body as one buffer, for a client that writes one: a copy only when it is in pieces."""
    return body[0] if len(body) == 1 else b"".join(body)


def header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of one (lower-case) header name, in order."""
    return [value for key, value in headers if key == name]


def is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the media type (parameters aside, any case) is `text/event-stream` (RFC 9110 8.3.1)."""
    for key, value in headers:
        if key == b"content-type":
            return value.partition(b";")[0].strip().lower() == b"text/event-stream"
    return False
