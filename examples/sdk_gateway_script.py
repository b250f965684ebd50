"""Start a gateway from Python and chat through it with the openai SDK (no keys: the built-in mock answers)."""

from __future__ import annotations

import openai

from mini_llm import Gateway


def main() -> None:
    # Gateway() picks a free port and waits until the gateway answers; leaving the block stops it.
    with Gateway() as gateway, openai.OpenAI(base_url=gateway.openai_base_url, api_key="unused") as client:
        reply = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "Hello!"}])
        print(f"{gateway.url} answered: {reply.choices[0].message.content}")


if __name__ == "__main__":
    main()
