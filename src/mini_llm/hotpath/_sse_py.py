"""Pure-Python SSE splitter (WHATWG HTML §9.2.6): the reference the compiled twin is tested against."""

from __future__ import annotations

from typing import Final, NoReturn

from mini_llm.hotpath.errors import DEFAULT_MAX_EVENT_SIZE, EventTooLarge

__all__ = ["SSEEvent", "SSESplitter"]

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 0x0A


class SSEEvent:
    """One dispatched event; `raw` keeps the frame's exact bytes so a relay can forward or log them."""

    __slots__ = ("data", "event", "id", "raw")

    def __init__(self, event: str, data: str, id: str, raw: bytes) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSEEvent):
            return NotImplemented
        return self.event == other.event and self.data == other.data and self.id == other.id and self.raw == other.raw

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, raw={self.raw!r})"


class SSESplitter:
    """Incremental `text/event-stream` parser: bytes in, complete events out, memory capped per frame.

    Lines are split on bytes and each complete line is decoded on its own, so a UTF-8 character cut
    by a read is never corrupted (0x0A, 0x0D, 0x20 and 0x3A never occur inside a multi-byte
    sequence). The frame size limit counts every byte of the frame except its terminating blank
    line, checked at each line end and at the end of each chunk, so whether it trips does not
    depend on how the stream was cut.
    """

    __slots__ = (
        "_bom",
        "_broken",
        "_data",
        "_event",
        "_frame",
        "_id",
        "_line_off",
        "_max",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be at least 1, got {max_event_size}")
        self._max = max_event_size
        # Raw bytes of the current frame read by earlier feeds; its tail from `_line_off` on is the
        # line still waiting for its end.
        self._frame = bytearray()
        self._line_off = 0
        # Bytes held at stream start while they may still be a BOM; None once decided.
        self._bom: bytes | None = b""
        self._skip_lf = False
        self._data: list[str] = []
        self._event = ""
        self._id = ""
        self._retry: int | None = None
        # Frame size that tripped the limit; 0 while the splitter is usable.
        self._broken = 0

    @property
    def retry(self) -> int | None:
        return self._retry

    @property
    def last_event_id(self) -> str:
        return self._id

    @property
    def pending(self) -> int:
        """Bytes not yet in a dispatched or discarded frame; non-zero at EOF means a truncated stream."""
        if self._broken:
            return self._broken
        return len(self._frame) + len(self._bom or b"")

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[SSEEvent]:
        """Parse `chunk` and return the events whose blank line it contains, in stream order."""
        if self._broken:
            raise EventTooLarge(self._broken_message())
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        n = len(chunk)
        if not n:
            return []
        pos = 0
        frame = self._frame
        if self._bom is not None:
            # WHATWG §9.2.6: one U+FEFF at the very start of the stream is dropped, even across reads.
            held = self._bom
            seen = held + chunk[: 3 - len(held)]
            if _BOM.startswith(seen):
                if len(seen) < 3:
                    self._bom = seen
                    return []
                pos = 3 - len(held)
            else:
                frame += held  # not a BOM after all: the held bytes start the first line
            self._bom = None
        if self._skip_lf:
            # A CR ended the previous chunk and already ended its line; its LF must not end another.
            self._skip_lf = False
            if pos < n and chunk[pos] == _LF:
                pos += 1
                if frame and len(frame) + 1 > self._max:
                    self._overflow(len(frame) + 1)
        frame_start = 0 if frame else pos
        carry = bytes(frame[self._line_off :]) if len(frame) > self._line_off else b""
        events: list[SSEEvent] = []
        find = chunk.find
        next_lf = find(b"\n", pos)
        next_cr = find(b"\r", pos)
        while next_lf >= 0 or next_cr >= 0:
            # Lines end with CRLF, LF or CR (WHATWG §9.2.5 `end-of-line`).
            if next_cr < 0 or 0 <= next_lf < next_cr:
                end = next_lf
                nxt = end + 1
            else:
                end = next_cr
                nxt = end + 1
                if nxt == n:
                    self._skip_lf = True
                elif chunk[nxt] == _LF:
                    nxt += 1
            line = chunk[pos:end]
            if carry:
                line = carry + line
                carry = b""
            if line:
                size = len(frame) + nxt - frame_start
                if size > self._max:
                    self._overflow(size)
                self._process_field(line)
            else:
                # Blank line: dispatch (WHATWG §9.2.6); a frame with no data line is discarded.
                if self._data:
                    raw = bytes(frame) + chunk[frame_start:nxt] if frame else chunk[frame_start:nxt]
                    events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._id, raw))
                    self._data = []
                self._event = ""
                frame.clear()
                frame_start = nxt
            pos = nxt
            if 0 <= next_lf < pos:
                next_lf = find(b"\n", pos)
            if 0 <= next_cr < pos:
                next_cr = find(b"\r", pos)
        size = len(frame) + n - frame_start
        if size > self._max:
            self._overflow(size)
        if not carry:
            self._line_off = len(frame) + pos - frame_start
        frame += chunk[frame_start:]
        return events

    def _process_field(self, line: bytes) -> None:
        """Apply one non-blank line (WHATWG §9.2.6 "process the field"); names are case-sensitive."""
        colon = line.find(b":")
        if colon == 0:
            return  # comment, e.g. a `: ping` keep-alive
        if colon < 0:
            name = line
            value = b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\x00" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit() accepts ASCII digits only
            self._retry = int(value)

    def _overflow(self, size: int) -> NoReturn:
        """Drop the oversize frame and stay broken: a stream cut mid-event cannot be resynchronised."""
        self._broken = size
        self._frame = bytearray()
        self._data = []
        raise EventTooLarge(f"SSE event of at least {size} bytes exceeds max_event_size={self._max} bytes")

    def _broken_message(self) -> str:
        return f"SSE splitter is unusable: an earlier event exceeded max_event_size={self._max} bytes"
