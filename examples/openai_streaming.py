"""A streamed chat completion with the OpenAI SDK: text is printed as the gateway relays each event."""

from __future__ import annotations

import os

import openai

GATEWAY = os.environ.get("MINI_LLM_URL", "http://127.0.0.1:3333")

with openai.OpenAI(base_url=f"{GATEWAY}/v1", api_key="unused") as client:
    stream = client.chat.completions.create(
        model="mock",
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        stream_options={"include_usage": True},  # a last chunk with the token counts
    )
    with stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
            if chunk.usage is not None:
                print(f"\n({chunk.usage.completion_tokens} completion tokens)")
