"""The token counts of an answer, whichever API gave it: chat completions, embeddings, messages or responses.

Chat completions, completions and embeddings count `usage.prompt_tokens` and `usage.completion_tokens`
(https://platform.openai.com/docs/api-reference/chat/object); Anthropic's messages
(https://docs.anthropic.com/en/api/messages) and OpenAI's Responses API
(https://platform.openai.com/docs/api-reference/responses/object) count `usage.input_tokens` and
`usage.output_tokens`. A count is a non-negative integer or unknown: metrics must never get a bad one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

Count = Annotated[int, msgspec.Meta(ge=0)]
Tokens = tuple[int | None, int | None]
_UNKNOWN: Tokens = (None, None)


class _Usage(msgspec.Struct):
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None


class _Answer(msgspec.Struct):
    """Only `usage`: msgspec skips every other member without building it."""

    usage: _Usage | None = None


_ANSWER = msgspec.json.Decoder(_Answer)


def _pair(prompt: int | None, completion: int | None, given: int | None, made: int | None) -> Tokens:
    """(input, output): the chat names first, the messages/responses names otherwise."""
    return (prompt if prompt is not None else given, completion if completion is not None else made)


def body_tokens(body: bytes) -> Tokens:
    """(input, output) tokens of a whole JSON answer; (None, None) when it has no readable `usage`.

    It runs on every non-stream answer, so it never raises: a body that is not JSON, a `usage` of the
    wrong shape or one nested past msgspec's depth limit all leave the counts unknown.
    """
    try:
        usage = _ANSWER.decode(body).usage
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return _UNKNOWN
    if usage is None:
        return _UNKNOWN
    return _pair(usage.prompt_tokens, usage.completion_tokens, usage.input_tokens, usage.output_tokens)


def _count(value: Any) -> int | None:
    # bool is an int in Python, never a count in JSON.
    return value if type(value) is int and value >= 0 else None


def usage_tokens(usage: Mapping[str, Any]) -> Tokens:
    """(input, output) tokens of a `usage` object already decoded (a stream's, gathered event by event)."""
    return _pair(
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        _count(usage.get("input_tokens")),
        _count(usage.get("output_tokens")),
    )
