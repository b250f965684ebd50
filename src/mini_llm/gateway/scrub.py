"""Blank the gateway's provider key out of whatever a provider sends back: headers, bodies, events.

The secret is the key's bytes (Target.secret, encoded once per key), or None when the request
carried no key (the mock, a keyless provider).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

MASK_BYTE: Final = b"*"


def mask(data: bytes, secret: bytes | None) -> bytes:
    """`data` with every copy of `secret` replaced by as many `*`: lengths and offsets stay true."""
    if secret and secret in data:
        return data.replace(secret, MASK_BYTE * len(secret))
    return data


class StreamScrubber:
    """Masks the key in a body that arrives in pieces, a key cut across two pieces included.

    Only the longest tail of a piece that could still be the start of the key is held back, so
    a piece without one (the usual case) goes out as it came, without a copy.
    """

    __slots__ = ("_held", "_secret")

    def __init__(self, secret: bytes | None) -> None:
        self._secret = secret
        self._held = b""

    def feed(self, piece: bytes) -> bytes:
        secret = self._secret
        if not secret:
            return piece
        data = mask(self._held + piece if self._held else piece, secret)
        cut = _start_of_partial(data, secret)
        if cut == len(data):
            self._held = b""
            return data
        self._held = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        """What is still held at the end of the body: a key prefix that never completed."""
        held, self._held = self._held, b""
        return held


def _start_of_partial(data: bytes, secret: bytes) -> int:
    """Where the longest suffix of `data` that is a proper prefix of `secret` starts (len(data) if none)."""
    first = secret[:1]
    at = data.find(first, max(0, len(data) - len(secret) + 1))
    while at >= 0:
        if secret.startswith(memoryview(data)[at:]):
            return at
        at = data.find(first, at + 1)
    return len(data)


async def scrubbed(chunks: AsyncIterator[bytes], secret: bytes | None) -> AsyncIterator[bytes]:
    """The body with the key masked, a key cut across two chunks included."""
    scrubber = StreamScrubber(secret)
    async for chunk in chunks:
        piece = scrubber.feed(chunk)
        del chunk  # NOTE: neither is kept while the provider is silent: memory no budget sees
        if piece:
            yield piece
        del piece
    tail = scrubber.flush()
    if tail:
        yield tail
