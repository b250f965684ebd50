"""GET /metrics: the Prometheus text exposition of every worker's numbers (no gateway key, like /health)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mini_llm.errors import GatewayError
from mini_llm.gateway.context import Context, Request
from mini_llm.metrics.recorder import Recorder

if TYPE_CHECKING:
    from mini_llm.metrics.exposition import Exposition


def _exposition(recorder: Recorder) -> Exposition:
    from mini_llm.metrics.exposition import Exposition  # imports prometheus_client: ~0.1 s, once per worker

    return Exposition(recorder)


async def metrics(ctx: Context, req: Request) -> None:
    """Every worker's numbers merged (README "Operating it"); a 404 when MINI_LLM_METRICS is off."""
    recorder = ctx.metrics
    if not recorder.enabled:
        raise GatewayError(404, "metrics are off on this gateway (MINI_LLM_METRICS=off)", code="not_found")
    exposition = recorder.exposition
    if exposition is None:
        # In a thread: the import must not hold up the streams this worker relays meanwhile.
        exposition = recorder.exposition = await asyncio.to_thread(_exposition, recorder)
    body, content_type = exposition.render(req.headers.get(b"accept", b"").decode("latin-1"))
    headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
    await req.answer(200, headers, b"" if req.scope["method"] == "HEAD" else body)
