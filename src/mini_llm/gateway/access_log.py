"""The access log: one line per request, as text or as one JSON object (MINI_LLM_LOG_FORMAT)."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from mini_llm.config import LogFormat
from mini_llm.errors import CLIP_CHARS, clip
from mini_llm.gateway.context import Request
from mini_llm.log_json import JSON_LINE, timestamp

logger = logging.getLogger("mini_llm")

_encode = msgspec.json.Encoder().encode


def _cut(value: str | None) -> str | None:
    return None if value is None else value[:CLIP_CHARS]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def fields(req: Request, duration: float, overhead: float) -> dict[str, Any]:
    """The JSON line's fields, all of them always present (null where one does not apply); README lists them."""
    target = req.target
    return {
        "ts": timestamp(time.time()),
        "request_id": req.request_id,
        "method": req.scope["method"][:CLIP_CHARS],
        "path": req.path[:CLIP_CHARS],
        "status": req.status,
        "model": _cut(req.model),
        "provider": None if target is None else target.provider.name,
        "upstream_model": None if target is None or not target.model else target.model[:CLIP_CHARS],
        "attempts": [
            {
                "provider": a.provider,
                "model": a.model[:CLIP_CHARS] or None,  # None: a route without a model (by-id)
                "key": a.key,
                "outcome": a.outcome,
                "ms": round(a.ms, 3),
            }
            for a in req.attempts
        ],
        "duration_ms": _ms(duration),
        "overhead_ms": _ms(overhead),
        "ttft_ms": _ms(req.ttft),
        "events": req.events if req.stream_outcome is not None else None,
        "input_tokens": req.input_tokens,
        "output_tokens": req.output_tokens,
        "stream_outcome": req.stream_outcome,
        "client_gone": req.client_gone,
        "error": _cut(req.error),
    }


class AccessLog:
    """Writes the line through the `mini_llm` logger, so the key redactor on its handlers masks it."""

    __slots__ = ("_json",)

    def __init__(self, log_format: LogFormat) -> None:
        self._json = log_format == "json"

    def write(self, req: Request, duration: float, overhead: float) -> None:
        if self._json:
            logger.info("%s", _encode(fields(req, duration, overhead)).decode(), extra={JSON_LINE: True})
            return
        # A method is a token (RFC 9110 9.1): nothing to quote, only a length to bound.
        parts = [req.note] if req.note else []
        if req.error is not None:
            parts.append(f"error={req.error!r}")
        parts.append(f"request_id={clip(req.request_id)} overhead_ms={overhead * 1000:.3f}")
        note = " ".join(parts)
        logger.info("%s %s %d %s", req.scope["method"][:CLIP_CHARS], clip(req.path), req.status, note)
