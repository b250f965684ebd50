"""The aiohttp client's reader against a real aiohttp.web provider on 127.0.0.1, and the words a 502 uses."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey

from mini_llm.providers import Provider, Target
from mini_llm.upstream import failures
from mini_llm.upstream.aiohttp_client import AiohttpClient, connect_failure_reason
from tests.unit.memory import run_traced, traced_bytes
from tests.unit.scripted_upstream import ScriptedUpstream, keep_alive

# A body a client sent with a DELETE: after a head without a length it would be a second request.
SMUGGLED = b"GET /v1/secret HTTP/1.1\r\nHost: x\r\n\r\n"
SIZE = 100 * 1024  # under aiohttp's read-pause mark, so it all sits in the buffer for one read


def test_a_silent_provider_leaves_nothing_of_the_last_read_alive() -> None:
    """Waiting for the next read, the reader keeps no reference to the last one: a stream's memory is
    what the relay counts, not whatever aiohttp handed over last (one per open stream adds up)."""

    async def scenario() -> tuple[int, int]:
        release = asyncio.Event()

        async def provider(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"a" * SIZE)
            await release.wait()  # then silence
            return response

        app = web.Application()
        app.router.add_post("/v1/chat/completions", provider)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        upstream = AiohttpClient(5)
        await upstream.open()
        try:
            target = Target(Provider("local", "openai", base, (), "", key_required=False), "m", None, None)
            before = traced_bytes()
            response = await upstream.send(target, "/chat/completions", [b"{}"], {})
            # All of it buffered, so the next read takes it whole (aiohttp has no event for that).
            while response._response.content.total_bytes < SIZE:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            chunks = response.chunks()
            first = len(await anext(chunks))
            waiting = asyncio.ensure_future(anext(chunks))
            await asyncio.sleep(0.05)  # the reader now waits for the provider
            retained = traced_bytes() - before
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        finally:
            release.set()
            response.close()
            await upstream.close()
            await runner.cleanup()
        return first, retained

    first, retained = run_traced(scenario())
    assert first == SIZE
    assert retained < SIZE // 2, retained  # the connection's own state, not the read


def test_get_and_delete_go_without_content_and_a_post_without_one_says_zero() -> None:
    """RFC 9110 8.6, as the fast client does it: aiohttp itself would send `Content-Length: 0` on a DELETE."""

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        upstream = AiohttpClient(5)
        await upstream.open()
        bodies = []
        async with ScriptedUpstream(keep_alive) as server:
            target = Target(Provider("local", "openai", server.base_url, (), "", key_required=False), "m", None, None)
            for method, path, body in [
                ("GET", "/responses/resp_1/input_items?limit=2&include%5B%5D=a", ()),
                ("DELETE", "/responses/resp_1", (SMUGGLED,)),
                ("POST", "/responses/resp_1/cancel", (b"",)),
            ]:
                response = await upstream.send(target, path, body, {}, method=method)
                bodies.append(await response.read())
            await upstream.close()
        return server.requests, bodies

    requests, bodies = asyncio.run(scenario())
    assert bodies == [b'{"ok":true}'] * 3
    assert len(requests) == 3
    heads = [request.lower().split(b"\r\n") for request in requests]
    assert heads[0][0] == b"get /v1/responses/resp_1/input_items?limit=2&include%5b%5d=a http/1.1"
    assert heads[1][0] == b"delete /v1/responses/resp_1 http/1.1"
    assert heads[2][0] == b"post /v1/responses/resp_1/cancel http/1.1"
    for head in heads[:2]:
        assert not [line for line in head if line.startswith((b"content-", b"transfer-encoding"))]
    assert b"content-length: 0" in heads[2]
    assert b"content-type: application/json" in heads[2]


def test_a_failure_without_an_errno_is_named_by_its_class_never_by_its_message() -> None:
    key = ConnectionKey("secret-host.example", 8443, True, True, None, None, None, None)
    unknown = aiohttp.ClientConnectorError(key, ConnectionResetError(errno.ECONNRESET, "reset by secret-host.example"))
    assert connect_failure_reason(unknown) == "Connection reset by peer"  # the errno's words, not the message
    no_errno = aiohttp.ClientConnectorError(key, OSError("secret-host.example:8443 went away"))
    assert connect_failure_reason(no_errno) == "OSError"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ssl.SSLCertVerificationError(1, "certificate verify failed: hostname mismatch for secret-host"),
            "certificate verify failed",
        ),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] secret-host"), "TLS handshake failed"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known: secret-host"), "DNS lookup failed"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused by secret-host"), "Connection refused"),
        (OSError("secret-host:8443 went away"), "OSError"),
    ],
)
def test_the_reason_a_connection_failed_names_what_failed_never_the_message(error: OSError, reason: str) -> None:
    """Both clients word it alike; the OS's or OpenSSL's text, which may quote the address, stays out."""
    assert failures.connect_failure_reason(error) == reason
