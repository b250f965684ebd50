"""Test code against a real gateway: the `mini_llm_gateway` fixture (from mini-llm's pytest plugin) runs one
per test session, on a free port; with no keys configured, the built-in `mock` model answers."""

from __future__ import annotations

import openai

from mini_llm import Gateway


def test_chat_through_the_gateway(mini_llm_gateway: Gateway) -> None:
    with openai.OpenAI(base_url=mini_llm_gateway.openai_base_url, api_key="unused") as client:
        reply = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "Hello!"}])
    assert reply.choices[0].message.content == "Hello from the mini-llm mock provider."
