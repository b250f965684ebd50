"""A minimal aiohttp pass-through, the yardstick: no proxy in Python should be slower than this.

aiohttp.web server plus one pooled ClientSession: forwards the POST body to the upstream and relays the
answer, a stream chunk by chunk as it arrives. Standalone (run by path), on uvloop.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

_SESSION = web.AppKey("session", aiohttp.ClientSession)
_UPSTREAM = web.AppKey("upstream", str)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    url = request.app[_UPSTREAM] + request.path_qs
    async with request.app[_SESSION].post(url, data=body, headers={"Content-Type": "application/json"}) as upstream:
        headers = {"Content-Type": upstream.headers.get("Content-Type", "application/json")}
        if not headers["Content-Type"].startswith("text/event-stream"):
            return web.Response(status=upstream.status, body=await upstream.read(), headers=headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def _session(app: web.Application) -> AsyncIterator[None]:
    app[_SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    yield
    await app[_SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9999")
    args = parser.parse_args()
    app = web.Application()
    app[_UPSTREAM] = args.upstream.rstrip("/")
    app.cleanup_ctx.append(_session)
    app.router.add_get("/health", _health)
    app.router.add_post("/{tail:.*}", _forward)
    sock = socket.create_server(("127.0.0.1", args.port), backlog=4096)
    web.run_app(app, sock=sock, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
