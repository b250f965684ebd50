"""One chat completion through the gateway with the official OpenAI SDK.

Run `make serve` first (or set MINI_LLM_URL to a running gateway). The gateway holds the
provider keys, so the SDK's api_key is a placeholder; with no keys configured the built-in
`mock` model answers.
"""

from __future__ import annotations

import os

import openai

GATEWAY = os.environ.get("MINI_LLM_URL", "http://127.0.0.1:3333")

with openai.OpenAI(base_url=f"{GATEWAY}/v1", api_key="unused") as client:
    completion = client.chat.completions.create(
        model="mock",  # or an alias (`fast`) or `provider:model` (`openai:gpt-4o-mini`)
        messages=[{"role": "user", "content": "Say hello."}],
    )
    print(completion.choices[0].message.content)
    if completion.usage is not None:
        print(f"({completion.usage.prompt_tokens} prompt + {completion.usage.completion_tokens} completion tokens)")
