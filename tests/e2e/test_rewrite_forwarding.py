"""Byte-exact forwarding: only the model value changes, and only when the route renames it."""

from __future__ import annotations

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
    """What upstream must receive: the template with `model` swapped. Whitespace between top-level
    tokens is not part of any value, and msgspec re-emits it compactly."""
    return TEMPLATE.replace("MODEL", f'"{model}"').replace('"max_tokens":   7', '"max_tokens":7').encode()


def test_alias_rewrite_changes_only_the_model(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    sent = TEMPLATE.replace("MODEL", '"fast"').encode()
    response = request(gateway.url, "POST", "/v1/chat/completions", sent, {"Content-Type": "application/json"})
    assert response.status == 200
    assert upstream.last().body == _rewritten("gpt-4o-mini")


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
