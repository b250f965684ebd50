"""The raw upstream over real TCP (the process the benchmark starts): the canned answers, keep-alive,
chunked streams, delays; and its request-head parsing."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e import payloads, raw_upstream
from e2e.procs import free_port

SCRIPT = Path(raw_upstream.__file__)
STREAM_BODY = payloads.request_body(True)
PLAIN_BODY = payloads.request_body(False)


# The mock's answers carry the time they were made: made once, served and expected the same.
JSON_ANSWER = payloads.canned_json()
SSE_ANSWER = payloads.canned_sse()


def _start(tmp_path: Path, token_delay: float) -> Iterator[int]:
    (tmp_path / "a.json").write_bytes(JSON_ANSWER)
    (tmp_path / "a.sse").write_bytes(SSE_ANSWER)
    port = free_port()
    argv = [sys.executable, str(SCRIPT), "--port", str(port), "--json", str(tmp_path / "a.json")]
    process = subprocess.Popen([*argv, "--sse", str(tmp_path / "a.sse"), "--token-delay", str(token_delay)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    yield from _start(tmp_path, 0.0)


@pytest.fixture
def delayed_port(tmp_path: Path) -> Iterator[int]:
    yield from _start(tmp_path, 0.002)


def _post(
    conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    conn.request(
        "POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type") or "", response.read()


def test_plain_and_stream_answers_on_one_kept_alive_connection(port: int) -> None:
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        status, kind, body = _post(conn, PLAIN_BODY)
        assert (status, kind, body) == (200, "application/json", JSON_ANSWER)
        sock = conn.sock
        status, kind, body = _post(conn, STREAM_BODY)
        assert (status, kind) == (200, "text/event-stream")
        assert payloads.check_stream(body) == (True, payloads.STREAM_EVENTS)
        assert conn.sock is sock  # the same connection: both answers left it open


def test_stream_with_spaces_in_the_json_is_a_stream(port: int) -> None:
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
        _, kind, body = _post(conn, b'{"model": "m", "stream" : true}')
        assert kind == "text/event-stream"
        assert payloads.check_stream(body)[0]
        _, kind, _ = _post(conn, b'{"model": "m", "stream": false}')
        assert kind == "application/json"


def test_the_stream_is_chunked_one_chunk_per_event(port: int) -> None:
    """Raw bytes: 50 chunks, one event each, then the last chunk; Content-Length for the plain answer."""
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(STREAM_BODY)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + STREAM_BODY)
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            data += sock.recv(65536)
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head_bytes
    events = raw_upstream.split_events(SSE_ANSWER)
    assert body == b"".join(raw_upstream.chunk(event) for event in events) + b"0\r\n\r\n"
    assert len(events) == payloads.STREAM_EVENTS


def test_delayed_stream_holds_the_next_request_until_it_ends(delayed_port: int) -> None:
    """Two requests pipelined on one connection: the second answer follows the whole first stream."""
    one = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(STREAM_BODY)}\r\n\r\n"
    two = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(PLAIN_BODY)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", delayed_port), timeout=10) as sock:
        sock.sendall(one.encode() + STREAM_BODY + two.encode() + PLAIN_BODY)
        data = b""
        while not data.endswith(JSON_ANSWER):
            data += sock.recv(65536)
    stream, _, plain = data.partition(b"\r\n0\r\n\r\n")
    assert stream.count(b"data: ") == payloads.STREAM_EVENTS
    assert plain.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")


def test_connection_close_is_honoured(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"POST /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(PLAIN_BODY)}\r\n\r\n"
        sock.sendall(head.encode() + PLAIN_BODY)
        data = b""
        while chunk := sock.recv(65536):  # ends: the server closed
            data += chunk
    assert data.endswith(JSON_ANSWER)


def test_a_body_without_length_is_refused_and_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 411 ")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"POST /v1 HTTP/1.1\r\nContent-Length: 12", (b"POST", b"/v1", 12, False)),
        (b"POST /v1 HTTP/1.1\r\ncontent-length:  3 \r\nCONNECTION: Close", (b"POST", b"/v1", 3, True)),
        (b"GET /health HTTP/1.0", (b"GET", b"/health", 0, True)),
        (b"GET /health HTTP/1.0\r\nConnection: keep-alive", (b"GET", b"/health", 0, False)),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", (b"POST", b"/", None, False)),
    ],
)
def test_parse_head(head: bytes, expected: tuple[bytes, bytes, int | None, bool]) -> None:
    request = raw_upstream.parse_head(head)
    assert request is not None
    assert (request.method, request.path, request.body_length, request.close) == expected


@pytest.mark.parametrize("head", [b"POST /v1", b"hello", b"POST /v1 HTTP/2", b"POST / HTTP/1.1\r\nContent-Length: -1"])
def test_parse_head_refuses_what_is_not_http_1(head: bytes) -> None:
    assert raw_upstream.parse_head(head) is None


def test_chunk_is_rfc_9112_framing() -> None:
    assert raw_upstream.chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert raw_upstream.split_events(b"data: a\n\ndata: b\n\n") == [b"data: a\n\n", b"data: b\n\n"]
