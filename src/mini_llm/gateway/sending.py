"""Sending an answer to the client over ASGI: a small body at once, a large one as it arrives.

`await send` is where granian's backpressure applies: it waits while the client is slow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from mini_llm.asgi import Headers, Send

# A body up to this size with a known length is read whole and sent as one message (the usual
# answer); anything bigger, or of unknown length, is relayed piece by piece as it arrives.
WHOLE_BODY_BYTES: Final = 256 * 1024

# On every answer: what the browser guard lets through depends on Origin, so a cache must not serve an
# answer given to one origin to another (RFC 9110 12.5.5).
VARY_ORIGIN: Final = (b"vary", b"Origin")


async def send_whole(send: Send, status: int, headers: Headers, body: bytes) -> None:
    """One start and one final body: granian sends it as a single full response."""
    await send({"type": "http.response.start", "status": status, "headers": [*headers, VARY_ORIGIN]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def relay_body(
    send: Send, status: int, headers: Headers, first: bytes, rest: AsyncIterator[bytes], *, live: bool = False
) -> None:
    """Send the body piece by piece, one piece behind, so the last one carries the end.

    A body that came in one piece thus still goes out as one full response. Memory is a piece or
    two whatever the size: `await send` waits while the client is slow (granian's backpressure).
    If the provider fails midway the body is left unfinished, so the client sees a cut answer,
    never a short one that looks whole. A `live` body (an event stream answering a request that
    did not ask for one) goes out as each piece arrives, and ends with an empty message.
    """
    await send({"type": "http.response.start", "status": status, "headers": [*headers, VARY_ORIGIN]})
    if live:
        await _relay_live(send, first, rest)
        return
    piece = first
    async for following in rest:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        piece = following
    await send({"type": "http.response.body", "body": piece, "more_body": False})


async def _relay_live(send: Send, first: bytes, rest: AsyncIterator[bytes]) -> None:
    if first:
        await send({"type": "http.response.body", "body": first, "more_body": True})
    del first
    async for piece in rest:
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        del piece
    await send({"type": "http.response.body", "body": b"", "more_body": False})
