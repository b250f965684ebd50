"""OpenAI-compatible endpoints; upstream paths are relative to a base URL that includes /v1."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from mini_llm.errors import GatewayError, clip
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.pipeline import JSON_HEADERS, forward

MODELS_PREFIX = "/v1/models/"


async def chat_completions(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/chat/completions")


async def completions(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/completions")


async def embeddings(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/embeddings")


async def image_generations(ctx: Context, req: Request) -> None:
    # `model` is optional here: without one the request goes to OpenAI as sent.
    await forward(ctx, req, "/images/generations", model_required=False)


def _openai_model(model_id: str, owner: str, created: int) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def _anthropic_model(model_id: str, created: int) -> dict[str, object]:
    stamp = datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": stamp}


async def list_models(ctx: Context, req: Request) -> None:
    """Aliases and declared models; Anthropic's shape when the client speaks Anthropic."""
    models = ctx.router.model_ids()
    if req.protocol == "anthropic":
        data = [_anthropic_model(model_id, ctx.started_at) for model_id, _ in models]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        body = {"data": data, "has_more": False, "first_id": first, "last_id": last}
    else:
        body = {"object": "list", "data": [_openai_model(m, o, ctx.started_at) for m, o in models]}
    await req.answer(200, JSON_HEADERS, msgspec.json.encode(body))


async def retrieve_model(ctx: Context, req: Request) -> None:
    model_id = req.path[len(MODELS_PREFIX) :]
    for known, owner in ctx.router.model_ids():
        if known == model_id:
            if req.protocol == "anthropic":
                body = _anthropic_model(known, ctx.started_at)
            else:
                body = _openai_model(known, owner, ctx.started_at)
            await req.answer(200, JSON_HEADERS, msgspec.json.encode(body))
            return
    raise GatewayError(404, f"model {clip(model_id)} is not an alias or a configured model", code="model_not_found")
