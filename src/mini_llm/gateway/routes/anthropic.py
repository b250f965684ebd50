"""Anthropic-compatible endpoints; upstream paths are relative to a base URL without /v1."""

from __future__ import annotations

from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.pipeline import forward


async def messages(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/v1/messages")


async def count_tokens(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/v1/messages/count_tokens")
