"""Streams and failover: the commit point at the first good event, in-stream errors after it, disconnects.

Before the commit a stream's failure is retried like any other; after it, nothing is retried and the
client gets an in-stream error in its protocol, on a stream that still ends properly (the chunked
terminator, RFC 9112 7.1). A client that leaves cancels whatever the gateway was doing for it.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.e2e.failover_gateway import (
    Gateways,
    answered_by,
    attempts,
    on,
    raw_call,
    refusing,
    stream_and_leave,
    stream_request,
)
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.raw_http import Answer, address, parse
from tests.e2e.scripted_provider import (
    ScriptedProvider,
    Step,
    Wire,
    cut_after,
    empty_stream,
    error_after,
    error_event,
    first_event_error,
    hang,
    ok,
    rate_limited,
    reply,
    slow_stream,
    stream_bytes,
    stream_frames,
)

WIRES: list[Wire] = ["openai", "anthropic"]
CHUNKED_END = b"0\r\n\r\n"


def _chain(gateways: Gateways, server: ScriptedProvider, wire: Wire, name: str, **settings: str) -> GatewayProcess:
    """A gateway where alias `name` is the chain a:`name`-first, b:`name`-second, both speaking `wire`."""
    providers = [on(server, "a", protocol=wire), on(server, "b", protocol=wire)]
    return gateways.start(providers, {name: [f"a:{name}-first", f"b:{name}-second"]}, **settings)


def _stream(gateway: GatewayProcess, model: str, wire: Wire) -> tuple[bytes, Answer]:
    raw = raw_call(gateway, model, wire=wire, stream=True)
    return raw, parse(raw)


def _is_error_event(wire: Wire, event: bytes) -> bool:
    """Whether `event` (one event's bytes) is an in-stream error in the protocol's own shape."""
    lines = event.strip(b"\n").split(b"\n")
    data = json.loads(lines[-1].removeprefix(b"data: "))
    if wire == "anthropic":
        return lines[0] == b"event: error" and data["type"] == "error" and "message" in data["error"]
    return set(data) == {"error"} and "message" in data["error"]


BEFORE_COMMIT: dict[str, Step] = {
    "overloaded-first-event": first_event_error("overloaded_error"),
    "cut-before-any-event": cut_after(0),
    "ended-before-any-event": empty_stream(),
}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("failure", BEFORE_COMMIT)
def test_a_stream_failing_before_its_first_event_falls_over_and_the_client_sees_one_clean_stream(
    gateways: Gateways, server: ScriptedProvider, wire: Wire, failure: str
) -> None:
    name = f"{failure}-{wire}"
    gateway = _chain(gateways, server, wire, name)
    server.script(f"{name}-first", BEFORE_COMMIT[failure])
    server.script(f"{name}-second", ok())
    raw, answer = _stream(gateway, name, wire)
    assert answer.status == 200
    assert answer.headers[b"content-type"].startswith(b"text/event-stream")
    assert answer.body == stream_bytes(wire, f"{name}-second")  # nothing of the failed attempts
    assert raw.endswith(CHUNKED_END)
    assert len(server.seen(f"{name}-first")) == 3  # retried like any failure (MINI_LLM_RETRIES=2)
    assert (answered_by(answer), attempts(answer)) == (f"b:{name}-second", 4)


@pytest.mark.parametrize("wire", WIRES)
def test_a_first_event_error_that_arrives_in_two_reads_is_still_failed_over(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    """Half an event is no commit: the gateway holds the response start until the event is whole."""
    name = f"split-error-{wire}"
    gateway = _chain(gateways, server, wire, name, retries="0")
    server.script(f"{name}-first", first_event_error(pause=0.3))
    server.script(f"{name}-second", ok())
    raw, answer = _stream(gateway, name, wire)
    assert answer.body == stream_bytes(wire, f"{name}-second")
    assert raw.endswith(CHUNKED_END)
    assert (answered_by(answer), attempts(answer)) == (f"b:{name}-second", 2)


AFTER_COMMIT: dict[str, Step] = {"cut": cut_after(2), "error-event": error_after(2)}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("failure", AFTER_COMMIT)
def test_a_failure_after_the_commit_is_an_in_stream_error_with_no_retry(
    gateways: Gateways, server: ScriptedProvider, wire: Wire, failure: str
) -> None:
    name = f"after-commit-{failure}-{wire}"
    gateway = _chain(gateways, server, wire, name)
    server.script(f"{name}-first", AFTER_COMMIT[failure])
    server.script(f"{name}-second", ok())
    raw, answer = _stream(gateway, name, wire)
    assert answer.status == 200
    assert (answered_by(answer), attempts(answer)) == (f"a:{name}-first", 1)
    frames = stream_frames(wire, f"{name}-first")
    good = frames[0] + frames[1]
    assert answer.body.startswith(good)
    rest = answer.body.removeprefix(good)
    assert rest.endswith(b"\n\n") and rest.count(b"\n\n") == 1, rest  # exactly one more event: the error
    assert _is_error_event(wire, rest), rest
    if failure == "error-event":
        assert rest == error_event(wire)  # the provider's own error, relayed as it came
    assert raw.endswith(CHUNKED_END)  # the stream ends properly, never a silent cut
    time.sleep(0.5)  # nothing is retried later either
    assert (len(server.seen(f"{name}-first")), len(server.seen(f"{name}-second"))) == (1, 0)


@pytest.mark.parametrize("wire", WIRES)
def test_a_stream_failing_everywhere_relays_the_last_error_and_ends_properly(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    model = f"always-overloaded-{wire}"
    gateway = gateways.start([on(server, "a", protocol=wire)], retries="1")
    server.script(model, first_event_error())
    raw, answer = _stream(gateway, f"a:{model}", wire)
    assert answer.status == 200  # the provider's own answer: its status and its error event
    assert answer.body == error_event(wire)
    assert raw.endswith(CHUNKED_END)
    assert len(server.seen(model)) == 2
    assert attempts(answer) == 2


@pytest.mark.parametrize("wire", WIRES)
def test_a_stream_no_provider_answers_gets_a_plain_502_in_the_routes_shape(gateways: Gateways, wire: Wire) -> None:
    gateway = gateways.start([refusing("down", protocol=wire)], retries="1")
    _, answer = _stream(gateway, "down:nowhere", wire)
    assert answer.status == 502  # nothing was committed: an ordinary error answer, no event stream
    assert answer.headers[b"content-type"].startswith(b"application/json")
    data = answer.json()
    if wire == "anthropic":
        assert data["type"] == "error" and "down:nowhere" in data["error"]["message"]
    else:
        assert data["error"]["code"] == "upstream_unreachable" and "down:nowhere" in data["error"]["message"]
    assert (answered_by(answer), attempts(answer)) == (None, 2)


def _leave_after(gateway: GatewayProcess, server: ScriptedProvider, model: str, wire: Wire, stay: float) -> float:
    """Stream `a:model`, wait until the provider has it, stay `stay` seconds, then close; when it closed."""
    with socket.create_connection(address(gateway.url), timeout=10) as sock:
        sock.sendall(stream_request(gateway, f"a:{model}", wire))
        assert server.wait_for(lambda: len(server.seen(model)) >= 1)
        time.sleep(stay)
    return time.monotonic()


def _arrived_after(server: ScriptedProvider, model: str, moment: float) -> list[float]:
    return [seen.at - moment for seen in server.seen(model) if seen.at > moment]


@pytest.mark.parametrize("wire", WIRES)
def test_a_client_leaving_during_a_backoff_sleep_reaches_no_further_upstream(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    # Backoff sleeps of up to 1 s each, and 5 retries: a gateway that kept going after the client left
    # would send more requests in the 2 s this test waits.
    settings = {"retries": "5", "retry_backoff_base": "1", "retry_backoff_max": "1"}
    gateway = gateways.start([on(server, "a", protocol=wire)], None, **settings)
    model = f"leave-backoff-{wire}"
    server.script(model, reply(503))
    left = _leave_after(gateway, server, model, wire, 0.3)
    time.sleep(0.5)  # one already on its way when the client left may still arrive
    settled = len(server.seen(model))
    time.sleep(2)
    assert len(server.seen(model)) == settled, _arrived_after(server, model, left)
    assert settled < 6
    assert gateway.wait_for_log(f"499 model='a:{model}'")


@pytest.mark.parametrize("wire", WIRES)
def test_a_client_leaving_during_a_wait_for_a_cooling_key_reaches_no_further_upstream(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    gateway = gateways.start([on(server, "a", protocol=wire)])
    model = f"leave-cooling-{wire}"
    server.script(model, rate_limited("2"))  # the gateway waits the 2 s out (MINI_LLM_RETRY_AFTER_MAX=5)
    _leave_after(gateway, server, model, wire, 0.3)
    time.sleep(2.5)
    assert len(server.seen(model)) == 1
    assert gateway.wait_for_log(f"499 model='a:{model}'")


@pytest.mark.parametrize("wire", WIRES)
def test_a_client_leaving_during_an_attempt_cancels_it(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    gateway = gateways.start([on(server, "a", protocol=wire)], upstream_timeout="10")
    model = f"leave-in-flight-{wire}"
    server.script(model, hang(30))
    _leave_after(gateway, server, model, wire, 0.3)
    assert server.wait_for(lambda: model in server.disconnects)  # the provider saw the gateway let go
    time.sleep(1)
    assert len(server.seen(model)) == 1


@pytest.mark.parametrize("wire", WIRES)
def test_a_client_leaving_a_committed_slow_stream_closes_it_and_retries_nothing(
    gateways: Gateways, server: ScriptedProvider, wire: Wire
) -> None:
    name = f"leave-slow-{wire}"
    gateway = _chain(gateways, server, wire, name)
    server.script(f"{name}-first", slow_stream(0.1))
    stream_and_leave(gateway, name, b'"text":"."' if wire == "anthropic" else b'"content":"."', 2, wire=wire)
    assert server.wait_for(lambda: f"{name}-first" in server.disconnects)
    time.sleep(0.5)
    assert (len(server.seen(f"{name}-first")), len(server.seen(f"{name}-second"))) == (1, 0)
