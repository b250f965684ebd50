"""h11 as an independent oracle: where h11 accepts an answer we agree with it or refuse it for a stated
reason; where h11 refuses one, we refuse it too.

Where we are stricter than h11 on purpose (see the mini_llm.hotpath._http_py docstring), and how each is
recognised below:
- a bare LF as a line end (h11 accepts `\\n` alone in the head and the trailers);
- obs-fold (h11 unfolds it);
- control characters other than HTAB in a field value or the reason (h11 accepts all but NUL, VT, FF);
- NUL, CR or a control character in a chunk extension (h11 skips extensions unchecked);
- HTTP versions other than 1.0/1.1 and status codes of 600 and above (h11 takes HTTP/d.d and 999);
- 101 Switching Protocols (the gateway never asks to upgrade);
- Content-Length together with Transfer-Encoding (h11 lets Transfer-Encoding win);
- a Content-Length of 19 or 20 digits, a chunk size of 17 to 20 hex digits (h11 allows 20 of either);
- whitespace after a chunk size (h11 tolerates it before the CRLF);
- a head over 64 KiB or with over 100 fields, a chunk-size line over 4096 bytes (our limits).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h11
import pytest
from hypothesis import example, given, settings

from tests.hotpath.http_cases import CASES, Case, Generated, Outcome, responses, run

if TYPE_CHECKING:
    from conftest import HotPathImpl


@dataclass(frozen=True)
class OracleView:
    """What h11 made of an answer: None for the status when it refused the input."""

    refused: bool
    status: int = 0
    reason: bytes = b""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    done: bool = False
    keep_alive: bool = False
    trailing: bool = False


def h11_view(data: bytes, head_request: bool, eof: bool) -> OracleView:
    view = h11_events(data, head_request, eof)
    if eof and view.done:
        # A body ended by the close cannot leave a reusable connection, which h11 does not report.
        without_eof = h11_events(data, head_request, eof=False)
        view = dataclasses.replace(view, keep_alive=without_eof.done and without_eof.keep_alive)
    return view


def h11_events(data: bytes, head_request: bool, eof: bool) -> OracleView:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    conn.send(h11.Request(method=b"HEAD" if head_request else b"GET", target=b"/", headers=[(b"Host", b"upstream")]))
    conn.send(h11.EndOfMessage())
    status, reason, body, done, keep_alive = 0, b"", b"", False, False
    headers: tuple[tuple[bytes, bytes], ...] = ()
    try:
        if data:
            conn.receive_data(data)
        if eof:
            conn.receive_data(b"")
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Response):
                status, reason, headers = event.status_code, bytes(event.reason), tuple(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                # Read before a later EOF closes the connection: whether it could have been reused.
                done, keep_alive = True, conn.their_state is h11.DONE
                break  # what follows is the next cycle's, which h11 judges apart (we stop, never reuse)
    except h11.RemoteProtocolError:
        return OracleView(refused=True)
    return OracleView(False, status, reason, headers, body, done, keep_alive, bool(conn.trailing_data[0]))


def as_h11_reports(headers: tuple[tuple[bytes, bytes], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """h11 lower-cases Transfer-Encoding and folds Content-Length lists and repeats into one field."""
    out = []
    for name, value in headers:
        if name == b"transfer-encoding":
            out.append((name, value.lower()))
        elif name != b"content-length":
            out.append((name, value))
        elif all(seen != name for seen, _ in out):
            out.append((name, value.split(b",")[0].strip()))
    return tuple(out)


def ours_view(outcome: Outcome) -> OracleView:
    return OracleView(
        outcome.error is not None,
        outcome.status,
        outcome.reason,
        as_h11_reports(outcome.headers),
        outcome.body,
        outcome.done,
        outcome.keep_alive,
        outcome.trailing,
    )


def head_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 4]


def status_lines(data: bytes) -> list[bytes]:
    """The first line and every line that looks like the status line of a later (final) head."""
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    return [lines[0], *(line for line in lines[1:] if line.startswith(b"HTTP/"))]


def status_line_h11_only(line: bytes) -> bool:
    """A status line h11 takes and we refuse: another HTTP/d.d, a status from 600, a control byte."""
    return (
        re.fullmatch(rb"HTTP/1\.[01] [1-5]\d\d( .*)?", line, re.DOTALL) is None
        or re.search(rb"[\x01-\x08\x0e-\x1f\x7f]", line) is not None
    )


Check = Callable[[bytes, OracleView], bool]


def has(pattern: bytes) -> Check:
    compiled = re.compile(pattern)
    return lambda data, _: compiled.search(data) is not None


def both_framings(data: bytes, _: OracleView) -> bool:
    head = head_of(data).lower()
    return b"\ncontent-length:" in head and b"\ntransfer-encoding:" in head


# Our message -> a check that the input really has what we refuse and h11 tolerates.
STRICTER: dict[str, Check] = {
    "ending in a bare LF": has(rb"(?<!\r)\n"),
    "(obs-fold)": has(rb"\n[ \t]"),
    "control character in its value": has(rb"[\x01-\x08\x0e-\x1f\x7f]"),
    "control character in a chunk extension": has(rb";[^\n]*[\x01-\x08\x0b-\x1f\x7f]"),
    "chunk-size line with a bare CR": has(rb";[^\n]*\r[^\n]"),
    "chunk-size line with a NUL byte": has(rb";[^\n]*\x00"),
    "malformed status line": lambda data, _: any(map(status_line_h11_only, status_lines(data))),
    "switched protocols (101)": has(rb"HTTP/\d\.\d 101"),
    "both Content-Length and Transfer-Encoding": both_framings,
    "malformed Content-Length": has(rb"(?i)content-length:[^\r\n]*\d{19}"),
    "oversized chunk size": has(rb"\n[0-9a-fA-F]{17,20}[\r;]"),
    "malformed chunk size": has(rb"\n[0-9a-fA-F]+(;[^\r\n]*)?[ \t]+\r\n"),
    # Our limits (h11 has none on the field count and runs here with a 1 MiB head bound).
    "a response head larger than 65536 bytes": lambda data, _: len(head_of(data)) > 65536,
    "more than 100 header fields": lambda data, _: head_of(data).count(b"\n") - 2 > 100,
    "a chunk-size line longer than 4096 bytes": has(rb"\n[0-9a-fA-F]+;[^\n]{4093}"),
}


def assert_matches_the_oracle(ours: Outcome, data: bytes, head_request: bool) -> None:
    oracle = h11_view(data, head_request, eof=True)
    mine = ours_view(ours)
    if oracle.refused:
        assert mine.refused, f"h11 refuses what we accept: {data[:300]!r}"
        return
    if mine.refused:
        assert ours.error is not None
        reasons = [check for message, check in STRICTER.items() if message in ours.error]
        assert reasons, f"we refuse what h11 accepts, for no stated reason: {ours.error} {data[:300]!r}"
        assert reasons[0](data, oracle), f"{ours.error} does not apply to {data[:300]!r}"
        return
    if oracle.trailing:
        # h11 keeps bytes after the answer for the next cycle; we stop there and never reuse the connection.
        oracle = dataclasses.replace(oracle, keep_alive=False)
    assert mine == oracle


VECTOR_EXAMPLES = [case for case in CASES if case.max_head_bytes == 65536 and case.max_headers == 100]


# Each input is followed by the close, so both parsers must decide: we refuse a bad line as soon as it
# ends, h11 only once it has the whole head, so a cut-off answer would compare a verdict with a wait.
@pytest.mark.parametrize("case", VECTOR_EXAMPLES, ids=[case.name.replace(" ", "-") for case in VECTOR_EXAMPLES])
def test_vector_against_the_oracle(hotpath_impl: HotPathImpl, case: Case) -> None:
    closed = dataclasses.replace(case, eof=True)
    ours = run(hotpath_impl.ResponseParser, closed, [case.data])
    if "stricter-than-h11" in case.tags:
        assert not h11_view(case.data, case.head_request, eof=True).refused, "h11 refuses it too: drop the tag"
    assert_matches_the_oracle(ours, case.data, case.head_request)


@settings(max_examples=500, deadline=None)
@given(generated=responses)
@example(Generated(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", False, False))
def test_generated_answers_against_the_oracle(hotpath_impl: HotPathImpl, generated: Generated) -> None:
    case = dataclasses.replace(generated.case(), eof=True)
    ours = run(hotpath_impl.ResponseParser, case, [generated.data])
    assert_matches_the_oracle(ours, generated.data, generated.head_request)
