"""Byte-exact forwarding: only the model value changes, and only when the route renames it."""

from __future__ import annotations

import pytest

from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

# A decoy "model" inside message content, unusual spacing inside values, escapes, key order.
TEMPLATE = (
    '{"stream":false,"messages":[{"role":"user","content":"{\\"model\\": \\"decoy\\"} caf\\u00e9 \\ud83d\\ude00"},'
    '{"role":"assistant","content":[ {"type":"text",  "text":"a  b"} ]}],"model":MODEL,'
    '"temperature":0.50,"metadata":{"model":"nested-decoy"},"max_tokens":   7}'
)


def _rewritten(model: str) -> bytes:
    """What upstream must receive: the template with only the model value swapped, every other byte
    (whitespace between top-level members included) as the client sent it."""
    return TEMPLATE.replace("MODEL", f'"{model}"').encode()


def test_alias_rewrite_changes_only_the_model(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    sent = TEMPLATE.replace("MODEL", '"fast"').encode()
    response = request(gateway.url, "POST", "/v1/chat/completions", sent, {"Content-Type": "application/json"})
    assert response.status == 200
    assert upstream.last().body == _rewritten("gpt-4o-mini")


@pytest.mark.parametrize(
    ("path", "client_model", "upstream_model"),
    [("/v1/chat/completions", "fast", "gpt-4o-mini"), ("/v1/messages", "anthropic:claude-opus-4", "claude-opus-4")],
    ids=["alias", "provider-prefix"],
)
def test_pretty_printed_body_keeps_its_layout(
    gateway: GatewayProcess, upstream: FakeUpstream, path: str, client_model: str, upstream_model: str
) -> None:
    # An escaped spelling of the model value, a decoy `model` name nested, CRLF and tabs between members.
    template = (
        ' {\r\n\t"max_tokens" :\t7 ,\n  "metadata" : { "model" : "decoy" },\r\n  "model"  :  MODEL ,\n'
        '  "messages" : [ { "role" : "user" , "content" : " hi  there " } ]\n}\n'
    )
    escaped = client_model.replace("a", "\\u0061")
    sent = template.replace("MODEL", f'"{escaped}"').encode()
    response = request(gateway.url, "POST", path, sent, {"Content-Type": "application/json"})
    assert response.status == 200
    assert upstream.last().body == template.replace("MODEL", f'"{upstream_model}"').encode()


def test_unrenamed_model_forwards_the_exact_bytes(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    sent = ("  " + TEMPLATE.replace("MODEL", '"gpt-4o"') + "\n").encode()
    response = request(gateway.url, "POST", "/v1/chat/completions", sent, {"Content-Type": "application/json"})
    assert response.status == 200
    assert upstream.last().body == sent


def test_provider_prefix_is_stripped_in_the_body(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    sent = TEMPLATE.replace("MODEL", '"anthropic:claude-opus-4"').encode()
    response = request(gateway.url, "POST", "/v1/messages", sent, {"Content-Type": "application/json"})
    assert response.status == 200
    assert upstream.last().body == _rewritten("claude-opus-4")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", b'{"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"}'),
        ("/v1/chat/completions", b'{"model":"fast","messages":[],"model":"fast"}'),
        ("/v1/messages", b'{"model":"claude-opus-4","max_tokens":1,"messages":[],"model":"claude-3-5-haiku"}'),
        ("/v1/messages", b'{"model":"smart","stream":true,"max_tokens":1,"messages":[],"stream":false}'),
    ],
)
def test_repeated_model_or_stream_never_reaches_the_provider(
    gateway: GatewayProcess, upstream: FakeUpstream, path: str, body: bytes
) -> None:
    # A provider that keeps the first `model` would serve another model than the one logged and billed.
    before = len(upstream.seen)
    response = request(gateway.url, "POST", path, body, {"Content-Type": "application/json"})
    assert response.status == 400
    assert "repeats a top-level field" in str(response.json())
    assert len(upstream.seen) == before


@pytest.mark.parametrize(
    ("path", "shape"), [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")], ids=["openai", "anthropic"]
)
def test_deep_nesting_is_a_400_in_the_route_shape(gateway: GatewayProcess, path: str, shape: str) -> None:
    body = b'{"model":"gpt-4o","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = request(gateway.url, "POST", path, body, {"Content-Type": "application/json"})
    assert response.status == 400
    error = response.json()["error"]
    assert "nests arrays and objects too deeply" in error["message"]
    assert "Python's recursion limit" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert ("param" in error) == (shape == "openai")
    assert request(gateway.url, "GET", "/health").status == 200


def test_invalid_utf8_in_model_is_a_400(gateway: GatewayProcess) -> None:
    response = request(gateway.url, "POST", "/v1/chat/completions", b'{"model":"gpt-\xff","messages":[]}')
    assert response.status == 400
    assert response.json()["error"]["param"] == "model"
