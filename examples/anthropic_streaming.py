"""A streamed message with the official Anthropic SDK (note: the base URL has no /v1, as in the SDK)."""

from __future__ import annotations

import os

import anthropic

GATEWAY = os.environ.get("MINI_LLM_URL", "http://127.0.0.1:3333")

with (
    anthropic.Anthropic(base_url=GATEWAY, api_key="unused") as client,
    client.messages.stream(
        model="mock",  # or a `claude-*` model, or an alias for one, once ANTHROPIC_API_KEY is set
        max_tokens=64,  # required by the Messages API; the mock answers with exactly this many words
        messages=[{"role": "user", "content": "Say hello."}],
    ) as stream,
):
    for text in stream.text_stream:
        print(text, end="", flush=True)
    message = stream.get_final_message()
    print(f"\n(stop_reason={message.stop_reason}, {message.usage.output_tokens} output tokens)")
