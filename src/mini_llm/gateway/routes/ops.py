"""Operational endpoints for load balancers and humans: liveness and readiness."""

from __future__ import annotations

import msgspec

from mini_llm import __version__, hotpath
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.pipeline import JSON_HEADERS


def _unless_head(req: Request, body: bytes) -> bytes:
    """HEAD probes (some load balancers use them) get the status and headers only."""
    return b"" if req.scope["method"] == "HEAD" else body


def _routing_state(ctx: Context, providers: list[str]) -> dict[str, object]:
    """This worker's key cooldowns and breakers that are not closed: state is per worker (README)."""
    pools = ctx.failover.pools
    cooling = {
        name: [{"key": slot + 1, "reason": reason, "seconds_left": round(left, 1)} for slot, reason, left in cooling]
        for name in providers
        if (cooling := pools[name].cooling())
    }
    breakers = [
        {"target": f"{provider}:{model}", "state": state, "retry_in": round(retry_in, 1)}
        for provider, model, state, retry_in in ctx.failover.breakers.open_ones()
    ]
    available = {name: pools[name].available() for name in providers}
    return {"keys_available": available, "keys_cooling": cooling, "breakers": breakers}


async def health(ctx: Context, req: Request) -> None:
    """Liveness, plus what a human checks first: version, usable providers, hot path, upstream client."""
    providers = [p.name for p in ctx.settings.providers.values() if p.usable]
    body = {
        "status": "ok",
        "version": __version__,
        "providers": providers,
        "hot_path": hotpath.IMPLEMENTATION,
        "upstream_clients": {name: ctx.upstreams.kinds[name] for name in providers},
        "routing": _routing_state(ctx, providers),
    }
    await req.answer(200, JSON_HEADERS, _unless_head(req, msgspec.json.encode(body)))


async def ready(ctx: Context, req: Request) -> None:
    """503 while draining, so a load balancer stops sending before the process exits."""
    draining = ctx.draining
    body = b'{"status":"draining"}' if draining else b'{"status":"ready"}'
    await req.answer(503 if draining else 200, JSON_HEADERS, _unless_head(req, body))
