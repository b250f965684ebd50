# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Compiled twin of mini_llm.hotpath._sse_py: the same WHATWG SSE splitter, scanning the chunk with C pointers."""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy

from mini_llm.hotpath.errors import DEFAULT_MAX_EVENT_SIZE, EventTooLarge

__all__ = ["SSEEvent", "SSESplitter"]


cdef extern from "Python.h":
    # Declared here with `const` so pointer ranges of the chunk decode without a cast per call.
    unicode PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)


cdef enum:
    LF = 0x0A
    CR = 0x0D
    COLON = 0x3A
    SPACE = 0x20
    ZERO = 0x30
    NINE = 0x39
    LOWER_I = 0x69
    LOWER_D = 0x64

cdef const unsigned char* BOM = b"\xef\xbb\xbf"


cdef inline str decode(const unsigned char* p, Py_ssize_t n):
    # Lines are decoded whole, so a character cut by a read is never split: CR and LF never occur inside
    # a multi-byte UTF-8 sequence (RFC 3629 §3).
    return PyUnicode_DecodeUTF8(<const char*>p, n, "replace")


cdef inline Py_ssize_t find(const unsigned char* buf, Py_ssize_t pos, Py_ssize_t n, int byte) noexcept:
    """Index of `byte` in buf[pos:n], or n when absent (glibc memchr is vectorised)."""
    cdef const void* hit = memchr(buf + pos, byte, <size_t>(n - pos))
    if hit == NULL:
        return n
    return <const unsigned char*>hit - buf


cdef class SSEEvent:
    """One dispatched event; `raw` keeps the frame's exact bytes so a relay can forward or log them."""

    cdef readonly str event
    cdef readonly str data
    cdef readonly str id
    cdef readonly bytes raw

    def __init__(self, str event, str data, str id, bytes raw):
        self.event = event
        self.data = data
        self.id = id
        self.raw = raw

    def __eq__(self, other):
        if not isinstance(other, SSEEvent):
            return NotImplemented
        cdef SSEEvent o = <SSEEvent>other
        return self.event == o.event and self.data == o.data and self.id == o.id and self.raw == o.raw

    __hash__ = None

    def __repr__(self):
        return f"SSEEvent(event={self.event!r}, data={self.data!r}, id={self.id!r}, raw={self.raw!r})"


@cython.internal
cdef class Bytes:
    """A growable C byte buffer; its size is bounded by the splitter's max_event_size."""

    cdef unsigned char* ptr
    cdef Py_ssize_t len
    cdef Py_ssize_t cap

    def __dealloc__(self):
        free(self.ptr)

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.len + extra
        cdef Py_ssize_t cap = self.cap
        cdef unsigned char* grown
        if need <= cap:
            return 0
        if cap < 256:
            cap = 256
        while cap < need:
            cap *= 2
        grown = <unsigned char*>realloc(self.ptr, <size_t>cap)
        if grown == NULL:
            raise MemoryError()
        self.ptr = grown
        self.cap = cap
        return 0

    cdef inline int extend(self, const unsigned char* p, Py_ssize_t n) except -1:
        if n:
            if self.len + n > self.cap:
                self.reserve(n)
            memcpy(self.ptr + self.len, p, <size_t>n)
            self.len += n
        return 0


cdef class SSESplitter:
    """Incremental `text/event-stream` parser: bytes in, complete events out, memory capped per frame.

    Same state machine as the pure twin. Frames inside one chunk are sliced straight from it; only a
    frame that spans chunks is copied into `_frame`. Data lines are gathered in a C buffer and decoded
    once per event, which equals decoding each line since LF is never inside a UTF-8 sequence.
    """

    cdef Py_ssize_t _max
    cdef Bytes _frame
    cdef Py_ssize_t _line_off
    cdef Bytes _data
    cdef unsigned char _bom[3]
    cdef Py_ssize_t _bom_len
    cdef bint _bom_done
    cdef bint _skip_lf
    cdef str _event
    cdef bytes _event_raw
    cdef str _event_str
    cdef str _id
    cdef object _retry
    cdef Py_ssize_t _broken

    def __init__(self, Py_ssize_t max_event_size=DEFAULT_MAX_EVENT_SIZE):
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be at least 1, got {max_event_size}")
        self._max = max_event_size
        self._frame = Bytes()
        self._line_off = 0
        self._data = Bytes()
        self._bom_len = 0
        self._bom_done = False
        self._skip_lf = False
        self._event = ""
        self._event_raw = b""
        self._event_str = ""
        self._id = ""
        self._retry = None
        self._broken = 0

    @property
    def retry(self):
        return self._retry

    @property
    def last_event_id(self):
        return self._id

    @property
    def pending(self):
        if self._broken:
            return self._broken
        return self._frame.len + self._bom_len

    def feed(self, chunk):
        cdef Py_buffer view
        if self._broken:
            raise EventTooLarge(
                f"SSE splitter is unusable: an earlier event exceeded max_event_size={self._max} bytes"
            )
        if PyBytes_CheckExact(chunk):
            return self._feed(
                chunk, <const unsigned char*>PyBytes_AS_STRING(chunk), PyBytes_GET_SIZE(chunk)
            )
        PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        try:
            return self._feed(None, <const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef list _feed(self, bytes whole, const unsigned char* buf, Py_ssize_t n):
        # `whole` is the chunk when it is a bytes object, so a frame filling it is returned uncopied.
        cdef list events = []
        cdef Bytes frame = self._frame
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t k, end, nxt, frame_start
        cdef Py_ssize_t next_lf = -1
        cdef Py_ssize_t next_cr = -1
        cdef bint carry
        cdef bytes raw
        cdef SSEEvent ev
        if n == 0:
            return events
        if not self._bom_done:
            # WHATWG §9.2.6: one U+FEFF at the very start of the stream is dropped, even across reads.
            k = 0
            while self._bom_len + k < 3 and k < n and buf[k] == BOM[self._bom_len + k]:
                k += 1
            if self._bom_len + k == 3:
                pos = k
            elif k == n:
                memcpy(self._bom + self._bom_len, buf, <size_t>n)
                self._bom_len += n
                return events
            else:
                frame.extend(self._bom, self._bom_len)  # not a BOM after all: it starts the first line
            self._bom_len = 0
            self._bom_done = True
        if self._skip_lf:
            # A CR ended the previous chunk and already ended its line; its LF must not end another.
            self._skip_lf = False
            if pos < n and buf[pos] == LF:
                pos += 1
                if frame.len and frame.len + 1 > self._max:
                    self._overflow(frame.len + 1)
        frame_start = 0 if frame.len else pos
        carry = frame.len > self._line_off
        while True:
            # Lines end with CRLF, LF or CR (WHATWG §9.2.5 `end-of-line`).
            if next_lf < pos:
                next_lf = find(buf, pos, n, LF)
            if next_cr < pos:
                next_cr = find(buf, pos, n, CR)
            if next_lf < next_cr:
                end = next_lf
                nxt = end + 1
            else:
                end = next_cr
                if end == n:
                    break
                nxt = end + 1
                if nxt == n:
                    self._skip_lf = True
                elif buf[nxt] == LF:
                    nxt += 1
            if carry:
                # The line began in an earlier chunk: complete it in `_frame` and parse it from there.
                carry = False
                if frame.len + nxt > self._max:
                    self._overflow(frame.len + nxt)
                frame.extend(buf, end)
                frame_start = end
                self._field(frame.ptr + self._line_off, frame.len - self._line_off)
            elif end > pos:
                if frame.len + nxt - frame_start > self._max:
                    self._overflow(frame.len + nxt - frame_start)
                self._field(buf + pos, end - pos)
            else:
                # Blank line: dispatch (WHATWG §9.2.6); a frame with no data line is discarded.
                if self._data.len:
                    if frame.len:
                        raw = PyBytes_FromStringAndSize(NULL, frame.len + nxt - frame_start)
                        memcpy(PyBytes_AS_STRING(raw), frame.ptr, <size_t>frame.len)
                        memcpy(PyBytes_AS_STRING(raw) + frame.len, buf + frame_start, <size_t>(nxt - frame_start))
                    elif frame_start == 0 and nxt == n and whole is not None:
                        raw = whole
                    else:
                        raw = PyBytes_FromStringAndSize(<const char*>buf + frame_start, nxt - frame_start)
                    ev = SSEEvent.__new__(SSEEvent)
                    ev.event = self._event if self._event else "message"
                    # The data buffer ends with the LF of its last line, which dispatch removes.
                    ev.data = decode(self._data.ptr, self._data.len - 1)
                    ev.id = self._id
                    ev.raw = raw
                    PyList_Append(events, ev)
                    self._data.len = 0
                self._event = ""
                frame.len = 0
                frame_start = nxt
            pos = nxt
        if frame.len + n - frame_start > self._max:
            self._overflow(frame.len + n - frame_start)
        if not carry:
            self._line_off = frame.len + pos - frame_start
        frame.extend(buf + frame_start, n - frame_start)
        return events

    cdef int _field(self, const unsigned char* p, Py_ssize_t n) except -1:
        """Apply one non-blank line (WHATWG §9.2.6 "process the field"); names are case-sensitive."""
        cdef const unsigned char* colon = <const unsigned char*>memchr(p, COLON, <size_t>n)
        cdef const unsigned char* value
        cdef Py_ssize_t name_len, value_len, i
        if colon == p:
            return 0  # comment, e.g. a `: ping` keep-alive
        if colon == NULL:
            name_len = n
            value = p + n
            value_len = 0
        else:
            name_len = colon - p
            value = colon + 1
            value_len = n - name_len - 1
            if value_len and value[0] == SPACE:
                value += 1
                value_len -= 1
        if name_len == 4 and memcmp(p, b"data", 4) == 0:
            self._data.reserve(value_len + 1)
            memcpy(self._data.ptr + self._data.len, value, <size_t>value_len)
            self._data.ptr[self._data.len + value_len] = LF
            self._data.len += value_len + 1
        elif name_len == 5 and memcmp(p, b"event", 5) == 0:
            # Providers repeat a few names (content_block_delta ...): reuse the last decoded one.
            if value_len != PyBytes_GET_SIZE(self._event_raw) or memcmp(
                PyBytes_AS_STRING(self._event_raw), value, <size_t>value_len
            ) != 0:
                self._event_raw = PyBytes_FromStringAndSize(<const char*>value, value_len)
                self._event_str = decode(value, value_len)
            self._event = self._event_str
        elif name_len == 2 and p[0] == LOWER_I and p[1] == LOWER_D:
            if memchr(value, 0, <size_t>value_len) == NULL:
                self._id = decode(value, value_len)
        elif name_len == 5 and memcmp(p, b"retry", 5) == 0 and value_len:
            for i in range(value_len):
                if not ZERO <= value[i] <= NINE:
                    return 0
            self._retry = int(PyBytes_FromStringAndSize(<const char*>value, value_len))
        return 0

    cdef int _overflow(self, Py_ssize_t size) except -1:
        """Drop the oversize frame and stay broken: a stream cut mid-event cannot be resynchronised."""
        self._broken = size
        self._frame = Bytes()
        self._data = Bytes()
        raise EventTooLarge(f"SSE event of at least {size} bytes exceeds max_event_size={self._max} bytes")
