"""The scripted provider itself, over raw HTTP: the failover tests can only be as right as it is."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.e2e.http_client import request
from tests.e2e.raw_http import address, exchange, parse
from tests.e2e.scripted_provider import (
    ScriptedProvider,
    Wire,
    by_key,
    closed_port,
    cut_after,
    empty_stream,
    error_after,
    error_event,
    first_event_error,
    hang,
    ok,
    overloaded,
    rate_limited,
    reply,
    reset,
    slow_stream,
    stream_bytes,
    stream_frames,
)

PATHS: dict[Wire, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def _head(server: ScriptedProvider, wire: Wire, body: bytes, key: str) -> bytes:
    auth = f"x-api-key: {key}" if wire == "anthropic" else f"Authorization: Bearer {key}"
    return (
        f"POST {PATHS[wire]} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n{auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _send(
    server: ScriptedProvider, model: str, *, wire: Wire = "openai", stream: bool = False, key: str = "k1"
) -> bytes:
    body = json.dumps({"model": model, "stream": stream}).encode()
    return exchange(server.base, _head(server, wire, body, key), timeout=10)


def test_steps_go_in_order_and_the_last_one_repeats(server: ScriptedProvider) -> None:
    server.script("order", reply(503), rate_limited("1"), ok())
    statuses = [parse(_send(server, "order")).status for _ in range(5)]
    assert statuses == [503, 429, 200, 200, 200]
    times = [seen.at for seen in server.seen("order")]
    assert times == sorted(times) and len(times) == 5


def test_each_request_is_recorded_with_its_key_path_and_body(server: ScriptedProvider) -> None:
    server.script("recorded", ok())
    _send(server, "recorded", key="sk-bearer")
    _send(server, "recorded", wire="anthropic", stream=True, key="sk-x-api-key")
    first, second = server.seen("recorded")
    assert (first.path, first.key, first.stream) == ("/v1/chat/completions", "sk-bearer", False)
    assert (second.path, second.key, second.stream) == ("/v1/messages", "sk-x-api-key", True)
    assert second.body == {"model": "recorded", "stream": True}


def test_an_unscripted_model_gets_a_400_naming_it(server: ScriptedProvider) -> None:
    answer = parse(_send(server, "nobody-scripted-this"))
    assert answer.status == 400
    assert "no script for model 'nobody-scripted-this'" in answer.json()["error"]["message"]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_successes_in_each_protocol(server: ScriptedProvider, wire: Wire) -> None:
    server.script(f"good-{wire}", ok())
    whole = parse(_send(server, f"good-{wire}", wire=wire)).json()
    text = whole["content"][0]["text"] if wire == "anthropic" else whole["choices"][0]["message"]["content"]
    assert text == f"ok from good-{wire}"
    streamed = parse(_send(server, f"good-{wire}", wire=wire, stream=True))
    assert streamed.headers[b"content-type"] == b"text/event-stream"
    assert streamed.body == stream_bytes(wire, f"good-{wire}")


def test_a_reply_carries_its_status_headers_and_shape(server: ScriptedProvider) -> None:
    server.script("limited", rate_limited("1"))
    answer = parse(_send(server, "limited", wire="anthropic"))
    assert (answer.status, answer.headers[b"retry-after"]) == (429, b"1")
    assert answer.json()["error"]["type"] == "rate_limit_error"
    server.script("overloaded", overloaded())
    answer = parse(_send(server, "overloaded", wire="anthropic"))
    assert answer.status == 529 and answer.json()["error"]["type"] == "overloaded_error"


def test_reset_sends_no_status_line(server: ScriptedProvider) -> None:
    server.script("reset", reset())
    assert _send(server, "reset") == b""


def test_hang_sends_nothing_and_notes_that_the_client_left(server: ScriptedProvider) -> None:
    server.script("hang", hang(30))
    body = json.dumps({"model": "hang"}).encode()
    with socket.create_connection(address(server.base), timeout=0.5) as sock:
        sock.sendall(_head(server, "openai", body, "k1"))
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert server.wait_for(lambda: "hang" in server.disconnects)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_first_event_error_is_the_whole_stream(server: ScriptedProvider, wire: Wire) -> None:
    server.script(f"first-error-{wire}", first_event_error())
    answer = parse(_send(server, f"first-error-{wire}", wire=wire, stream=True))
    assert answer.status == 200
    assert answer.body == error_event(wire)


def test_a_first_event_error_can_come_in_two_halves(server: ScriptedProvider) -> None:
    server.script("split-error", first_event_error(pause=0.5))
    body = json.dumps({"model": "split-error", "stream": True}).encode()
    with socket.create_connection(address(server.base), timeout=5) as sock:
        sock.sendall(_head(server, "openai", body, "k1"))
        received = b""
        while b'"error"' not in received:
            received += sock.recv(65536)
        assert b"\n\n" not in received.partition(b"\r\n\r\n")[2]  # only the first half so far
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    assert parse(received).body == error_event("openai")


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_error_after_good_events_ends_the_stream_properly(server: ScriptedProvider, wire: Wire) -> None:
    server.script(f"late-error-{wire}", error_after(2))
    raw = _send(server, f"late-error-{wire}", wire=wire, stream=True)
    assert raw.endswith(b"0\r\n\r\n")  # the chunked terminator (RFC 9112 7.1)
    frames = stream_frames(wire, f"late-error-{wire}")
    assert parse(raw).body == frames[0] + frames[1] + error_event(wire)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_cut_stream_has_no_chunked_end(server: ScriptedProvider, wire: Wire) -> None:
    server.script(f"cut-{wire}", cut_after(2))
    raw = _send(server, f"cut-{wire}", wire=wire, stream=True)
    assert not raw.endswith(b"0\r\n\r\n")
    frames = stream_frames(wire, f"cut-{wire}")
    assert parse(raw).body == frames[0] + frames[1]


def test_an_empty_stream_ends_properly_with_no_event(server: ScriptedProvider) -> None:
    server.script("empty", empty_stream())
    raw = _send(server, "empty", stream=True)
    assert raw.endswith(b"\r\n\r\n0\r\n\r\n")  # the head, then at once the chunked terminator
    assert parse(raw).body == b""


def test_by_key_answers_per_key(server: ScriptedProvider) -> None:
    server.script("keyed", by_key({"sk-one": reply(401), "sk-two": ok()}))
    assert parse(_send(server, "keyed", key="sk-one")).status == 401
    assert parse(_send(server, "keyed", key="sk-two")).status == 200
    assert parse(_send(server, "keyed", key="sk-three")).status == 400
    assert server.keys("keyed") == ["sk-one", "sk-two", "sk-three"]


def test_a_slow_stream_trickles_until_the_client_leaves(server: ScriptedProvider) -> None:
    server.script("slow", slow_stream(0.05))
    body = json.dumps({"model": "slow", "stream": True}).encode()
    with socket.create_connection(address(server.base), timeout=5) as sock:
        sock.sendall(_head(server, "openai", body, "k1"))
        received = b""
        while received.count(b'"content":"."') < 2:
            received += sock.recv(65536)
    assert server.wait_for(lambda: "slow" in server.disconnects)


def test_a_slow_answer_takes_its_delay(server: ScriptedProvider) -> None:
    server.script("late", ok(delay=0.3))
    began = time.monotonic()
    assert parse(_send(server, "late")).status == 200
    assert time.monotonic() - began >= 0.3


def test_a_closed_port_refuses(server: ScriptedProvider) -> None:
    with pytest.raises(ConnectionRefusedError):
        request(f"http://127.0.0.1:{closed_port()}", "POST", "/v1/chat/completions", b"{}")
