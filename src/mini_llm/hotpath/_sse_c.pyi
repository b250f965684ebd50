"""Stub of the compiled SSE splitter (ext/_sse_c.pyx); behaviour is documented in mini_llm.hotpath._sse_py."""

from typing import ClassVar

from typing_extensions import disjoint_base

__all__ = ["SSEEvent", "SSESplitter"]

@disjoint_base
class SSEEvent:
    """One dispatched event; `raw` keeps the frame's exact bytes so a relay can forward or log them."""

    def __init__(self, event: str, data: str, id: str, raw: bytes) -> None: ...
    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def raw(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@disjoint_base
class SSESplitter:
    """Incremental `text/event-stream` parser: bytes in, complete events out, memory capped per frame."""

    def __init__(self, max_event_size: int = ...) -> None: ...
    @property
    def retry(self) -> int | None: ...
    @property
    def last_event_id(self) -> str: ...
    @property
    def pending(self) -> int:
        """Bytes not yet in a dispatched or discarded frame; non-zero at EOF means a truncated stream."""
    def feed(self, chunk: bytes | bytearray | memoryview) -> list[SSEEvent]:
        """Parse `chunk` and return the events whose blank line it contains, in stream order."""
