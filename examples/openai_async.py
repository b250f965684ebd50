"""Several chat completions at once with the async OpenAI SDK: the gateway relays them concurrently."""

from __future__ import annotations

import asyncio
import os

import openai

GATEWAY = os.environ.get("MINI_LLM_URL", "http://127.0.0.1:3333")
QUESTIONS = ("Say hello.", "Name a colour.", "Count to three.")


async def ask(client: openai.AsyncOpenAI, question: str) -> str:
    completion = await client.chat.completions.create(model="mock", messages=[{"role": "user", "content": question}])
    return completion.choices[0].message.content or ""


async def main() -> None:
    async with openai.AsyncOpenAI(base_url=f"{GATEWAY}/v1", api_key="unused") as client:
        answers = await asyncio.gather(*(ask(client, question) for question in QUESTIONS))
    for question, answer in zip(QUESTIONS, answers, strict=True):
        print(f"{question} -> {answer}")


asyncio.run(main())
