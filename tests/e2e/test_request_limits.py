"""Request-side limits over raw TCP: the whole-body deadline, Content-Length framing, clipped client values."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest

from mini_llm.config import ConfigError, load_settings
from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.raw_http import address, exchange, parse, send


@pytest.fixture(scope="module")
def slow_body_gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    """Pauses of up to 1 s are fine, but the whole body must be in within 2 s."""
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_BODY_TIMEOUT="1", MINI_LLM_BODY_DEADLINE="2")).start()
    yield process
    process.stop()


def test_body_trickled_inside_the_pause_limit_meets_the_deadline(slow_body_gateway: GatewayProcess) -> None:
    host, port = address(slow_body_gateway.url)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode())
        # A byte every 0.4 s never trips the 1 s pause limit; 25 of them take 10 s, far past the deadline.
        for _ in range(25):
            sock.sendall(b" ")
            readable, _, _ = select.select([sock], [], [], 0.4)
            if readable:
                break
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    answer = parse(received)
    assert answer.status == 408
    error = answer.json()["error"]
    assert error["message"] == "the request body took longer than 2s to arrive (MINI_LLM_BODY_DEADLINE)"
    assert request(slow_body_gateway.url, "GET", "/health").status == 200


def test_a_pause_is_still_reported_as_a_pause(slow_body_gateway: GatewayProcess) -> None:
    host, port = address(slow_body_gateway.url)
    head = f"POST /v1/messages HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100\r\n\r\n"
    answer = parse(exchange(slow_body_gateway.url, head.encode() + b'{"model":'))
    assert answer.status == 408
    assert answer.json()["error"]["message"] == "the request body stalled for 1s (MINI_LLM_BODY_TIMEOUT)"


@pytest.mark.parametrize(
    "length", [b"abc", b"-1", b"+30", b"0x1e", b"30, 30", b"30,31", b"99999999999999999999999", b"3\xd9\xa0", b""]
)
def test_malformed_content_length_never_reaches_the_gateway(gateway: GatewayProcess, length: bytes) -> None:
    # granian (2.8) refuses these itself with a bare 400 and closes; the gateway never sees the request,
    # so it cannot answer in the route's JSON shape (see README, Errors).
    host, port = address(gateway.url)
    probe = b"/v1/chat/completions-malformed-length"
    head = b"POST " + probe + b" HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: " % (host.encode(), port)
    answer = parse(exchange(gateway.url, head + length + b'\r\n\r\n{"model":"mock","messages":[]}'))
    assert (answer.status, answer.body, answer.headers[b"content-length"]) == (400, b"", b"0")
    assert send(gateway.url, b"GET", b"/v1/after-malformed-length").status == 404
    assert gateway.wait_for_log("'/v1/after-malformed-length' 404")
    assert probe.decode() not in gateway.log
    assert request(gateway.url, "GET", "/health").status == 200


def test_huge_model_name_is_clipped_in_the_access_log(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    model = "gpt-" + "x" * 1_000_000
    before = len(gateway.log)
    body = b'{"model":"' + model.encode() + b'","messages":[]}'
    assert (
        send(gateway.url, b"POST", b"/v1/chat/completions", [(b"Content-Type", b"application/json")], body).status
        == 200
    )
    assert upstream.last().body == body  # the provider still gets the name whole
    assert gateway.wait_for_log("(1000004 characters)")
    assert len(gateway.log) - before < 2_000


def test_huge_model_id_is_clipped_in_the_error_and_the_log(gateway: GatewayProcess) -> None:
    model_id = "y" * 50_000
    before = len(gateway.log)
    answer = send(gateway.url, b"GET", b"/v1/models/" + model_id.encode())
    assert answer.status == 404
    message = answer.json()["error"]["message"]
    assert message.endswith("... (50000 characters) is not an alias or a configured model")
    assert len(message) < 400
    assert gateway.wait_for_log("(50011 characters) 404")  # the path, clipped the same way
    assert len(gateway.log) - before < 2_000


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_body_deadline_must_be_a_positive_number_of_seconds(value: str) -> None:
    with pytest.raises(ConfigError, match="MINI_LLM_BODY_DEADLINE"):
        load_settings({"MINI_LLM_BODY_DEADLINE": value})
