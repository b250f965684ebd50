"""The ASGI app: lifespan opens the pool, a dict dispatches, one boundary renders errors."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Final

from mini_llm import hotpath, log_redaction
from mini_llm.asgi import Receive, Scope, Send, header_map
from mini_llm.config import ConfigError, Settings, load_settings
from mini_llm.errors import ClientDisconnected, Dialect, GatewayError, clip, error_body
from mini_llm.gateway.access_log import AccessLog
from mini_llm.gateway.browser_guard import (
    BrowserGuard,
    cors_headers,
    is_preflight,
    preflight_headers,
    with_headers,
)
from mini_llm.gateway.client_auth import ClientAuth
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.pipeline import JSON_HEADERS
from mini_llm.gateway.routes import anthropic, metrics, openai, ops, playground, responses
from mini_llm.gateway.routing import Router
from mini_llm.hosts import host_name, is_loopback
from mini_llm.listening import serving_hosts
from mini_llm.log_json import use_json
from mini_llm.server import PLAIN_FORMAT, SERVER_PID_ENV, on_drain_signal, tie_worker_to_server
from mini_llm.upstream.clients import UpstreamClients

logger = logging.getLogger("mini_llm")

# A request allocates a few hundred short-lived objects (aiohttp's request and response
# objects among them), so CPython's default gen-0 threshold of 700 ran a collection every few
# requests. A higher threshold, with the start-up heap frozen out of the scans, removes most of
# that work; cycles are still collected, just in larger batches.
GC_THRESHOLDS: Final = (50_000, 10, 10)

Handler = Callable[[Context, Request], Awaitable[None]]

ROUTES: Final[dict[tuple[str, str], tuple[Handler, Dialect | None]]] = {
    ("GET", "/health"): (ops.health, "openai"),
    ("HEAD", "/health"): (ops.health, "openai"),
    ("GET", "/ready"): (ops.ready, "openai"),
    ("HEAD", "/ready"): (ops.ready, "openai"),
    ("GET", "/playground"): (playground.playground, "openai"),
    ("HEAD", "/playground"): (playground.playground, "openai"),
    ("GET", "/metrics"): (metrics.metrics, "openai"),
    ("HEAD", "/metrics"): (metrics.metrics, "openai"),
    ("GET", "/v1/models"): (openai.list_models, None),  # both SDKs list models here: shape by anthropic-version
    ("POST", "/v1/chat/completions"): (openai.chat_completions, "openai"),
    ("POST", "/v1/completions"): (openai.completions, "openai"),
    ("POST", "/v1/embeddings"): (openai.embeddings, "openai"),
    ("POST", "/v1/images/generations"): (openai.image_generations, "openai"),
    ("POST", "/v1/messages"): (anthropic.messages, "anthropic"),
    ("POST", "/v1/messages/count_tokens"): (anthropic.count_tokens, "anthropic"),
    ("POST", "/v1/responses"): (responses.create, "openai"),
    ("POST", "/v1/responses/input_tokens"): (responses.input_tokens, "openai"),
    ("POST", "/v1/responses/compact"): (responses.compact, "openai"),
}
_METHODS_BY_PATH: Final[dict[str, list[str]]] = {}
for _method, _path in ROUTES:
    _METHODS_BY_PATH.setdefault(_path, []).append(_method)
# For errors raised before the route is looked up (Host, Origin, key): the shape of the path's route.
_PROTOCOL_BY_PATH: Final[dict[str, Dialect | None]] = {path: protocol for (_, path), (_, protocol) in ROUTES.items()}


def _protocol_for(path: str, headers: dict[bytes, bytes], route_protocol: Dialect | None) -> Dialect:
    """The route's own protocol; on shared or unknown paths, Anthropic's for clients that say so."""
    if route_protocol is not None:
        return route_protocol
    if path.startswith("/v1/messages") or b"anthropic-version" in headers:
        return "anthropic"
    return "openai"


MODEL_ROUTE: Final = openai.MODELS_PREFIX + "{id}"


def _is_model_path(path: str) -> bool:
    return path.startswith(openai.MODELS_PREFIX) and len(path) > len(openai.MODELS_PREFIX)


def _by_id_tail(path: str) -> str | None:
    """What follows the id in a Responses by-id path (`""`, `/cancel`, ...); None for any other path.

    A fixed path wins: `/v1/responses/input_tokens` and `/v1/responses/compact` are no response's ids.
    """
    if path in _METHODS_BY_PATH:
        return None
    parts = responses.split(path)
    return None if parts is None else parts[1]


def _methods_for(path: str) -> list[str]:
    """The methods a path is served with; none for an unknown path."""
    if _is_model_path(path):
        return ["GET"]
    tail = _by_id_tail(path)
    return list(responses.BY_ID_METHODS[tail]) if tail is not None else _METHODS_BY_PATH.get(path, [])


def route_label(path: str) -> str:
    """The metrics' route label: a served path, a by-id path's template, or "unknown" (a bounded set)."""
    if path in _METHODS_BY_PATH:
        return path
    if _is_model_path(path):
        return MODEL_ROUTE
    tail = _by_id_tail(path)
    return responses.route_label(tail) if tail is not None else "unknown"


def _lookup(method: str, path: str) -> tuple[Handler, Dialect | None]:
    route = ROUTES.get((method, path))
    if route is not None:
        return route
    if method == "GET" and _is_model_path(path):
        return openai.retrieve_model, None
    allowed = _methods_for(path)
    if method in allowed:  # a Responses by-id path: every fixed route was looked up above
        return responses.by_id, "openai"
    if not allowed:
        raise GatewayError(404, f"unknown path {clip(path)}: see the README for the endpoint list", code="not_found")
    # RFC 9110 15.5.6: a 405 names the allowed methods in Allow.
    allow = ", ".join(allowed)
    raise GatewayError(
        405, f"method {clip(method)} is not allowed on {clip(path)}; use {allow}", headers=[(b"allow", allow.encode())]
    )


async def _answer_preflight(ctx: Context, req: Request) -> None:
    """A CORS preflight from an allowed cross origin (the guard refused any other): no key, no body."""
    methods = ", ".join(_methods_for(req.scope["path"])).encode()
    await req.answer(204, preflight_headers(req.headers[b"origin"], methods, req.headers), b"")


def _as_bound(settings: Settings) -> Settings:
    """`settings` with the address the server really listens on, when that is wider than MINI_LLM_HOST says.

    An ASGI server run directly (`granian mini_llm.gateway.app:app --host 0.0.0.0`) binds its own address;
    the exposure check and the Host check must go by that one.
    """
    if not is_loopback(host_name(settings.host)):
        return settings
    wider = next((host for host in serving_hosts() if not is_loopback(host)), None)
    return settings if wider is None else dataclasses.replace(settings, host=wider)


def log_to_stderr_where_unconfigured() -> None:
    """The gateway's log and the root's on stderr, when the ASGI server did not apply server.LOG_CONFIG.

    Without a root handler, library records (asyncio, aiohttp) would go out through
    logging.lastResort; every handler set here gets the key redactor from log_redaction.install.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    if not logger.handlers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)


class GatewayApp:
    """The ASGI callable. Importing this module has no side effects: state is made in lifespan."""

    def __init__(self) -> None:
        self.ctx: Context | None = None
        self.guard: BrowserGuard | None = None
        self.auth: ClientAuth | None = None  # None when no gateway key is configured: no check at all
        self.access_log = AccessLog("text")

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
                except ConfigError as exc:  # the line `mini-llm serve` prints for it
                    await send({"type": "lifespan.startup.failed", "message": f"mini-llm: configuration error: {exc}"})
                    return
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.ctx is not None:
                    self.ctx.metrics.close()
                    await self.ctx.upstreams.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> Context:
        tie_worker_to_server()
        settings = _as_bound(load_settings(os.environ))
        open_warning = settings.check_exposure()  # raises for an open bind beyond loopback, as `serve` does
        log_to_stderr_where_unconfigured()
        if settings.log_format == "json":  # before the first record: the warnings below are JSON lines too
            use_json()
        log_redaction.install(key for provider in settings.providers.values() for key in provider.keys)
        if open_warning and SERVER_PID_ENV not in os.environ:  # `mini-llm serve` has logged it once already
            logger.warning("%s", open_warning)
        if hotpath.FALLBACK_REASON:
            logger.warning("hot path: %s", hotpath.FALLBACK_REASON)
        upstreams = UpstreamClients(settings.providers, settings, os.environ)
        await upstreams.open()
        router = Router(settings.providers, settings.aliases)
        keys = settings.client_key_digests
        self.guard = BrowserGuard(
            settings.host, settings.allowed_hosts, settings.allowed_origins, keys_required=bool(keys)
        )
        self.auth = ClientAuth(keys) if keys else None
        self.access_log = AccessLog(settings.log_format)
        gc.freeze()  # no collect first: it would cost ~20 ms of cold start for little import-time garbage
        gc.set_threshold(*GC_THRESHOLDS)
        ctx = Context(settings, router, upstreams, os.environ.get("MINI_LLM_DRAIN_MARKER"))
        on_drain_signal(ctx.begin_drain)
        return ctx

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        ctx = self.ctx
        if ctx is None:  # pragma: no cover - granian runs lifespan before serving
            raise RuntimeError("mini-llm needs an ASGI server that runs lifespan")
        method: str = scope["method"]
        path: str = scope["path"]
        headers = header_map(scope)
        req = Request(scope, receive, send, headers, "openai")
        req.began = began
        req.request_id = ctx.request_ids.of(headers)
        try:
            handler, route_protocol = self._admit(req, method, path)
            req.protocol = _protocol_for(path, headers, route_protocol)
            await handler(ctx, req)
        except GatewayError as exc:
            req.protocol = _protocol_for(path, headers, _PROTOCOL_BY_PATH.get(path))
            await self._fail(req, exc)
        except ClientDisconnected:
            # Either the client left (then nobody reads this) or granian could not parse the body.
            await self._fail(req, GatewayError(400, "the request body was cut off or malformed"))
        except Exception:
            logger.exception("unhandled error on %s %s", clip(method), clip(path))
            await self._fail(req, GatewayError(500, "internal gateway error; see the gateway log"))
        duration = time.perf_counter() - began
        overhead = duration - req.upstream_wait
        req.route = route_label(path)
        ctx.metrics.finished(req, duration, overhead)
        if ctx.settings.log_requests:
            self.access_log.write(req, duration, overhead)

    def _admit(self, req: Request, method: str, path: str) -> tuple[Handler, Dialect | None]:
        """The route, once the request may be served: Host and Origin first (preflights end there), then the key."""
        assert self.guard is not None, "made in lifespan startup"
        cross_origin = self.guard.admit(req.scope, req.headers)
        if cross_origin is not None:
            if is_preflight(method, req.headers):
                # A preflight never carries a key (Fetch standard 4.8); one for a method the path does not
                # serve, or for an unknown path, gets the 405 or 404 that request would.
                if req.headers[b"access-control-request-method"].decode("latin-1") not in _methods_for(path):
                    return _lookup(method, path)
                return _answer_preflight, None
            req.send = with_headers(req.send, cors_headers(cross_origin))
        if self.auth is not None and path.startswith("/v1/"):
            self.auth.check(req.headers)
        return _lookup(method, path)

    @staticmethod
    async def _fail(req: Request, exc: GatewayError) -> None:
        req.error = exc.message
        if req.started:
            return  # the provider's status already went out: the log keeps it, the note says what cut the answer
        await req.answer(exc.status, [*JSON_HEADERS, *exc.headers], error_body(req.protocol, exc))


app = GatewayApp()
