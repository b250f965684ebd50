"""The ASGI app: lifespan opens the pool, a dict dispatches, one boundary renders errors."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Final

from mini_llm import hotpath, log_redaction
from mini_llm.asgi import Receive, Scope, Send, header_map
from mini_llm.config import load_settings
from mini_llm.context import Context, Request
from mini_llm.errors import ClientDisconnected, GatewayError, Protocol, error_body
from mini_llm.relay import send_whole
from mini_llm.routes import anthropic, openai, ops, playground
from mini_llm.routes.proxy import JSON_HEADERS
from mini_llm.routing import Router
from mini_llm.server import tie_worker_to_server
from mini_llm.upstream import Upstream

logger = logging.getLogger("mini_llm")

# A request allocates a few hundred short-lived objects (aiohttp's request and response
# objects among them), so CPython's default gen-0 threshold of 700 ran a collection every few
# requests. A higher threshold, with the start-up heap frozen out of the scans, removes most of
# that work; cycles are still collected, just in larger batches.
GC_THRESHOLDS: Final = (50_000, 10, 10)

Handler = Callable[[Context, Request], Awaitable[None]]

ROUTES: Final[dict[tuple[str, str], tuple[Handler, Protocol]]] = {
    ("GET", "/health"): (ops.health, "openai"),
    ("HEAD", "/health"): (ops.health, "openai"),
    ("GET", "/ready"): (ops.ready, "openai"),
    ("HEAD", "/ready"): (ops.ready, "openai"),
    ("GET", "/playground"): (playground.playground, "openai"),
    ("HEAD", "/playground"): (playground.playground, "openai"),
    ("GET", "/v1/models"): (openai.list_models, "openai"),
    ("POST", "/v1/chat/completions"): (openai.chat_completions, "openai"),
    ("POST", "/v1/completions"): (openai.completions, "openai"),
    ("POST", "/v1/embeddings"): (openai.embeddings, "openai"),
    ("POST", "/v1/images/generations"): (openai.image_generations, "openai"),
    ("POST", "/v1/messages"): (anthropic.messages, "anthropic"),
    ("POST", "/v1/messages/count_tokens"): (anthropic.count_tokens, "anthropic"),
}
_METHODS_BY_PATH: Final[dict[str, list[str]]] = {}
for _method, _path in ROUTES:
    _METHODS_BY_PATH.setdefault(_path, []).append(_method)


def _protocol_for(path: str, headers: dict[bytes, bytes], route_protocol: Protocol | None) -> Protocol:
    """The route's own protocol; on shared or unknown paths, Anthropic's for clients that say so."""
    if route_protocol is not None:
        return route_protocol
    if path.startswith("/v1/messages") or b"anthropic-version" in headers:
        return "anthropic"
    return "openai"


def _lookup(method: str, path: str) -> tuple[Handler, Protocol | None]:
    route = ROUTES.get((method, path))
    if route is not None:
        return route
    if path.startswith(openai.MODELS_PREFIX) and len(path) > len(openai.MODELS_PREFIX):
        if method == "GET":
            return openai.retrieve_model, None
        allowed = ["GET"]
    elif path in _METHODS_BY_PATH:
        allowed = _METHODS_BY_PATH[path]
    else:
        raise GatewayError(404, f"unknown path {path!r}: see the README for the endpoint list", code="not_found")
    # RFC 9110 15.5.6: a 405 names the allowed methods in Allow.
    allow = ", ".join(allowed)
    raise GatewayError(
        405, f"method {method} is not allowed on {path}; use {allow}", headers=[(b"allow", allow.encode())]
    )


class GatewayApp:
    """The ASGI callable. Importing this module has no side effects: state is made in lifespan."""

    def __init__(self) -> None:
        self.ctx: Context | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.ctx = await self._start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.ctx is not None:
                    await self.ctx.upstream.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> Context:
        tie_worker_to_server()
        settings = load_settings(os.environ)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s mini_llm: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        log_redaction.install(key for provider in settings.providers.values() for key in provider.keys)
        if hotpath.FALLBACK_REASON:
            logger.warning("hot path: %s", hotpath.FALLBACK_REASON)
        upstream = Upstream(settings.upstream_timeout)
        await upstream.open()
        router = Router(settings.providers, settings.aliases)
        gc.freeze()  # no collect first: it would cost ~20 ms of cold start for little import-time garbage
        gc.set_threshold(*GC_THRESHOLDS)
        return Context(settings, router, upstream, os.environ.get("MINI_LLM_DRAIN_MARKER"))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        if ctx is None:  # pragma: no cover - granian runs lifespan before serving
            raise RuntimeError("mini-llm needs an ASGI server that runs lifespan")
        method: str = scope["method"]
        path: str = scope["path"]
        headers = header_map(scope)
        req = Request(scope, receive, send, headers, "openai")
        route_protocol: Protocol | None = None
        try:
            handler, route_protocol = _lookup(method, path)
            req.protocol = _protocol_for(path, headers, route_protocol)
            await handler(ctx, req)
        except GatewayError as exc:
            req.protocol = _protocol_for(path, headers, route_protocol)
            await self._fail(req, exc)
        except ClientDisconnected:
            # Either the client left (then nobody reads this) or granian could not parse the body.
            await self._fail(req, GatewayError(400, "the request body was cut off or malformed"))
        except Exception:
            logger.exception("unhandled error on %s %s", method, path)
            await self._fail(req, GatewayError(500, "internal gateway error; see the gateway log"))
        if ctx.settings.log_requests:
            logger.info("%s %r %d %s", method, path, req.status, req.note)

    @staticmethod
    async def _fail(req: Request, exc: GatewayError) -> None:
        req.status = exc.status
        req.note = (req.note + " " if req.note else "") + f"error={exc.message!r}"
        if req.started:
            return
        await send_whole(req.send, exc.status, [*JSON_HEADERS, *exc.headers], error_body(req.protocol, exc))


app = GatewayApp()
