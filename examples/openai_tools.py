"""Function calling with the OpenAI SDK: `tools` goes through the gateway untouched.

A model may answer with a tool call (run it, send the result back, ask again) or with plain
text. The built-in mock provider calls the first tool offered (string arguments set to "mock")
and answers in text once the tool result is in; point an alias at a real model
(`MINI_LLM_MODEL_ALIASES='{"fast": "openai:gpt-4o-mini"}'`, MINI_LLM_MODEL=fast) for a real one.
"""

from __future__ import annotations

import json
import os

import openai
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

GATEWAY = os.environ.get("MINI_LLM_URL", "http://127.0.0.1:3333")
MODEL = os.environ.get("MINI_LLM_MODEL", "mock")

TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def get_weather(city: str) -> str:
    """A stand-in for a real lookup."""
    return json.dumps({"city": city, "sky": "clear", "celsius": 21})


with openai.OpenAI(base_url=f"{GATEWAY}/v1", api_key="unused") as client:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS).choices[0].message
    calls = [call for call in reply.tool_calls or [] if call.type == "function"]
    if not calls:
        print(f"answered without a tool call: {reply.content}")
    else:
        messages.append(
            {
                "role": "assistant",
                "content": reply.content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                    for call in calls
                ],
            }
        )
        for call in calls:
            print(f"tool call: {call.function.name}({call.function.arguments})")
            result = get_weather(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        print(f"answer: {final.choices[0].message.content}")
