"""A provider that compresses anyway: gzip and deflate are decoded (then scrubbed), anything else is a 502."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.e2e.fake_upstream import OPENAI_KEYS, REFUSED_ENCODINGS, UNKNOWN_ENCODINGS
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.raw_http import Answer

OPENAI_MASK = "*" * len(OPENAI_KEYS[0])


@pytest.fixture
def oai(any_gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=any_gateway.url + "/v1", api_key="client-key", max_retries=0) as client:
        yield client


def _chat(gateway: GatewayProcess, model: str, *, stream: bool = False) -> Answer:
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "x"}]}).encode()
    return request(gateway.url, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})


def test_a_gzip_error_body_is_decoded_and_scrubbed(any_gateway: GatewayProcess) -> None:
    response = _chat(any_gateway, "gzip-echo-key")
    assert response.status == 401
    assert b"content-encoding" not in response.headers
    assert response.json()["error"]["message"] == f"Incorrect API key provided: {OPENAI_MASK}"


@pytest.mark.parametrize("model", ["deflate-zlib", "deflate-raw"])
def test_deflate_is_decoded_zlib_wrapped_or_raw(any_gateway: GatewayProcess, model: str) -> None:
    response = _chat(any_gateway, model)
    assert response.status == 200
    assert b"content-encoding" not in response.headers
    assert response.json() == {"id": "chatcmpl-deflate", "object": "chat.completion", "key": OPENAI_MASK}


def test_a_gzip_stream_is_relayed_decoded_event_by_event(oai: openai.OpenAI, any_gateway: GatewayProcess) -> None:
    stream = oai.chat.completions.create(model="gzip-stream", messages=[{"role": "user", "content": "x"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"fake streamed café 😀 key={OPENAI_MASK}"
    raw = _chat(any_gateway, "gzip-stream", stream=True)
    assert b"content-encoding" not in raw.headers
    assert raw.body.endswith(b"data: [DONE]\n\n")
    assert b'"error"' not in raw.body


@pytest.mark.parametrize("name", sorted(REFUSED_ENCODINGS.keys() - UNKNOWN_ENCODINGS))
def test_any_other_known_encoding_is_a_502_that_names_it(any_gateway: GatewayProcess, name: str) -> None:
    response = _chat(any_gateway, f"encoded-{name}")
    assert response.status == 502
    error = response.json()["error"]
    assert f"Content-Encoding {REFUSED_ENCODINGS[name]!r}" in error["message"]
    assert "answered 200" in error["message"]
    assert error["code"] == "upstream_unreachable"


@pytest.mark.parametrize("name", sorted(UNKNOWN_ENCODINGS))
def test_an_unknown_encoding_is_a_502_that_never_quotes_it(any_gateway: GatewayProcess, name: str) -> None:
    """The value is the provider's own text: here the gateway's key, which must reach neither client nor log."""
    response = _chat(any_gateway, f"encoded-{name}")
    assert response.status == 502
    error = response.json()["error"]
    assert "answered 200 with an unknown coding in Content-Encoding" in error["message"]
    assert error["code"] == "upstream_unreachable"
    value = REFUSED_ENCODINGS[name].lower()
    assert value not in response.body.decode().lower()
    assert request(any_gateway.url, "GET", "/health").status == 200
    assert value not in any_gateway.log.lower()


def test_a_decompression_bomb_is_a_502(any_gateway: GatewayProcess) -> None:
    response = _chat(any_gateway, "gzip-bomb")
    assert response.status == 502
    assert "decompression bomb" in response.json()["error"]["message"]
    assert request(any_gateway.url, "GET", "/health").status == 200
