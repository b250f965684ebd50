"""An aiohttp.web handler served on 127.0.0.1 from a thread with its own event loop: the fake providers' server."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ThreadedServer:
    """Every path and method goes to `handler`; `port` is known once `start()` returns."""

    def __init__(
        self, handler: Handler, name: str, *, tls: ssl.SSLContext | None = None, client_max_size: int = 1024**2
    ) -> None:
        self._handler = handler
        self._name = name
        self._tls = tls
        self._client_max_size = client_max_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=self._client_max_size)
            app.router.add_route("*", "/{tail:.*}", self._handler)
            # handler_cancellation: a handler is cancelled when the gateway closes the connection.
            self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls)
            loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name=self._name)
        self._thread.start()
        assert ready.wait(10), f"{self._name} did not start"

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the server's own loop (a transport is not thread-safe)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
