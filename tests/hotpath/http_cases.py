"""HTTP/1.1 response vectors for both parser twins: every strictness rule, every limit at and one past."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol

from hypothesis import strategies as st

from mini_llm.hotpath.errors import HTTPParseError

Headers = tuple[tuple[bytes, bytes], ...]


class ParserLike(Protocol):
    """What the tests use of either twin's parser, so one helper drives both."""

    def feed(self, data: bytes) -> list[bytes]: ...
    def feed_eof(self) -> list[bytes]: ...
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> bytes: ...
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def head_complete(self) -> bool: ...
    @property
    def done(self) -> bool: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def trailing(self) -> bool: ...
    @property
    def content_length(self) -> int: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def buffered(self) -> int: ...


class ParserFactory(Protocol):
    def __call__(self, head_request: bool = ..., max_head_bytes: int = ..., max_headers: int = ...) -> ParserLike: ...


@dataclass(frozen=True)
class Outcome:
    """Everything observable after feeding a response; on an error only the error and the flags count."""

    error: str | None
    status: int = 0
    reason: bytes = b""
    headers: Headers = ()
    body: bytes = b""
    head_complete: bool = False
    done: bool = False
    keep_alive: bool = False
    content_length: int = -1
    chunked: bool = False
    trailing: bool = False

    def comparable(self) -> Outcome:
        """What must not depend on how the input was cut: after an error, only the error."""
        if self.error is None:
            return self
        return Outcome(self.error, done=self.done, keep_alive=self.keep_alive)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: Outcome
    eof: bool = False
    head_request: bool = False
    max_head_bytes: int = 65536
    max_headers: int = 100
    tags: frozenset[str] = field(default_factory=frozenset)


def run(factory: ParserFactory, case: Case, chunks: list[bytes]) -> Outcome:
    parser = factory(head_request=case.head_request, max_head_bytes=case.max_head_bytes, max_headers=case.max_headers)
    pieces: list[bytes] = []
    error = None
    try:
        for chunk in chunks:
            pieces.extend(parser.feed(chunk))
        if case.eof:
            pieces.extend(parser.feed_eof())
    except HTTPParseError as exc:
        error = str(exc)
    return Outcome(
        error,
        parser.status,
        parser.reason,
        tuple(parser.headers),
        b"".join(pieces),
        parser.head_complete,
        parser.done,
        parser.keep_alive,
        parser.content_length,
        parser.chunked,
        parser.trailing,
    )


OK = b"HTTP/1.1 200 OK\r\n"
CL0 = (b"content-length", b"0")
TE = (b"transfer-encoding", b"chunked")
CHUNKED_HEAD = OK + b"Transfer-Encoding: chunked\r\n\r\n"
PROVIDER = "the provider sent "


def ok(
    name: str,
    data: bytes,
    headers: Headers,
    body: bytes = b"",
    *,
    status: int = 200,
    reason: bytes = b"OK",
    done: bool = True,
    keep_alive: bool = True,
    content_length: int = -1,
    chunked: bool = False,
    trailing: bool = False,
    eof: bool = False,
    head_request: bool = False,
    max_head_bytes: int = 65536,
    max_headers: int = 100,
) -> Case:
    expect = Outcome(None, status, reason, headers, body, True, done, keep_alive, content_length, chunked, trailing)
    return Case(name, data, expect, eof, head_request, max_head_bytes, max_headers)


def bad(
    name: str,
    data: bytes,
    error: str,
    *,
    eof: bool = False,
    head_request: bool = False,
    max_head_bytes: int = 65536,
    max_headers: int = 100,
    oracle_accepts: bool = False,
) -> Case:
    """`oracle_accepts`: h11 takes this input; we refuse it on purpose (documented in the module)."""
    message = error if error.startswith("the ") else PROVIDER + error
    tags = frozenset({"stricter-than-h11"}) if oracle_accepts else frozenset()
    return Case(name, data, Outcome(message), eof, head_request, max_head_bytes, max_headers, tags)


def padded_head(size: int) -> bytes:
    """A 200 head with Content-Length: 0 of exactly `size` bytes (status line to blank line)."""
    fixed = len(OK) + len(b"Content-Length: 0\r\n") + len(b"X: \r\n") + len(b"\r\n")
    return OK + b"Content-Length: 0\r\nX: " + b"p" * (size - fixed) + b"\r\n\r\n"


def padded_head_headers(size: int) -> Headers:
    return (CL0, (b"x", b"p" * (size - 43)))


def many_headers(count: int) -> bytes:
    return OK + b"Content-Length: 0\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(count - 1)) + b"\r\n"


def many_headers_list(count: int) -> Headers:
    return (CL0, *((b"x-%d" % i, b"v") for i in range(count - 1)))


def padded_trailers(size: int) -> bytes:
    """A chunked answer whose trailer section (fields and the final CRLF) is `size` bytes."""
    return CHUNKED_HEAD + b"1\r\nx\r\n0\r\nT: " + b"t" * (size - len(b"T: \r\n\r\n")) + b"\r\n\r\n"


def many_trailers(count: int) -> bytes:
    return CHUNKED_HEAD + b"0\r\n" + b"".join(b"T-%d: v\r\n" % i for i in range(count)) + b"\r\n"


def chunk_line(size: int) -> bytes:
    """A chunk-size line of exactly `size` bytes, its CRLF included, for a one-byte chunk."""
    return b"1;" + b"e" * (size - 4) + b"\r\n"


TYPICAL = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Tue, 01 Dec 2026 11:00:00 GMT\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 2\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n{}"
)
TYPICAL_HEADERS: Headers = (
    (b"date", b"Tue, 01 Dec 2026 11:00:00 GMT"),
    (b"content-type", b"application/json"),
    (b"content-length", b"2"),
    (b"connection", b"keep-alive"),
)

VALID: tuple[Case, ...] = (
    ok("content-length", TYPICAL, TYPICAL_HEADERS, b"{}", content_length=2),
    ok("content-length zero", OK + b"Content-Length: 0\r\n\r\n", (CL0,), content_length=0),
    ok("no reason, no SP", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", (CL0,), reason=b"", content_length=0),
    ok("no reason, SP", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", (CL0,), reason=b"", content_length=0),
    ok(
        "reason with HTAB, SP and obs-text",
        b"HTTP/1.1 404 Not\tFound  \xe9t\xe9\r\nContent-Length: 0\r\n\r\n",
        (CL0,),
        status=404,
        reason=b"Not\tFound  \xe9t\xe9",
        content_length=0,
    ),
    ok("status 599", b"HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", (CL0,), status=599, reason=b"X", content_length=0),
    ok(
        "HTTP/1.0 with length is not kept alive",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ((b"content-length", b"2"),),
        b"ok",
        keep_alive=False,
        content_length=2,
    ),
    ok(
        "HTTP/1.0 keep-alive token does not keep it alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        ((b"connection", b"keep-alive"), CL0),
        keep_alive=False,
        content_length=0,
    ),
    ok(
        "close-delimited HTTP/1.0",
        b"HTTP/1.0 200 OK\r\n\r\nabc",
        (),
        b"abc",
        keep_alive=False,
        eof=True,
    ),
    ok(
        "close-delimited ends at EOF",
        OK + b"Content-Type: text/plain\r\n\r\nhello world",
        ((b"content-type", b"text/plain"),),
        b"hello world",
        keep_alive=False,
        eof=True,
    ),
    ok("close-delimited empty", OK + b"\r\n", (), keep_alive=False, eof=True),
    ok(
        "close-delimited before EOF is not done",
        OK + b"\r\nsome",
        (),
        b"some",
        done=False,
        keep_alive=False,
    ),
    ok(
        "Connection: close",
        OK + b"Connection: close\r\nContent-Length: 1\r\n\r\nx",
        ((b"connection", b"close"), (b"content-length", b"1")),
        b"x",
        keep_alive=False,
        content_length=1,
    ),
    ok(
        "Connection list with Close",
        OK + b"Connection: keep-alive , Close\r\nContent-Length: 0\r\n\r\n",
        ((b"connection", b"keep-alive , Close"), CL0),
        keep_alive=False,
        content_length=0,
    ),
    ok(
        "close in a second Connection field",
        OK + b"Connection: upgrade\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ((b"connection", b"upgrade"), (b"connection", b"close"), CL0),
        keep_alive=False,
        content_length=0,
    ),
    ok(
        "Connection: closed is another token",
        OK + b"Connection: closed\r\nContent-Length: 0\r\n\r\n",
        ((b"connection", b"closed"), CL0),
        content_length=0,
    ),
    ok(
        "OWS stripped, inner spaces kept, empty value",
        OK + b"X-A: \t v a l \t\r\nX-Empty:\r\nX-Blank:   \r\nContent-Length: 0\r\n\r\n",
        ((b"x-a", b"v a l"), (b"x-empty", b""), (b"x-blank", b""), CL0),
        content_length=0,
    ),
    ok(
        "names lower-cased, repeats kept in order, obs-text value",
        OK + b"Set-Cookie: a=1\r\nX-UPPER: V\r\nset-cookie: b=2\r\nX-T: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
        ((b"set-cookie", b"a=1"), (b"x-upper", b"V"), (b"set-cookie", b"b=2"), (b"x-t", b"caf\xc3\xa9"), CL0),
        content_length=0,
    ),
    ok(
        "every tchar in a name",
        OK + b"!#$%&'*+-.^_`|~09azAZ: v\r\nContent-Length: 0\r\n\r\n",
        ((b"!#$%&'*+-.^_`|~09azaz", b"v"), CL0),
        content_length=0,
    ),
    ok(
        "1xx heads are skipped",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        ((b"content-length", b"1"),),
        b"x",
        status=201,
        reason=b"Created",
        content_length=1,
    ),
    ok("204 has no body", b"HTTP/1.1 204 No Content\r\n\r\n", (), status=204, reason=b"No Content"),
    ok(
        "304 with a Content-Length has no body",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
        ((b"content-length", b"100"),),
        status=304,
        reason=b"Not Modified",
    ),
    ok(
        "HEAD with a Content-Length has no body",
        OK + b"Content-Length: 100\r\n\r\n",
        ((b"content-length", b"100"),),
        head_request=True,
    ),
    ok("HEAD with chunked has no body", CHUNKED_HEAD, (TE,), head_request=True),
    ok("HEAD close-delimited is done at once", OK + b"\r\n", (), head_request=True),
    ok(
        "chunked",
        CHUNKED_HEAD + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        (TE,),
        b"hello world",
        chunked=True,
    ),
    ok(
        "chunked upper and lower hex, leading zeros, 16 digits",
        CHUNKED_HEAD + b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0000000000000001\r\n!\r\n000\r\n\r\n",
        (TE,),
        b"0123456789abcdefghij!",
        chunked=True,
    ),
    ok(
        "chunk extensions are skipped",
        CHUNKED_HEAD + b'5;name=value;q="a b";flag\r\nhello\r\n0;last\t=\xff\r\n\r\n',
        (TE,),
        b"hello",
        chunked=True,
    ),
    ok(
        "trailers are parsed and dropped",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other:\tdef \r\n\r\n",
        (TE,),
        b"hi",
        chunked=True,
    ),
    ok("chunked empty body", CHUNKED_HEAD + b"0\r\n\r\n", (TE,), chunked=True),
    ok(
        "chunked with Connection: close",
        OK + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        ((b"connection", b"close"), TE),
        b"x",
        keep_alive=False,
        chunked=True,
    ),
    ok(
        "Transfer-Encoding is case-insensitive",
        OK + b"Transfer-Encoding:  ChUnKeD \r\n\r\n0\r\n\r\n",
        ((b"transfer-encoding", b"ChUnKeD"),),
        chunked=True,
    ),
    ok(
        "SSE over chunked",
        OK + b"Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'f\r\ndata: {"a":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n',
        ((b"content-type", b"text/event-stream"), TE),
        b'data: {"a":1}\n\ndata: [DONE]\n\n',
        chunked=True,
    ),
    ok(
        "identical Content-Length repeats",
        OK + b"Content-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
        ((b"content-length", b"3, 3"), (b"content-length", b"3")),
        b"abc",
        content_length=3,
    ),
    ok(
        "Content-Length of 18 digits",
        OK + b"Content-Length: 000000000000000002\r\n\r\nab",
        ((b"content-length", b"000000000000000002"),),
        b"ab",
        content_length=2,
    ),
    ok(
        "head of exactly max_head_bytes",
        padded_head(64),
        padded_head_headers(64),
        max_head_bytes=64,
        content_length=0,
    ),
    ok(
        "head of exactly the default 64 KiB",
        padded_head(65536),
        padded_head_headers(65536),
        content_length=0,
    ),
    ok(
        "each 1xx head counts on its own",
        b"HTTP/1.1 100 Continue\r\nX: " + b"a" * 28 + b"\r\n\r\n" + padded_head(64),
        padded_head_headers(64),
        max_head_bytes=64,
        content_length=0,
    ),
    ok("exactly max_headers fields", many_headers(5), many_headers_list(5), max_headers=5, content_length=0),
    ok("exactly the default 100 fields", many_headers(100), many_headers_list(100), content_length=0),
    ok("no field allowed, none sent", OK + b"\r\n", (), max_headers=0, keep_alive=False, eof=True),
    ok("trailers of exactly max_head_bytes", padded_trailers(64), (TE,), b"x", chunked=True, max_head_bytes=64),
    ok("exactly max_headers trailer fields", many_trailers(3), (TE,), chunked=True, max_headers=3),
    ok(
        "chunk-size line of exactly 4096 bytes",
        CHUNKED_HEAD + chunk_line(4096) + b"x\r\n0\r\n\r\n",
        (TE,),
        b"x",
        chunked=True,
    ),
    # Bytes after the end: the answer stands, however the reads were cut; the connection is not reused.
    ok(
        "two responses in one feed",
        TYPICAL + TYPICAL,
        TYPICAL_HEADERS,
        b"{}",
        content_length=2,
        keep_alive=False,
        trailing=True,
    ),
    ok(
        "bytes after a 204",
        b"HTTP/1.1 204 No Content\r\n\r\nx",
        (),
        status=204,
        reason=b"No Content",
        keep_alive=False,
        trailing=True,
    ),
    ok(
        "bytes after a HEAD answer",
        OK + b"Content-Length: 5\r\n\r\nhello",
        ((b"content-length", b"5"),),
        keep_alive=False,
        trailing=True,
        head_request=True,
    ),
    ok(
        "bytes after chunked", CHUNKED_HEAD + b"0\r\n\r\nHTTP/1.1", (TE,), chunked=True, keep_alive=False, trailing=True
    ),
    ok(
        "bytes past Content-Length",
        OK + b"Content-Length: 1\r\n\r\nxy",
        ((b"content-length", b"1"),),
        b"x",
        content_length=1,
        keep_alive=False,
        trailing=True,
    ),
    Case("incomplete head is not an error yet", OK + b"Content-Le", Outcome(None)),
    Case(
        "incomplete content-length body",
        OK + b"Content-Length: 10\r\n\r\nabc",
        Outcome(None, 200, b"OK", ((b"content-length", b"10"),), b"abc", True, False, False, 10, False),
    ),
    Case(
        "incomplete chunked body",
        CHUNKED_HEAD + b"5\r\nhel",
        Outcome(None, 200, b"OK", (TE,), b"hel", True, False, False, -1, True),
    ),
)

CLOSED = "the provider closed the connection before the answer was complete"

INVALID: tuple[Case, ...] = (
    bad("HTTP/2 status line", b"HTTP/2 200 OK\r\n\r\n", "a malformed status line"),
    bad("HTTP/1.2", b"HTTP/1.2 200 OK\r\n\r\n", "a malformed status line", oracle_accepts=True),
    bad("lower-case http", b"http/1.1 200 OK\r\n\r\n", "a malformed status line"),
    bad("two-digit status", b"HTTP/1.1 20 OK\r\n\r\n", "a malformed status line"),
    bad("four-digit status", b"HTTP/1.1 2000 OK\r\n\r\n", "a malformed status line"),
    bad("status 600", b"HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", "a malformed status line", oracle_accepts=True),
    bad("status 099", b"HTTP/1.1 099 X\r\n\r\n", "a malformed status line"),
    bad("double SP before status", b"HTTP/1.1  200 OK\r\n\r\n", "a malformed status line"),
    bad("no SP after status", b"HTTP/1.1 200OK\r\n\r\n", "a malformed status line"),
    bad("control char in reason", b"HTTP/1.1 200 O\x01K\r\n\r\n", "a malformed status line", oracle_accepts=True),
    bad("DEL in reason", b"HTTP/1.1 200 O\x7fK\r\n\r\n", "a malformed status line", oracle_accepts=True),
    bad("blank line before status line", b"\r\nHTTP/1.1 200 OK\r\n\r\n", "a malformed status line"),
    bad("garbage", b"<html>hello</html>\r\n\r\n", "a malformed status line"),
    bad(
        "101 switching protocols",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "the provider switched protocols (101), which the gateway never asks for",
    ),
    bad("bare CR in status line", b"HTTP/1.1 200 O\rK\r\n\r\n", "a status line with a bare CR"),
    bad(
        "bare LF after status line",
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "a status line ending in a bare LF",
        oracle_accepts=True,
    ),
    bad("NUL in status line", b"HTTP/1.1 200 O\x00K\r\n\r\n", "a status line with a NUL byte"),
    bad("bare CR in header line", OK + b"X-A: b\rc\r\n\r\n", "a header line with a bare CR"),
    bad("bare CR ends a header line", OK + b"X-A: b\r\r\n\r\n", "a header line with a bare CR"),
    bad(
        "bare LF after header line",
        OK + b"Content-Length: 0\n\r\n",
        "a header line ending in a bare LF",
        oracle_accepts=True,
    ),
    bad(
        "bare LF ends the head",
        OK + b"Content-Length: 0\r\n\n",
        "a header line ending in a bare LF",
        oracle_accepts=True,
    ),
    bad("NUL in header value", OK + b"X-A: b\x00c\r\n\r\n", "a header line with a NUL byte"),
    bad("NUL in header name", OK + b"X\x00A: b\r\n\r\n", "a header line with a NUL byte"),
    bad(
        "obs-fold",
        OK + b"X-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
        "a folded header line (obs-fold)",
        oracle_accepts=True,
    ),
    bad("whitespace before the first field", OK + b" X-A: b\r\n\r\n", "a folded header line (obs-fold)"),
    bad("tab obs-fold", OK + b"X-A: b\r\n\tc\r\n\r\n", "a folded header line (obs-fold)", oracle_accepts=True),
    bad("space before colon", OK + b"X-A : b\r\n\r\n", "a header line with whitespace before the colon"),
    bad("tab before colon", OK + b"X-A\t: b\r\n\r\n", "a header line with whitespace before the colon"),
    bad("empty name", OK + b": b\r\n\r\n", "a header line with an empty field name"),
    bad("no colon", OK + b"X-A b\r\n\r\n", "a header line without a colon"),
    bad("non-token name", OK + b"X(A): b\r\n\r\n", "a header line whose field name is not a token"),
    bad("space inside name", OK + b"X A: b\r\n\r\n", "a header line whose field name is not a token"),
    bad("obs-text in name", OK + b"X\xe9: b\r\n\r\n", "a header line whose field name is not a token"),
    bad(
        "control char in value",
        OK + b"X-A: b\x01c\r\nContent-Length: 0\r\n\r\n",
        "a header line with a control character in its value",
        oracle_accepts=True,
    ),
    bad(
        "DEL in value",
        OK + b"X-A: b\x7f\r\nContent-Length: 0\r\n\r\n",
        "a header line with a control character in its value",
        oracle_accepts=True,
    ),
    bad("VT in value", OK + b"X-A: b\x0bc\r\n\r\n", "a header line with a control character in its value"),
    bad("gzip transfer coding", OK + b"Transfer-Encoding: gzip\r\n\r\n", "a Transfer-Encoding other than chunked"),
    bad("gzip, chunked", OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n", "a Transfer-Encoding other than chunked"),
    bad(
        "chunked, chunked",
        OK + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        "a Transfer-Encoding other than chunked",
    ),
    bad(
        "two Transfer-Encoding fields",
        OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "a Transfer-Encoding other than chunked",
    ),
    bad("empty Transfer-Encoding", OK + b"Transfer-Encoding:\r\n\r\n", "a Transfer-Encoding other than chunked"),
    bad(
        "Content-Length and Transfer-Encoding",
        OK + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
        oracle_accepts=True,
    ),
    bad(
        "Transfer-Encoding and Content-Length on a 304",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "both Content-Length and Transfer-Encoding",
        oracle_accepts=True,
    ),
    bad("non-digit Content-Length", OK + b"Content-Length: abc\r\n\r\n", "a malformed Content-Length"),
    bad("negative Content-Length", OK + b"Content-Length: -1\r\n\r\n", "a malformed Content-Length"),
    bad("plus Content-Length", OK + b"Content-Length: +5\r\n\r\n", "a malformed Content-Length"),
    bad("hex Content-Length", OK + b"Content-Length: 0x5\r\n\r\n", "a malformed Content-Length"),
    bad("spaced Content-Length", OK + b"Content-Length: 5 5\r\n\r\n", "a malformed Content-Length"),
    bad("empty Content-Length", OK + b"Content-Length:\r\n\r\n", "a malformed Content-Length"),
    bad("trailing comma Content-Length", OK + b"Content-Length: 5,\r\n\r\nhello", "a malformed Content-Length"),
    bad("non-ASCII digit Content-Length", OK + b"Content-Length: \xd9\xa5\r\n\r\n", "a malformed Content-Length"),
    bad(
        "Content-Length of 19 digits",
        OK + b"Content-Length: 0000000000000000002\r\n\r\nab",
        "a malformed Content-Length",
        oracle_accepts=True,
    ),
    bad(
        "conflicting Content-Length list",
        OK + b"Content-Length: 5, 6\r\n\r\nhello",
        "conflicting Content-Length values",
    ),
    bad(
        "conflicting Content-Length fields",
        OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "conflicting Content-Length values",
    ),
    bad(
        "Content-Length 05 and 5 differ as text",
        OK + b"Content-Length: 05\r\nContent-Length: 5\r\n\r\nhello",
        "conflicting Content-Length values",
    ),
    bad(
        "malformed Content-Length on a 1xx",
        b"HTTP/1.1 100 Continue\r\nContent-Length: x\r\n\r\n",
        "a malformed Content-Length",
    ),
    bad(
        "malformed Content-Length on HEAD",
        OK + b"Content-Length: x\r\n\r\n",
        "a malformed Content-Length",
        head_request=True,
    ),
    bad("non-hex chunk size", CHUNKED_HEAD + b"x\r\n", "a malformed chunk size"),
    bad("empty chunk size", CHUNKED_HEAD + b"\r\n", "a malformed chunk size"),
    bad("0x chunk size", CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n", "a malformed chunk size"),
    bad("negative chunk size", CHUNKED_HEAD + b"-5\r\n", "a malformed chunk size"),
    bad(
        "17 hex digits",
        CHUNKED_HEAD + b"00000000000000001\r\nx\r\n0\r\n\r\n",
        "an oversized chunk size",
        oracle_accepts=True,
    ),
    bad("huge chunk size", CHUNKED_HEAD + b"fffffffffffffffffffff\r\n", "an oversized chunk size"),
    bad(
        "whitespace after chunk size",
        CHUNKED_HEAD + b"5 \r\nhello\r\n0\r\n\r\n",
        "a malformed chunk size",
        oracle_accepts=True,
    ),
    bad("whitespace before extension", CHUNKED_HEAD + b"5 ;a=b\r\nhello\r\n0\r\n\r\n", "a malformed chunk size"),
    bad(
        "control char in chunk extension",
        CHUNKED_HEAD + b"5;a=\x01\r\nhello\r\n0\r\n\r\n",
        "a control character in a chunk extension",
        oracle_accepts=True,
    ),
    bad(
        "bare CR in chunk-size line", CHUNKED_HEAD + b"5;a\rb\r\nhello\r\n0\r\n\r\n", "a chunk-size line with a bare CR"
    ),
    bad("bare LF after chunk size", CHUNKED_HEAD + b"5\nhello\r\n0\r\n\r\n", "a chunk-size line ending in a bare LF"),
    bad("NUL in chunk extension", CHUNKED_HEAD + b"5;\x00\r\nhello\r\n0\r\n\r\n", "a chunk-size line with a NUL byte"),
    bad("chunk data too long", CHUNKED_HEAD + b"5\r\nhelloX\r\n0\r\n\r\n", "a chunk not followed by CRLF"),
    bad("chunk data then bare LF", CHUNKED_HEAD + b"5\r\nhello\n0\r\n\r\n", "a chunk not followed by CRLF"),
    bad("chunk data then CR only", CHUNKED_HEAD + b"5\r\nhello\r0\r\n\r\n", "a chunk not followed by CRLF"),
    bad("bare CR in trailer", CHUNKED_HEAD + b"0\r\nX: a\rb\r\n\r\n", "a trailer line with a bare CR"),
    bad("bare LF ends the trailers", CHUNKED_HEAD + b"0\r\nX: a\r\n\n", "a trailer line ending in a bare LF"),
    bad(
        "obs-fold in trailer",
        CHUNKED_HEAD + b"0\r\nX: a\r\n b\r\n\r\n",
        "a folded trailer line (obs-fold)",
        oracle_accepts=True,
    ),
    bad(
        "non-token trailer name",
        CHUNKED_HEAD + b"0\r\nX Y: a\r\n\r\n",
        "a trailer line whose field name is not a token",
    ),
    bad(
        "control char in trailer value",
        CHUNKED_HEAD + b"0\r\nX: \x01\r\n\r\n",
        "a trailer line with a control character in its value",
        oracle_accepts=True,
    ),
    bad("head one past max_head_bytes", padded_head(65), "a response head larger than 64 bytes", max_head_bytes=64),
    bad("head one past the default 64 KiB", padded_head(65537), "a response head larger than 65536 bytes"),
    bad(
        "unterminated head past max_head_bytes",
        OK + b"X: " + b"a" * 100,
        "a response head larger than 64 bytes",
        max_head_bytes=64,
    ),
    bad(
        "1xx head one past max_head_bytes",
        b"HTTP/1.1 100 Continue\r\nX: " + b"a" * 35 + b"\r\n\r\n" + OK + b"\r\n",
        "a response head larger than 64 bytes",
        max_head_bytes=64,
    ),
    bad("one field past max_headers", many_headers(6), "more than 5 header fields", max_headers=5),
    bad("one field past the default 100", many_headers(101), "more than 100 header fields"),
    bad("a field when none is allowed", many_headers(1), "more than 0 header fields", max_headers=0),
    bad(
        "trailers one past max_head_bytes",
        padded_trailers(65),
        "a trailer section larger than 64 bytes",
        max_head_bytes=64,
    ),
    bad("one trailer past max_headers", many_trailers(4), "more than 3 trailer fields", max_headers=3),
    bad(
        "chunk-size line one past 4096 bytes",
        CHUNKED_HEAD + chunk_line(4097) + b"x\r\n0\r\n\r\n",
        "a chunk-size line longer than 4096 bytes",
    ),
    bad(
        "unterminated chunk-size line",
        CHUNKED_HEAD + b"1;" + b"e" * 5000,
        "a chunk-size line longer than 4096 bytes",
    ),
    bad("EOF before anything", b"", CLOSED, eof=True),
    bad("EOF in the status line", b"HTTP/1.1 20", CLOSED, eof=True),
    bad("EOF in the head", OK + b"Content-Length: 5\r\n", CLOSED, eof=True),
    bad("EOF after 1xx", b"HTTP/1.1 100 Continue\r\n\r\n", CLOSED, eof=True),
    bad("EOF in a Content-Length body", OK + b"Content-Length: 5\r\n\r\nhel", CLOSED, eof=True),
    bad("EOF in a chunk", CHUNKED_HEAD + b"5\r\nhel", CLOSED, eof=True),
    bad("EOF before the chunk CRLF", CHUNKED_HEAD + b"5\r\nhello\r", CLOSED, eof=True),
    bad("EOF before the last chunk", CHUNKED_HEAD + b"5\r\nhello\r\n", CLOSED, eof=True),
    bad("EOF in the trailers", CHUNKED_HEAD + b"0\r\nX: y\r\n", CLOSED, eof=True),
)

CASES: tuple[Case, ...] = VALID + INVALID


# Generated responses for the hypothesis tests: well-formed ones from these parts, then mutated.
STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 200 OK",
    b"HTTP/1.1 201 Created",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 304 Not Modified",
    b"HTTP/1.1 404",
    b"HTTP/1.1 500 ",
    b"HTTP/1.1 429 Too  Many\tRequests",
]
INTERIM_HEADS = [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"]
FIELD_LINES = [
    b"Content-Type: application/json",
    b"Date: Tue, 01 Dec 2026 11:00:00 GMT",
    b"Connection: close",
    b"Connection: keep-alive",
    b"connection: Upgrade , CLOSE",
    b"X-Request-Id:  abc ",
    b"Set-Cookie: a=b",
    b"X-Empty:",
    b"Server:\tgw\t",
    b"X-Obs: caf\xc3\xa9",
]
EXTENSIONS = [b"", b"", b";a=b", b';q="x y"', b";flag"]
TRAILERS = [b"X-Checksum: abc", b"X-Other:  d ", b"Expires: 0"]
# Bytes that hit the parser's rules when dropped into a response.
SPECIAL = [b"\r", b"\n", b"\x00", b" ", b"\t", b":", b",", b";", b"\x01", b"\x7f", b"\xff", b"0", b"f", b"x", b"\r\n"]


@dataclass(frozen=True)
class Generated:
    data: bytes
    head_request: bool
    eof: bool

    def case(self, max_head_bytes: int = 65536, max_headers: int = 100) -> Case:
        return Case("generated", self.data, Outcome(None), self.eof, self.head_request, max_head_bytes, max_headers)


@st.composite
def well_formed(draw: st.DrawFn) -> Generated:
    """A response a conforming server could send, framed by length, chunks or the connection close."""
    head = b"".join(draw(st.lists(st.sampled_from(INTERIM_HEADS), max_size=2)))
    lines = [draw(st.sampled_from(STATUS_LINES)), *draw(st.lists(st.sampled_from(FIELD_LINES), max_size=4))]
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "length", "repeated length", "chunked", "chunked", "close"]))
    if framing == "length":
        lines.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "repeated length":
        lines += [b"Content-Length: %d, %d" % (len(body), len(body)), b"Content-length: %d" % len(body)]
        payload = body
    elif framing == "chunked":
        lines.append(draw(st.sampled_from([b"Transfer-Encoding: chunked", b"transfer-encoding:  Chunked "])))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        payload = b"".join(
            b"%x%s\r\n%s\r\n" % (len(piece), draw(st.sampled_from(EXTENSIONS)), piece) for piece in pieces
        )
        trailers = draw(st.lists(st.sampled_from(TRAILERS), max_size=2))
        payload += (
            b"0" + draw(st.sampled_from(EXTENSIONS)) + b"\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"
        )
    else:
        payload = body
    head_request = draw(st.booleans())
    if head_request or lines[0][9:12] in (b"204", b"304"):
        payload = b""  # RFC 9110 §6.4.1: these answers end with their head
    data = head + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + payload
    return Generated(data, head_request, draw(st.booleans()))


@st.composite
def mutated(draw: st.DrawFn) -> Generated:
    """A well-formed response with a few bytes replaced, inserted, dropped, or cut off."""
    generated = draw(well_formed())
    data = bytearray(generated.data)
    # Positions from a seeded Random: hypothesis's own integers cluster at 0, the status line.
    rng = draw(st.randoms(use_true_random=True))
    for _ in range(draw(st.integers(1, 3))):
        at = rng.randint(0, len(data))
        how = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "repeat"]))
        if how == "replace" and at < len(data):
            data[at : at + 1] = draw(st.sampled_from(SPECIAL))
        elif how == "insert":
            data[at:at] = draw(st.sampled_from(SPECIAL))
        elif how == "delete":
            del data[at : at + 1]
        elif how == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 30))]
    return Generated(bytes(data), generated.head_request, generated.eof)


responses = st.one_of(well_formed(), mutated())


def cut(data: bytes, positions: list[int]) -> list[bytes]:
    """`data` cut at the given positions (taken modulo its length, sorted)."""
    bounds = [0, *sorted(p % (len(data) + 1) for p in positions), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
