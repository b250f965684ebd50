"""Pure-Python HTTP/1.1 response parser (RFC 9112), sans-I/O: the reference for the compiled twin.

Strictness decisions (each refuses something a lenient parser such as h11 accepts):
- lines must end with CRLF; a bare LF is refused like a bare CR (RFC 9112 §2.2 lets a recipient
  accept a bare LF, but a proxy that reads framing differently from its peer invites smuggling);
- obs-fold is refused (RFC 9112 §5.2), and so is any control character but HTAB in the head;
- only HTTP/1.0 and HTTP/1.1, status 100-599, and 101 is refused: the gateway never asks to upgrade;
- Content-Length together with Transfer-Encoding is refused (RFC 9112 §6.3 point 3 allows it);
  repeated Content-Length values are accepted only when textually identical (`5, 5`, RFC 9110
  §8.6), and at most 18 digits so the length always fits a signed 64-bit integer;
- a chunk size has 1 to 16 hex digits (64 bits); a chunk-size line, extensions included, is at
  most `MAX_CHUNK_LINE` bytes, with no whitespace before `;` or at its end.

Bytes after a complete answer are not an error of the answer: the parser stops at its end and sets
`trailing` (and clears `keep_alive`), whether they came in the same read or a later one, so where
the reads were cut never decides whether an answer stands. The connection cannot be reused.
"""

from __future__ import annotations

import re
from typing import Final

from mini_llm.hotpath.errors import HTTPParseError

__all__ = ["MAX_CHUNK_LINE", "ResponseParser"]

# A chunk-size line (size, extensions, CRLF) longer than this is refused; real extensions are tiny.
MAX_CHUNK_LINE: Final = 4096

_HEAD: Final = 0
_LENGTH: Final = 1
_CHUNK_SIZE: Final = 2
_CHUNK_DATA: Final = 3
_CHUNK_CRLF: Final = 4
_TRAILER: Final = 5
_UNTIL_EOF: Final = 6
_DONE: Final = 7
_FAILED: Final = 8

# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; the reason (and its
# SP) may be missing in the wild. reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?")
# RFC 9110 §5.1 field-name = token, §5.5 field-value: VCHAR, obs-text, SP and HTAB only.
_FIELD_LINE: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*")
_TOKEN: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then chunk-ext, which is only checked for control bytes.
_CHUNK_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[\t\x20-\x7e\x80-\xff]*)?")
_HEX_DIGITS: Final = b"0123456789ABCDEFabcdef"
_MAX_CHUNK_DIGITS: Final = 16
_SEMICOLON: Final = 0x3B
_OWS: Final = b" \t"
_MAX_LENGTH_DIGITS: Final = 18


class ResponseParser:
    """Incremental parser of one response: bytes in, body pieces out, nothing but lines buffered.

    Every rule is applied per complete line and in stream order, so how the bytes were cut never
    changes the outcome. Any anomaly raises HTTPParseError and leaves the parser failed for good.
    """

    __slots__ = (
        "_buf",
        "_chunked",
        "_close",
        "_content_length",
        "_crlf",
        "_fields",
        "_head_complete",
        "_head_request",
        "_headers",
        "_http11",
        "_keep_alive",
        "_line_reason",
        "_line_status",
        "_max_head",
        "_max_headers",
        "_reason",
        "_remaining",
        "_section",
        "_state",
        "_status",
        "_trailing",
    )

    def __init__(self, head_request: bool = False, max_head_bytes: int = 65536, max_headers: int = 100) -> None:
        if max_head_bytes < 1:
            raise ValueError(f"max_head_bytes must be at least 1, got {max_head_bytes}")
        if max_headers < 0:
            raise ValueError(f"max_headers must not be negative, got {max_headers}")
        self._head_request = bool(head_request)
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self._state = _HEAD
        # The incomplete line the last feed ended in (head, chunk-size or trailer line).
        self._buf = bytearray()
        # Bytes of complete lines in the current head or trailer section, and its field lines.
        self._section = 0
        self._fields: list[tuple[bytes, bytes]] = []
        # Status line of the head being read; status 0 until it is in.
        self._line_status = 0
        self._line_reason = b""
        self._http11 = False
        self._reason = b""
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_complete = False
        self._keep_alive = False
        self._trailing = False
        self._close = False
        self._content_length = -1
        self._chunked = False
        self._remaining = 0
        self._crlf = 0

    @property
    def status(self) -> int:
        return self._status

    @property
    def reason(self) -> bytes:
        return self._reason

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers

    @property
    def head_complete(self) -> bool:
        return self._head_complete

    @property
    def done(self) -> bool:
        return self._state == _DONE

    @property
    def keep_alive(self) -> bool:
        """True once done if the connection may carry another request (RFC 9112 §9.3)."""
        return self._keep_alive

    @property
    def trailing(self) -> bool:
        """True once bytes came after the complete answer: they are not read, keep_alive is False."""
        return self._trailing

    @property
    def content_length(self) -> int:
        """The Content-Length that frames the body; -1 for chunked, close-delimited or no body."""
        return self._content_length

    @property
    def chunked(self) -> bool:
        return self._chunked

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line; bounded by max_head_bytes or MAX_CHUNK_LINE."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Consume bytes from the socket; return the body pieces they complete, in order."""
        if type(data) is not bytes:
            data = bytes(data)
        state = self._state
        if state >= _DONE:
            if state == _FAILED:
                raise HTTPParseError("the response parser is unusable after an earlier error")
            if data:
                self._trail()
            return []
        if state == _UNTIL_EOF:
            return [data] if data else []
        if state == _LENGTH:
            remaining = self._remaining
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                return [data] if data else []
        try:
            return self._feed(data)
        except HTTPParseError:
            self._fail_quietly()
            raise

    def feed_eof(self) -> list[bytes]:
        """The peer closed: this ends a close-delimited body; anywhere else the answer is cut short."""
        state = self._state
        if state == _DONE:
            return []
        if state == _FAILED:
            raise HTTPParseError("the response parser is unusable after an earlier error")
        if state == _UNTIL_EOF:
            self._state = _DONE
            return []
        raise self._failure("the provider closed the connection before the answer was complete")

    def _feed(self, data: bytes) -> list[bytes]:
        pieces: list[bytes] = []
        n = len(data)
        pos = 0
        while pos < n:
            state = self._state
            if state in (_LENGTH, _CHUNK_DATA):
                take = min(self._remaining, n - pos)
                pieces.append(data if take == n else data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    if state == _LENGTH:
                        self._finish()
                    else:
                        self._state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
                if data[pos] != b"\r\n"[self._crlf]:
                    raise self._failure("the provider sent a chunk not followed by CRLF")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._crlf = 0
                    self._state = _CHUNK_SIZE
            elif state == _UNTIL_EOF:
                pieces.append(data if pos == 0 else data[pos:])
                return pieces
            elif state == _DONE:
                self._trail()
                return pieces
            else:
                lf = data.find(b"\n", pos)
                if lf < 0:
                    self._hold(data, pos)
                    return pieces
                if self._buf:
                    line = bytes(self._buf) + data[pos : lf + 1]
                    self._buf.clear()
                else:
                    line = data[pos : lf + 1]
                pos = lf + 1
                if state == _CHUNK_SIZE:
                    self._chunk_size_line(line)
                else:
                    self._section_line(line, state == _TRAILER)
        return pieces

    def _hold(self, data: bytes, pos: int) -> None:
        """Keep an incomplete line, refusing it once it is past its bound (so memory stays bounded)."""
        size = len(self._buf) + len(data) - pos
        if self._state == _CHUNK_SIZE:
            if size > MAX_CHUNK_LINE:
                raise self._failure(f"the provider sent a chunk-size line longer than {MAX_CHUNK_LINE} bytes")
        elif self._section + size > self._max_head:
            raise self._failure(self._too_large())
        self._buf += data[pos:] if pos else data

    def _too_large(self) -> str:
        what = "trailer section" if self._state == _TRAILER else "response head"
        return f"the provider sent a {what} larger than {self._max_head} bytes"

    def _section_line(self, line: bytes, trailer: bool) -> None:
        """One line of a head (status line, field line or the blank line) or of the trailers."""
        self._section += len(line)
        if self._section > self._max_head:
            raise self._failure(self._too_large())
        where = "trailer line" if trailer else ("header line" if self._line_status else "status line")
        content = _content(line, where)
        if not trailer and not self._line_status:
            self._status_line(content)
        elif content:
            if len(self._fields) == self._max_headers:
                what = "trailer" if trailer else "header"
                raise self._failure(f"the provider sent more than {self._max_headers} {what} fields")
            self._fields.append(_field(content, where))
        elif trailer:
            self._finish()
        else:
            self._end_head()

    def _status_line(self, content: bytes) -> None:
        match = _STATUS_LINE.fullmatch(content)
        if match is None:
            raise self._failure("the provider sent a malformed status line")
        status = int(match[2])
        if status == 101:
            raise self._failure("the provider switched protocols (101), which the gateway never asks for")
        self._line_status = status
        self._http11 = match[1] == b"1"
        self._line_reason = match[3] or b""

    def _end_head(self) -> None:
        """RFC 9112 §6.3: decide how the body is framed; a 1xx head is checked, then dropped."""
        fields = self._fields
        status = self._line_status
        transfer_encodings = 0
        chunked = False
        length = b""
        close = False
        for name, value in fields:
            if name == b"transfer-encoding":
                transfer_encodings += 1
                chunked = value.lower() == b"chunked"
            elif name == b"content-length":
                length = _content_length(value, length)
            elif name == b"connection":
                close = close or b"close" in [token.strip(_OWS) for token in value.lower().split(b",")]
        if transfer_encodings and (transfer_encodings > 1 or not chunked):
            raise self._failure("the provider sent a Transfer-Encoding other than chunked")
        if transfer_encodings and length:
            raise self._failure("the provider sent both Content-Length and Transfer-Encoding")
        self._section = 0
        self._fields = []
        self._line_status = 0
        if status < 200:
            return  # RFC 9110 §15.2: interim responses precede the final one
        self._status = status
        self._reason = self._line_reason
        self._headers = fields
        self._head_complete = True
        self._close = close or not self._http11
        if self._head_request or status in (204, 304):
            self._finish()
        elif chunked:
            self._chunked = True
            self._state = _CHUNK_SIZE
        elif length:
            self._content_length = self._remaining = int(length)
            if self._remaining:
                self._state = _LENGTH
            else:
                self._finish()
        else:
            self._close = True
            self._state = _UNTIL_EOF

    def _chunk_size_line(self, line: bytes) -> None:
        if len(line) > MAX_CHUNK_LINE:
            raise self._failure(f"the provider sent a chunk-size line longer than {MAX_CHUNK_LINE} bytes")
        content = _content(line, "chunk-size line")
        match = _CHUNK_LINE.fullmatch(content)
        if match is None:
            digits = len(content) - len(content.lstrip(_HEX_DIGITS))
            if digits > _MAX_CHUNK_DIGITS:
                raise self._failure("the provider sent an oversized chunk size")
            if digits and content[digits] == _SEMICOLON:
                raise self._failure("the provider sent a control character in a chunk extension")
            raise self._failure("the provider sent a malformed chunk size")
        size = int(match[1], 16)
        if size:
            self._remaining = size
            self._state = _CHUNK_DATA
        else:
            self._state = _TRAILER  # RFC 9112 §7.1.2: trailer fields, then the final CRLF

    def _finish(self) -> None:
        self._state = _DONE
        self._keep_alive = not self._close

    def _trail(self) -> None:
        self._trailing = True
        self._keep_alive = False

    def _failure(self, message: str) -> HTTPParseError:
        """Leave the parser failed for good and return the error for the caller to raise."""
        self._fail_quietly()
        return HTTPParseError(message)

    def _fail_quietly(self) -> None:
        self._state = _FAILED
        self._keep_alive = False
        self._buf = bytearray()


def _content(line: bytes, where: str) -> bytes:
    """A line without its CRLF; refuses a bare LF or CR and NUL (RFC 9112 §2.2)."""
    if line[-2:-1] != b"\r":
        raise HTTPParseError(f"the provider sent a {where} ending in a bare LF")
    content = line[:-2]
    if b"\r" in content:
        raise HTTPParseError(f"the provider sent a {where} with a bare CR")
    if b"\x00" in content:
        raise HTTPParseError(f"the provider sent a {where} with a NUL byte")
    return content


def _field(content: bytes, where: str) -> tuple[bytes, bytes]:
    """RFC 9112 §5: field-line = field-name ":" OWS field-value OWS; the name lower-cased."""
    if _FIELD_LINE.fullmatch(content) is not None:
        colon = content.index(b":")
        return content[:colon].lower(), content[colon + 1 :].strip(_OWS)
    if content[0] in _OWS:
        raise HTTPParseError(f"the provider sent a folded {where} (obs-fold)")
    colon = content.find(b":")
    if colon < 0:
        raise HTTPParseError(f"the provider sent a {where} without a colon")
    if colon == 0:
        raise HTTPParseError(f"the provider sent a {where} with an empty field name")
    if content[colon - 1] in _OWS:
        raise HTTPParseError(f"the provider sent a {where} with whitespace before the colon")
    if _TOKEN.fullmatch(content, 0, colon) is None:
        raise HTTPParseError(f"the provider sent a {where} whose field name is not a token")
    raise HTTPParseError(f"the provider sent a {where} with a control character in its value")


def _content_length(value: bytes, seen: bytes) -> bytes:
    """RFC 9110 §8.6: 1*DIGIT; a list or repeat is accepted only if every member is identical."""
    for item in value.split(b","):
        member = item.strip(_OWS)
        if not member.isdigit() or len(member) > _MAX_LENGTH_DIGITS:  # bytes.isdigit: ASCII only
            raise HTTPParseError("the provider sent a malformed Content-Length")
        if seen and member != seen:
            raise HTTPParseError("the provider sent conflicting Content-Length values")
        seen = member
    return seen
