"""Provider keys never reach the gateway's log, whatever a client puts in a request."""

from __future__ import annotations

import json

from tests.e2e.fake_upstream import ANTHROPIC_KEY, OPENAI_KEYS
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request

JSON = {"Content-Type": "application/json"}


def test_a_key_in_the_model_or_the_path_is_masked_in_the_access_log(gateway: GatewayProcess) -> None:
    # A client that pastes a key into the wrong field: the access line quotes the model and the path.
    # The built-in mock answers, so no provider's timing can change the outcome.
    for key in (OPENAI_KEYS[0], ANTHROPIC_KEY):
        body = json.dumps({"model": f"mock:{key}", "messages": [{"role": "user", "content": "hi"}]}).encode()
        assert request(gateway.url, "POST", "/v1/chat/completions", body, JSON).status == 200
        assert request(gateway.url, "POST", f"/v1/{key}", body, JSON).status == 404
    assert gateway.wait_for_log("model='mock:***' target=mock:'***'")
    assert gateway.wait_for_log("'/v1/***'")
    for key in (*OPENAI_KEYS, ANTHROPIC_KEY):
        assert key not in gateway.log
