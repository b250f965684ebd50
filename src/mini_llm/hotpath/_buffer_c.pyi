"""Stub of the compiled body buffer (ext/_buffer_c.pyx); behaviour is documented in mini_llm.hotpath._buffer_py."""

from typing_extensions import disjoint_base

__all__ = ["BodyBuffer"]

@disjoint_base
class BodyBuffer:
    """Collects an ASGI request body under a byte limit, copying nothing when it came in one piece."""

    def __init__(self, limit: int, expected: int = -1) -> None: ...
    @property
    def limit(self) -> int: ...
    def __len__(self) -> int: ...
    def append(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add `chunk`, or raise BodyTooLarge and keep the body as it was."""
    def view(self) -> memoryview:
        """Read-only view of the body so far; a one-chunk body is a view of that very chunk."""
