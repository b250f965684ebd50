"""ClientAuth: either SDK's header, plaintext and digest entries alike, a 401 in each protocol's shape."""

from __future__ import annotations

import hashlib
import json

import pytest

from mini_llm.errors import GatewayError, error_body
from mini_llm.gateway.client_auth import ClientAuth

KEY = b"gw-unit-key-0001"
OTHER = b"gw-unit-key-0002"
AUTH = ClientAuth((hashlib.sha256(OTHER).digest(), hashlib.sha256(KEY).digest()))


@pytest.mark.parametrize(
    "headers",
    [
        {b"authorization": b"Bearer " + KEY},
        {b"authorization": b"BEARER  " + KEY + b" "},
        {b"x-api-key": KEY},
        {b"x-api-key": OTHER},
        {b"authorization": b"Bearer an-oauth-token", b"x-api-key": KEY},
        {b"authorization": b"Bearer " + KEY, b"x-api-key": b"stale"},
    ],
)
def test_a_configured_key_in_either_header_passes(headers: dict[bytes, bytes]) -> None:
    AUTH.check(headers)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "is missing"),
        ({b"authorization": b""}, "is missing"),
        ({b"authorization": b"Basic " + KEY}, "is missing"),
        ({b"authorization": KEY}, "is missing"),
        ({b"authorization": b"Bearer " + KEY[:-1]}, "is not a valid gateway API key"),
        ({b"x-api-key": KEY + b"x"}, "is not a valid gateway API key"),
        ({b"x-api-key": hashlib.sha256(KEY).hexdigest().encode()}, "is not a valid gateway API key"),
    ],
)
def test_anything_else_is_a_401_that_never_quotes_the_key(headers: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(GatewayError) as info:
        AUTH.check(headers)
    error = info.value
    assert error.status == 401
    assert reason in error.message
    assert KEY.decode()[:-1] not in error.message
    assert json.loads(error_body("openai", error))["error"] == {
        "message": error.message,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert json.loads(error_body("anthropic", error)) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": error.message},
    }
