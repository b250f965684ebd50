"""The mock provider as its own HTTP server (`mini-llm mock-upstream`), for benchmarks and e2e tests."""

from __future__ import annotations

import os
from typing import Final

from mini_llm.asgi import Headers, Receive, Scope, Send
from mini_llm.config import load_settings
from mini_llm.errors import Dialect, GatewayError, error_body
from mini_llm.gateway.sending import send_whole
from mini_llm.server import tie_worker_to_server
from mini_llm.upstream import mock_provider as mock

# Served path -> mock endpoint: OpenAI routes under /v1, Anthropic's at /v1/messages.
_ENDPOINTS: Final = {
    "/v1/chat/completions": "/chat/completions",
    "/v1/completions": "/completions",
    "/v1/embeddings": "/embeddings",
    "/v1/images/generations": "/images/generations",
    "/v1/responses": "/responses",
    "/v1/responses/input_tokens": "/responses/input_tokens",
    "/v1/messages": "/v1/messages",
    "/v1/messages/count_tokens": "/v1/messages/count_tokens",
}
_JSON: Headers = [(b"content-type", b"application/json")]


class MockUpstreamApp:
    """A deliberately thin ASGI app: it must never be the bottleneck of a benchmark."""

    def __init__(self) -> None:
        self.delay = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    tie_worker_to_server()
                    self.delay = load_settings(os.environ).mock_token_delay
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        protocol: Dialect = "anthropic" if path.startswith("/v1/messages") else "openai"
        try:
            await self._answer(scope, receive, send, path)
        except GatewayError as exc:
            await send_whole(send, exc.status, _JSON, error_body(protocol, exc))

    async def _answer(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if scope["method"] == "GET" and path in ("/health", "/v1/models"):
            body = b'{"status":"ok"}' if path == "/health" else b'{"object":"list","data":[]}'
            await send_whole(send, 200, _JSON, body)
            return
        endpoint = _ENDPOINTS.get(path)
        if endpoint is None or scope["method"] != "POST":
            raise GatewayError(404, f"mock upstream has no {scope['method']} {path}")
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        model = mock.request_model(body)
        reply = mock.respond(endpoint, body, model, self.delay)
        headers: Headers = [(b"content-type", reply.content_type), (b"x-request-id", b"req_mock")]
        if reply.stream is None:
            await send_whole(send, reply.status, headers, reply.body)
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        async for frame in reply.stream:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


app = MockUpstreamApp()
