"""Pure-Python request-body buffer: the reference the compiled twin is tested against."""

from __future__ import annotations

from mini_llm.hotpath.errors import BodyTooLarge

__all__ = ["BodyBuffer"]

_MIN_GROWTH = 64 * 1024
# Trust a declared Content-Length only this far ahead of the bytes actually received, so a client
# that announces a large body and sends little cannot make the gateway allocate it all.
_PRESIZE_AHEAD = 1024 * 1024


class BodyBuffer:
    """Collects an ASGI request body under a byte limit, copying nothing when it came in one piece.

    The first chunk is kept by reference; a second one moves both into a bytearray sized to
    `expected` (the Content-Length) or grown by doubling, so buffering stays linear. Growth makes a
    new bytearray instead of resizing in place, so a view taken earlier never blocks an append.
    """

    __slots__ = ("_buf", "_expected", "_first", "_limit", "_size")

    def __init__(self, limit: int, expected: int = -1) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if expected < -1:
            raise ValueError(f"expected must be a length or -1, got {expected}")
        if expected > limit:
            raise BodyTooLarge(f"request body of {expected} bytes exceeds the limit of {limit} bytes")
        self._limit = limit
        self._expected = expected
        self._first: bytes | bytearray | memoryview = b""
        self._buf: bytearray | None = None
        self._size = 0

    @property
    def limit(self) -> int:
        return self._limit

    def __len__(self) -> int:
        return self._size

    def append(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add `chunk`, or raise BodyTooLarge and keep the body as it was."""
        n = len(chunk) if isinstance(chunk, (bytes, bytearray)) else memoryview(chunk).nbytes
        if not n:
            return
        size = self._size + n
        if size > self._limit:
            raise BodyTooLarge(f"request body exceeds the limit of {self._limit} bytes")
        buf = self._buf
        if buf is None:
            if not self._size:
                self._first = chunk
                self._size = size
                return
            buf = self._grow(size)
            buf[: self._size] = self._first
            self._first = b""
        elif size > len(buf):
            old = buf
            buf = self._grow(size)
            buf[: self._size] = memoryview(old)[: self._size]
        buf[self._size : size] = chunk
        self._size = size

    def view(self) -> memoryview:
        """Read-only view of the body so far; a one-chunk body is a view of that very chunk."""
        if self._buf is None:
            return memoryview(self._first).cast("B").toreadonly()
        return memoryview(self._buf)[: self._size].toreadonly()

    def _grow(self, size: int) -> bytearray:
        grown = max(2 * size, _MIN_GROWTH)
        capacity = min(self._expected, max(grown, _PRESIZE_AHEAD)) if self._expected >= size else grown
        self._buf = bytearray(min(capacity, self._limit))
        return self._buf
