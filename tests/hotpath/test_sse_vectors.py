"""The WHATWG HTML §9.2.6 event-stream vectors and captured-looking provider streams, through each twin and every
chunking (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.hotpath.sse_cases import (
    ANTHROPIC_TEXT,
    ANTHROPIC_TOOL_JSON,
    OPENAI_WORDS,
    VECTORS,
    Vector,
    anthropic_stream,
    byte_chunks,
    feed_all,
    openai_stream,
    random_chunks,
    triples,
)

if TYPE_CHECKING:
    from conftest import HotPathImpl

SEEDS = range(8)

CHUNKINGS = ["as-listed", "joined", "byte-by-byte", *(f"random-{seed}" for seed in SEEDS)]


def chunked(vector: Vector, how: str) -> list[bytes]:
    data = b"".join(vector.chunks)
    if how == "as-listed":
        return list(vector.chunks)
    if how == "joined":
        return [data]
    if how == "byte-by-byte":
        return byte_chunks(data)
    return random_chunks(data, int(how.removeprefix("random-")), 5)


def test_vectors_are_the_41_of_the_spec() -> None:
    assert [v.number for v in VECTORS] == list(range(1, 42))


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("vector", VECTORS, ids=[v.param_id for v in VECTORS])
def test_vector(hotpath_impl: HotPathImpl, vector: Vector, chunking: str) -> None:
    splitter = hotpath_impl.SSESplitter()
    events = feed_all(splitter, chunked(vector, chunking))
    assert triples(events) == list(vector.events)
    assert splitter.retry == vector.retry
    assert splitter.pending == vector.pending
    assert splitter.last_event_id == (vector.events[-1][2] if vector.events else "")


@pytest.mark.parametrize(
    ("chunks", "raws"),
    [
        pytest.param([b"data: a\r\n\r\n"], [b"data: a\r\n\r\n"], id="crlf"),
        pytest.param(
            [b": ping\ndata: a\n: c\n\ndata: b\n\n"], [b": ping\ndata: a\n: c\n\n", b"data: b\n\n"], id="comments"
        ),
        pytest.param([b": keep-alive\n\n", b"data: x\n\n"], [b"data: x\n\n"], id="comment-frame-not-in-next-raw"),
        pytest.param([b"event: e\nda", b"ta: x\r", b"\n\r\n"], [b"event: e\ndata: x\r\n\r\n"], id="spans-chunks"),
        pytest.param([b"\xef\xbb", b"\xbfid: 1\ndata: x\n\n"], [b"id: 1\ndata: x\n\n"], id="bom-not-in-raw"),
        pytest.param([b"data: a\r\n\r", b"\ndata: b\n\n"], [b"data: a\r\n\r", b"data: b\n\n"], id="swallowed-lf"),
        pytest.param([b"event: x\n\ndata: a\n\n"], [b"data: a\n\n"], id="no-data-frame-dropped"),
    ],
)
def test_raw_is_the_frame_as_received(hotpath_impl: HotPathImpl, chunks: list[bytes], raws: list[bytes]) -> None:
    splitter = hotpath_impl.SSESplitter()
    assert [e.raw for e in feed_all(splitter, chunks)] == raws
    assert splitter.pending == 0


def test_bytes_like_chunks(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter()
    events = splitter.feed(bytearray(b"data: a\n\nda")) + splitter.feed(memoryview(b"ta: b\n\n"))
    assert triples(events) == [("message", "a", ""), ("message", "b", "")]
    assert [type(e.raw) for e in events] == [bytes, bytes]


def test_event_value_type(hotpath_impl: HotPathImpl) -> None:
    event = hotpath_impl.SSEEvent("message", "x", "", b"data: x\n\n")
    assert event == hotpath_impl.SSEEvent("message", "x", "", b"data: x\n\n")
    assert event != hotpath_impl.SSEEvent("message", "x", "1", b"data: x\n\n")
    assert event != ("message", "x", "", b"data: x\n\n")
    assert repr(event) == "SSEEvent(event='message', data='x', id='', raw=b'data: x\\n\\n')"
    with pytest.raises(TypeError):
        hash(event)


STREAMS = {
    "openai": openai_stream(OPENAI_WORDS),
    "anthropic": anthropic_stream(ANTHROPIC_TEXT, ANTHROPIC_TOOL_JSON),
}


@pytest.mark.parametrize("stream", STREAMS)
def test_provider_stream_same_events_for_any_chunking(hotpath_impl: HotPathImpl, stream: str) -> None:
    data = STREAMS[stream]
    whole = feed_all(hotpath_impl.SSESplitter(), [data])
    assert feed_all(hotpath_impl.SSESplitter(), byte_chunks(data)) == whole
    for seed in SEEDS:
        assert feed_all(hotpath_impl.SSESplitter(), random_chunks(data, seed, 97)) == whole
    assert b"".join(e.raw for e in whole).replace(b": keep-alive\n\n", b"") == data.replace(b": keep-alive\n\n", b"")


def test_openai_stream_content(hotpath_impl: HotPathImpl) -> None:
    events = hotpath_impl.SSESplitter().feed(STREAMS["openai"])
    assert {e.event for e in events} == {"message"}
    assert events[-1].data == "[DONE]"
    assert '"usage":{"prompt_tokens":19' in events[-2].data
    assert "".join(e.data for e in events).count('"content":" café"') == 1


def test_anthropic_stream_content(hotpath_impl: HotPathImpl) -> None:
    events = hotpath_impl.SSESplitter().feed(STREAMS["anthropic"])
    names = [e.event for e in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    text = [e.data for e in events if '"text_delta"' in e.data]
    assert any("東京" in t for t in text)
    assert any("☀️" in t for t in text)
    partial = [e.data for e in events if "input_json_delta" in e.data]
    assert len(partial) == len(ANTHROPIC_TOOL_JSON)


def frame_ends(data: bytes) -> list[int]:
    """Stream offsets just past each blank line that ends a frame with data (LF-only streams)."""
    ends = []
    offset = 0
    for frame in data.split(b"\n\n")[:-1]:
        offset += len(frame) + 2
        if any(line.startswith(b"data:") for line in frame.split(b"\n")):
            ends.append(offset)
    return ends


@pytest.mark.parametrize("stream", STREAMS)
def test_each_event_comes_from_the_feed_holding_its_blank_line(hotpath_impl: HotPathImpl, stream: str) -> None:
    """An event is dispatched at its blank line (WHATWG HTML §9.2.6), before any byte of the next one is read."""
    data = STREAMS[stream]
    ends = frame_ends(data)
    splitter = hotpath_impl.SSESplitter()
    offset = 0
    for chunk in random_chunks(data, 7, 61):
        expected = sum(offset < end <= offset + len(chunk) for end in ends)
        offset += len(chunk)
        assert len(splitter.feed(chunk)) == expected
    assert splitter.pending == 0
