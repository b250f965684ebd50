# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Compiled twin of mini_llm.hotpath._http_py: the same strict RFC 9112 response parser, on C pointers."""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append
from libc.stdlib cimport free, realloc
from libc.string cimport memchr, memcmp, memcpy

from mini_llm.hotpath.errors import HTTPParseError

__all__ = ["MAX_CHUNK_LINE", "ResponseParser"]

# A chunk-size line (size, extensions, CRLF) longer than this is refused; real extensions are tiny.
MAX_CHUNK_LINE = 4096

cdef enum:
    C_MAX_CHUNK_LINE = 4096
    MAX_CHUNK_DIGITS = 16
    MAX_LENGTH_DIGITS = 18

cdef enum:
    HTAB = 0x09
    LF = 0x0A
    CR = 0x0D
    SP = 0x20
    COMMA = 0x2C
    COLON = 0x3A
    SEMICOLON = 0x3B

cdef enum State:
    HEAD
    LENGTH
    CHUNK_SIZE
    CHUNK_DATA
    CHUNK_CRLF
    TRAILER
    UNTIL_EOF
    DONE
    FAILED

# Content-Length problems seen while reading the fields, raised when the head ends (as the pure twin).
cdef enum LengthError:
    LENGTH_RAISED = -1  # a Python exception is set (never stored)
    LENGTH_OK
    LENGTH_MALFORMED
    LENGTH_CONFLICT


cdef unsigned char TCHAR[256]
cdef unsigned char FIELD_BYTE[256]
cdef signed char HEX[256]
cdef unsigned char LOWER[256]


cdef void _init_tables() noexcept:
    cdef int c
    cdef bytes tchar = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for c in range(256):
        TCHAR[c] = 0
        # RFC 9110 §5.5 field-value and RFC 9112 §4 reason-phrase: HTAB, SP, VCHAR, obs-text.
        FIELD_BYTE[c] = c == HTAB or (SP <= c and c != 0x7F)
        HEX[c] = -1
        LOWER[c] = c + 32 if 0x41 <= c <= 0x5A else c
    for c in tchar:
        TCHAR[c] = 1
    for c in range(10):
        HEX[0x30 + c] = c
    for c in range(6):
        HEX[0x41 + c] = 10 + c
        HEX[0x61 + c] = 10 + c


_init_tables()


cdef inline bint is_ows(unsigned char c) noexcept:
    return c == SP or c == HTAB


cdef inline bint equals_lower(const unsigned char* p, Py_ssize_t n, const char* lower, Py_ssize_t m) noexcept:
    """Case-insensitive compare of p[:n] to an ASCII lower-case literal."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if LOWER[p[i]] != <unsigned char>lower[i]:
            return False
    return True


@cython.internal
cdef class Line:
    """A growable C buffer for the one incomplete line; its size is checked before every extend."""

    cdef unsigned char* ptr
    cdef Py_ssize_t len
    cdef Py_ssize_t cap

    def __dealloc__(self):
        free(self.ptr)

    cdef int extend(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self.len + n
        cdef Py_ssize_t cap = self.cap
        cdef unsigned char* grown
        if need > cap:
            if cap < 256:
                cap = 256
            while cap < need:
                cap *= 2
            grown = <unsigned char*>realloc(self.ptr, <size_t>cap)
            if grown == NULL:
                raise MemoryError()
            self.ptr = grown
            self.cap = cap
        memcpy(self.ptr + self.len, p, <size_t>n)
        self.len = need
        return 0

    cdef void drop(self) noexcept:
        free(self.ptr)
        self.ptr = NULL
        self.len = 0
        self.cap = 0


cdef class ResponseParser:
    """Incremental parser of one response: bytes in, body pieces out, nothing but lines buffered.

    Same state machine and the same messages as the pure twin; lines are scanned with memchr and
    lookup tables, and body pieces are the read itself or one slice of it.
    """

    cdef readonly int status
    cdef readonly bytes reason
    cdef readonly list headers
    cdef readonly bint head_complete
    cdef readonly bint keep_alive
    cdef readonly bint trailing
    cdef readonly long long content_length
    cdef readonly bint chunked

    cdef bint _head_request
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_headers
    cdef State _state
    cdef Line _buf
    cdef Py_ssize_t _section
    cdef Py_ssize_t _field_count
    cdef list _fields
    cdef int _line_status
    cdef bytes _line_reason
    cdef bint _http11
    cdef bint _close
    cdef unsigned long long _remaining
    cdef int _crlf
    # Framing fields of the head being read (RFC 9112 §6.3).
    cdef Py_ssize_t _te_count
    cdef bint _te_chunked
    cdef bytes _length
    cdef LengthError _length_error
    cdef bint _conn_close

    def __init__(self, head_request=False, Py_ssize_t max_head_bytes=65536, Py_ssize_t max_headers=100):
        if max_head_bytes < 1:
            raise ValueError(f"max_head_bytes must be at least 1, got {max_head_bytes}")
        if max_headers < 0:
            raise ValueError(f"max_headers must not be negative, got {max_headers}")
        self._head_request = bool(head_request)
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self._state = HEAD
        self._buf = Line()
        self._section = 0
        self._field_count = 0
        self._fields = []
        self._line_status = 0
        self._line_reason = b""
        self._http11 = False
        self._close = False
        self._remaining = 0
        self._crlf = 0
        self._reset_framing()
        self.status = 0
        self.reason = b""
        self.headers = []
        self.head_complete = False
        self.keep_alive = False
        self.trailing = False
        self.content_length = -1
        self.chunked = False

    @property
    def done(self):
        return self._state == DONE

    @property
    def buffered(self):
        """Bytes held for an incomplete line; bounded by max_head_bytes or MAX_CHUNK_LINE."""
        return self._buf.len

    def feed(self, data):
        """Consume bytes from the socket; return the body pieces they complete, in order."""
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef State state = self._state
        if PyBytes_CheckExact(data):
            n = PyBytes_GET_SIZE(data)
            if state == LENGTH and <unsigned long long>n < self._remaining:
                # The common case of a large body: the whole read is body, passed on uncopied.
                self._remaining -= <unsigned long long>n
                return [data] if n else []
            if state == UNTIL_EOF:
                return [data] if n else []
            return self._feed(data, <const unsigned char*>PyBytes_AS_STRING(data), n)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            whole = PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return self.feed(whole)

    def feed_eof(self):
        """The peer closed: this ends a close-delimited body; anywhere else the answer is cut short."""
        if self._state == DONE:
            return []
        if self._state == FAILED:
            raise HTTPParseError("the response parser is unusable after an earlier error")
        if self._state == UNTIL_EOF:
            self._state = DONE
            return []
        self._fail("the provider closed the connection before the answer was complete")

    cdef list _feed(self, bytes whole, const unsigned char* buf, Py_ssize_t n):
        cdef list pieces = []
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t take, line_len
        cdef const unsigned char* lf
        cdef State state = self._state
        if state >= DONE:
            if state == FAILED:
                raise HTTPParseError("the response parser is unusable after an earlier error")
            if n:
                self._trail()
            return pieces
        while pos < n:
            state = self._state
            if state == LENGTH or state == CHUNK_DATA:
                take = n - pos
                if <unsigned long long>take > self._remaining:
                    take = <Py_ssize_t>self._remaining
                if take == n:
                    PyList_Append(pieces, whole)
                else:
                    PyList_Append(pieces, PyBytes_FromStringAndSize(<const char*>buf + pos, take))
                pos += take
                self._remaining -= <unsigned long long>take
                if not self._remaining:
                    if state == LENGTH:
                        self._finish()
                    else:
                        self._state = CHUNK_CRLF
            elif state == CHUNK_CRLF:
                # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
                if buf[pos] != (CR if self._crlf == 0 else LF):
                    self._fail("the provider sent a chunk not followed by CRLF")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._crlf = 0
                    self._state = CHUNK_SIZE
            elif state == UNTIL_EOF:
                if pos == 0:
                    PyList_Append(pieces, whole)
                else:
                    PyList_Append(pieces, PyBytes_FromStringAndSize(<const char*>buf + pos, n - pos))
                return pieces
            elif state == DONE:
                self._trail()
                return pieces
            else:
                lf = <const unsigned char*>memchr(buf + pos, LF, <size_t>(n - pos))
                if lf == NULL:
                    self._hold(buf + pos, n - pos)
                    return pieces
                line_len = lf - (buf + pos) + 1
                if self._buf.len:
                    self._check_line_bound(self._buf.len + line_len)
                    self._buf.extend(buf + pos, line_len)
                    self._line(self._buf.ptr, self._buf.len)
                    self._buf.len = 0
                else:
                    self._line(buf + pos, line_len)
                pos += line_len
        return pieces

    cdef int _line(self, const unsigned char* p, Py_ssize_t n) except -1:
        if self._state == CHUNK_SIZE:
            return self._chunk_size_line(p, n)
        return self._section_line(p, n, self._state == TRAILER)

    cdef int _check_line_bound(self, Py_ssize_t size) except -1:
        """Refuse a line that is past its bound before copying it, as the pure twin does."""
        if self._state == CHUNK_SIZE:
            if size > C_MAX_CHUNK_LINE:
                self._fail(f"the provider sent a chunk-size line longer than {C_MAX_CHUNK_LINE} bytes")
        elif self._section + size > self._max_head:
            self._fail(self._too_large())
        return 0

    cdef int _hold(self, const unsigned char* p, Py_ssize_t n) except -1:
        self._check_line_bound(self._buf.len + n)
        self._buf.extend(p, n)
        return 0

    cdef str _too_large(self):
        what = "trailer section" if self._state == TRAILER else "response head"
        return f"the provider sent a {what} larger than {self._max_head} bytes"

    cdef Py_ssize_t _content(self, const unsigned char* p, Py_ssize_t n, str where) except -1:
        """Length of the line without its CRLF; refuses a bare LF (RFC 9112 §2.2)."""
        if n < 2 or p[n - 2] != CR:
            self._fail(f"the provider sent a {where} ending in a bare LF")
        return n - 2

    cdef int _no_cr_or_nul(self, const unsigned char* p, Py_ssize_t n, str where) except -1:
        """Refuse a bare CR or a NUL (RFC 9112 §2.2), first of all rules, as the pure twin does.

        Only called once a line failed its one-pass check: every byte that check accepts is neither.
        """
        if memchr(p, CR, <size_t>n) != NULL:
            self._fail(f"the provider sent a {where} with a bare CR")
        if memchr(p, 0, <size_t>n) != NULL:
            self._fail(f"the provider sent a {where} with a NUL byte")
        return 0

    cdef int _section_line(self, const unsigned char* p, Py_ssize_t n, bint trailer) except -1:
        """One line of a head (status line, field line or the blank line) or of the trailers."""
        cdef Py_ssize_t size
        cdef str where
        self._section += n
        if self._section > self._max_head:
            self._fail(self._too_large())
        if trailer:
            where = "trailer line"
        elif self._line_status:
            where = "header line"
        else:
            where = "status line"
        size = self._content(p, n, where)
        if not trailer and not self._line_status:
            return self._status_line(p, size)
        if size:
            if self._field_count == self._max_headers:
                self._no_cr_or_nul(p, size, where)
                what = "trailer" if trailer else "header"
                self._fail(f"the provider sent more than {self._max_headers} {what} fields")
            self._field_count += 1
            return self._field(p, size, where, trailer)
        if trailer:
            self._finish()
        else:
            self._end_head()
        return 0

    cdef int _status_line(self, const unsigned char* p, Py_ssize_t n) except -1:
        # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; the reason (and
        # its SP) may be missing in the wild.
        cdef Py_ssize_t i
        cdef int status
        if (
            n < 12
            or memcmp(p, b"HTTP/1.", 7) != 0
            or (p[7] != 0x30 and p[7] != 0x31)
            or p[8] != SP
            or not 0x31 <= p[9] <= 0x35
            or not 0x30 <= p[10] <= 0x39
            or not 0x30 <= p[11] <= 0x39
            or (n > 12 and p[12] != SP)
        ):
            return self._bad_status_line(p, n)
        for i in range(13, n):
            if not FIELD_BYTE[p[i]]:
                return self._bad_status_line(p, n)
        status = (p[9] - 0x30) * 100 + (p[10] - 0x30) * 10 + (p[11] - 0x30)
        if status == 101:
            self._fail("the provider switched protocols (101), which the gateway never asks for")
        self._line_status = status
        self._http11 = p[7] == 0x31
        if n > 13:
            self._line_reason = PyBytes_FromStringAndSize(<const char*>p + 13, n - 13)
        else:
            self._line_reason = b""
        return 0

    cdef int _bad_status_line(self, const unsigned char* p, Py_ssize_t n) except -1:
        self._no_cr_or_nul(p, n, "status line")
        self._fail("the provider sent a malformed status line")

    cdef int _field(self, const unsigned char* p, Py_ssize_t n, str where, bint trailer) except -1:
        """RFC 9112 §5: field-line = field-name ":" OWS field-value OWS; the name lower-cased."""
        cdef Py_ssize_t colon = 0
        cdef Py_ssize_t i, start, end
        cdef bytes name
        cdef unsigned char* lowered
        while colon < n and TCHAR[p[colon]]:
            colon += 1
        if colon == 0 or colon == n or p[colon] != COLON:
            return self._bad_field(p, n, where)
        for i in range(colon + 1, n):
            if not FIELD_BYTE[p[i]]:
                return self._bad_field(p, n, where)
        if trailer:
            return 0  # RFC 9112 §7.1.2: checked like header fields, then dropped
        start = colon + 1
        end = n
        while start < end and is_ows(p[start]):
            start += 1
        while end > start and is_ows(p[end - 1]):
            end -= 1
        name = PyBytes_FromStringAndSize(NULL, colon)
        lowered = <unsigned char*>PyBytes_AS_STRING(name)
        for i in range(colon):
            lowered[i] = LOWER[p[i]]
        self._framing_field(lowered, colon, p + start, end - start)
        PyList_Append(self._fields, (name, PyBytes_FromStringAndSize(<const char*>p + start, end - start)))
        return 0

    cdef int _bad_field(self, const unsigned char* p, Py_ssize_t n, str where) except -1:
        """Name the first rule a field line breaks, in the pure twin's order."""
        cdef const unsigned char* found
        cdef Py_ssize_t colon, i
        self._no_cr_or_nul(p, n, where)
        if is_ows(p[0]):
            self._fail(f"the provider sent a folded {where} (obs-fold)")
        found = <const unsigned char*>memchr(p, COLON, <size_t>n)
        if found == NULL:
            self._fail(f"the provider sent a {where} without a colon")
        colon = found - p
        if colon == 0:
            self._fail(f"the provider sent a {where} with an empty field name")
        if is_ows(p[colon - 1]):
            self._fail(f"the provider sent a {where} with whitespace before the colon")
        for i in range(colon):
            if not TCHAR[p[i]]:
                self._fail(f"the provider sent a {where} whose field name is not a token")
        self._fail(f"the provider sent a {where} with a control character in its value")

    cdef int _framing_field(
        self, const unsigned char* name, Py_ssize_t name_len, const unsigned char* value, Py_ssize_t n
    ) except -1:
        """Note what a Content-Length, Transfer-Encoding or Connection field says about framing.

        `except -1`, not `noexcept`: the first Content-Length is copied, which can raise MemoryError.
        """
        if name_len == 17 and memcmp(name, b"transfer-encoding", 17) == 0:
            self._te_count += 1
            self._te_chunked = equals_lower(value, n, b"chunked", 7)
        elif name_len == 14 and memcmp(name, b"content-length", 14) == 0:
            if self._length_error == LENGTH_OK:
                self._length_error = self._content_length_members(value, n)
        elif name_len == 10 and memcmp(name, b"connection", 10) == 0:
            if not self._conn_close:
                self._conn_close = has_close_token(value, n)
        return 0

    cdef LengthError _content_length_members(self, const unsigned char* value, Py_ssize_t n) except LENGTH_RAISED:
        """RFC 9110 §8.6: 1*DIGIT; a list or repeat is accepted only if every member is identical.

        Copying the digits can raise MemoryError: LENGTH_RAISED passes it on.
        """
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t start, end, i, j
        cdef const unsigned char* comma
        while True:
            comma = <const unsigned char*>memchr(value + pos, COMMA, <size_t>(n - pos))
            end = n if comma == NULL else comma - value
            start = pos
            while start < end and is_ows(value[start]):
                start += 1
            i = end
            while i > start and is_ows(value[i - 1]):
                i -= 1
            if i == start or i - start > MAX_LENGTH_DIGITS:
                return LENGTH_MALFORMED
            for j in range(start, i):
                if not 0x30 <= value[j] <= 0x39:
                    return LENGTH_MALFORMED
            if self._length is None:
                self._length = PyBytes_FromStringAndSize(<const char*>value + start, i - start)
            elif PyBytes_GET_SIZE(self._length) != i - start or memcmp(
                PyBytes_AS_STRING(self._length), value + start, <size_t>(i - start)
            ) != 0:
                return LENGTH_CONFLICT
            if comma == NULL:
                return LENGTH_OK
            pos = end + 1

    cdef int _end_head(self) except -1:
        """RFC 9112 §6.3: decide how the body is framed; a 1xx head is checked, then dropped."""
        cdef int status = self._line_status
        cdef bint chunked = self._te_count > 0
        cdef bint close = self._conn_close
        cdef bytes length = self._length
        cdef long long value = 0
        cdef const char* digits
        cdef Py_ssize_t i
        if self._length_error == LENGTH_MALFORMED:
            self._fail("the provider sent a malformed Content-Length")
        if self._length_error == LENGTH_CONFLICT:
            self._fail("the provider sent conflicting Content-Length values")
        if chunked and (self._te_count > 1 or not self._te_chunked):
            self._fail("the provider sent a Transfer-Encoding other than chunked")
        if chunked and length is not None:
            self._fail("the provider sent both Content-Length and Transfer-Encoding")
        fields = self._fields
        self._section = 0
        self._field_count = 0
        self._fields = []
        self._line_status = 0
        self._reset_framing()
        if status < 200:
            return 0  # RFC 9110 §15.2: interim responses precede the final one
        self.status = status
        self.reason = self._line_reason
        self.headers = fields
        self.head_complete = True
        self._close = close or not self._http11
        if self._head_request or status == 204 or status == 304:
            self._finish()
        elif chunked:
            self.chunked = True
            self._state = CHUNK_SIZE
        elif length is not None:
            digits = PyBytes_AS_STRING(length)
            for i in range(PyBytes_GET_SIZE(length)):
                value = value * 10 + (digits[i] - 0x30)
            self.content_length = value
            self._remaining = <unsigned long long>value
            if value:
                self._state = LENGTH
            else:
                self._finish()
        else:
            self._close = True
            self._state = UNTIL_EOF
        return 0

    cdef void _reset_framing(self) noexcept:
        self._te_count = 0
        self._te_chunked = False
        self._length = None
        self._length_error = LENGTH_OK
        self._conn_close = False

    cdef int _chunk_size_line(self, const unsigned char* p, Py_ssize_t n) except -1:
        # RFC 9112 §7.1: chunk-size = 1*HEXDIG, then chunk-ext, which is only checked for control bytes.
        cdef Py_ssize_t size, digits, i
        cdef unsigned long long value = 0
        if n > C_MAX_CHUNK_LINE:
            self._fail(f"the provider sent a chunk-size line longer than {C_MAX_CHUNK_LINE} bytes")
        size = self._content(p, n, "chunk-size line")
        digits = 0
        while digits < size and HEX[p[digits]] >= 0:
            digits += 1
        if digits == 0 or digits > MAX_CHUNK_DIGITS or (digits < size and p[digits] != SEMICOLON):
            return self._bad_chunk_size_line(p, size, digits)
        for i in range(digits + 1, size):
            if not FIELD_BYTE[p[i]]:
                return self._bad_chunk_size_line(p, size, digits)
        for i in range(digits):
            value = (value << 4) | <unsigned long long>HEX[p[i]]
        if value:
            self._remaining = value
            self._state = CHUNK_DATA
        else:
            self._state = TRAILER  # RFC 9112 §7.1.2: trailer fields, then the final CRLF
        return 0

    cdef int _bad_chunk_size_line(self, const unsigned char* p, Py_ssize_t n, Py_ssize_t digits) except -1:
        """Name the first rule a chunk-size line breaks, in the pure twin's order."""
        self._no_cr_or_nul(p, n, "chunk-size line")
        if digits > MAX_CHUNK_DIGITS:
            self._fail("the provider sent an oversized chunk size")
        if digits and digits < n and p[digits] == SEMICOLON:
            self._fail("the provider sent a control character in a chunk extension")
        self._fail("the provider sent a malformed chunk size")

    cdef void _finish(self) noexcept:
        self._state = DONE
        self.keep_alive = not self._close

    cdef void _trail(self) noexcept:
        """Bytes after the complete answer: left unread, and the connection is not reused."""
        self.trailing = True
        self.keep_alive = False

    cdef int _fail(self, str message) except -1:
        self._state = FAILED
        self.keep_alive = False
        self._buf.drop()
        raise HTTPParseError(message)


cdef bint has_close_token(const unsigned char* value, Py_ssize_t n) noexcept:
    """RFC 9110 §7.6.1: Connection is a comma-separated list of case-insensitive tokens."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t start, end
    cdef const unsigned char* comma
    while pos <= n:
        comma = <const unsigned char*>memchr(value + pos, COMMA, <size_t>(n - pos))
        end = n if comma == NULL else comma - value
        start = pos
        while start < end and is_ows(value[start]):
            start += 1
        while end > start and is_ows(value[end - 1]):
            end -= 1
        if equals_lower(value + start, end - start, b"close", 5):
            return True
        if comma == NULL:
            return False
        pos = (comma - value) + 1
    return False
