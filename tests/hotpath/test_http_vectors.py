"""The response vectors through each parser twin, whole, cut in two at every index, and byte by byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mini_llm.hotpath.errors import HotPathError, HTTPParseError
from tests.hotpath.http_cases import CASES, CHUNKED_HEAD, OK, TYPICAL, Case, Outcome, run

if TYPE_CHECKING:
    from conftest import HotPathImpl

IDS = [case.name.replace(" ", "-") for case in CASES]


def test_case_names_are_unique() -> None:
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vector_whole(hotpath_impl: HotPathImpl, case: Case) -> None:
    assert run(hotpath_impl.ResponseParser, case, [case.data]).comparable() == case.expect.comparable()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vector_at_every_split_point(hotpath_impl: HotPathImpl, case: Case) -> None:
    expect = case.expect.comparable()
    data = case.data
    for cut in range(len(data) + 1):
        outcome = run(hotpath_impl.ResponseParser, case, [data[:cut], data[cut:]])
        assert outcome.comparable() == expect, f"cut at {cut}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vector_byte_by_byte(hotpath_impl: HotPathImpl, case: Case) -> None:
    data = case.data
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert run(hotpath_impl.ResponseParser, case, chunks).comparable() == case.expect.comparable()


def test_errors_are_hot_path_errors() -> None:
    assert issubclass(HTTPParseError, HotPathError)
    assert issubclass(HTTPParseError, ValueError)


def test_a_body_piece_that_is_the_whole_read_is_not_copied(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    assert parser.feed(OK + b"Content-Length: 10\r\n\r\n") == []
    read = b"0123456789"
    [piece] = parser.feed(read)
    assert piece is read
    assert parser.done

    parser = hotpath_impl.ResponseParser()
    parser.feed(CHUNKED_HEAD + b"a\r\n")
    [piece] = parser.feed(read)
    assert piece is read
    assert parser.feed(b"\r\n0\r\n\r\n") == []
    assert parser.done

    parser = hotpath_impl.ResponseParser()
    parser.feed(OK + b"\r\n")
    [piece] = parser.feed(read)
    assert piece is read


def test_body_pieces_come_as_soon_as_they_are_seen(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    assert parser.feed(CHUNKED_HEAD + b"5\r\nhel") == [b"hel"]
    assert parser.feed(b"lo\r\n3\r\nab") == [b"lo", b"ab"]
    assert parser.feed(b"c\r\n0\r\n\r\n") == [b"c"]
    assert parser.done
    assert parser.keep_alive
    assert parser.buffered == 0


def test_feed_after_done_or_error(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    assert parser.feed(TYPICAL) == [b"{}"]
    assert parser.feed(b"") == []
    assert parser.feed_eof() == []
    assert (parser.done, parser.keep_alive, parser.trailing) == (True, True, False)
    assert parser.feed(b"H") == []  # bytes after the answer: not read, and the connection is not reused
    assert (parser.done, parser.keep_alive, parser.trailing) == (True, False, True)
    assert parser.feed(b"TTP/1.1") == []
    assert parser.feed_eof() == []
    assert (parser.done, parser.keep_alive, parser.trailing) == (True, False, True)

    parser = hotpath_impl.ResponseParser()
    with pytest.raises(HTTPParseError, match="malformed status line"):
        parser.feed(b"HTTP/2 200 OK\r\n")
    assert (parser.done, parser.keep_alive) == (False, False)
    with pytest.raises(HTTPParseError, match="unusable after an earlier error"):
        parser.feed(b"")
    with pytest.raises(HTTPParseError, match="unusable after an earlier error"):
        parser.feed(b"x")
    with pytest.raises(HTTPParseError, match="unusable after an earlier error"):
        parser.feed_eof()


def test_feed_eof_ends_only_a_close_delimited_body(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    assert parser.feed(OK + b"\r\nabc") == [b"abc"]
    assert not parser.done
    assert parser.feed(b"def") == [b"def"]
    assert parser.feed_eof() == []
    assert (parser.done, parser.keep_alive, parser.content_length, parser.chunked) == (True, False, -1, False)


def test_head_state_before_the_final_head(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    parser.feed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX: y\r\n")
    assert (parser.status, parser.reason, parser.headers, parser.head_complete) == (0, b"", [], False)
    assert parser.feed(b"Content-Length: 1\r\n\r\n") == []
    assert (parser.status, parser.reason, parser.head_complete, parser.done) == (200, b"OK", True, False)
    assert parser.headers == [(b"x", b"y"), (b"content-length", b"1")]


def test_error_messages_never_quote_the_input(hotpath_impl: HotPathImpl) -> None:
    secret = b"sk-ant-SECRET"
    for data in (
        b"HTTP/1.1 200 " + secret + b"\x01\r\n\r\n",
        OK + b"X-Key: " + secret + b"\x01\r\n\r\n",
        OK + secret + b"\r\n\r\n",
        OK + b"Content-Length: " + secret + b"\r\n\r\n",
        CHUNKED_HEAD + secret + b"\r\n",
        CHUNKED_HEAD + b"1;" + secret + b"\x01\r\n",
    ):
        with pytest.raises(HTTPParseError) as caught:
            hotpath_impl.ResponseParser().feed(data)
        assert "SECRET" not in str(caught.value)


def test_constructor_keywords_and_bounds(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser(head_request=True, max_head_bytes=100, max_headers=1)
    assert parser.feed(OK + b"Content-Length: 5\r\n\r\n") == []
    assert parser.done
    with pytest.raises(ValueError, match="max_head_bytes"):
        hotpath_impl.ResponseParser(max_head_bytes=0)
    with pytest.raises(ValueError, match="max_headers"):
        hotpath_impl.ResponseParser(max_headers=-1)


def test_attributes_are_read_only(hotpath_impl: HotPathImpl) -> None:
    parser = hotpath_impl.ResponseParser()
    for name in (
        "status",
        "reason",
        "headers",
        "head_complete",
        "done",
        "keep_alive",
        "content_length",
        "chunked",
        "buffered",
    ):
        with pytest.raises(AttributeError):
            setattr(parser, name, 1)


def test_fresh_parser_state(hotpath_impl: HotPathImpl) -> None:
    outcome = run(hotpath_impl.ResponseParser, Case("empty", b"", Outcome(None)), [])
    assert outcome == Outcome(None)
    assert hotpath_impl.ResponseParser().buffered == 0
