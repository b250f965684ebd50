"""Undo a provider's gzip or deflate, in bounded steps, so the key scrub and the SSE splitter see plain bytes.

The gateway asks for `Accept-Encoding: identity`; a provider that compresses anyway is decoded
here rather than relayed compressed, where no scrub could match (RFC 9110 8.4.1).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Final

from mini_llm.errors import UpstreamUnreachable

# Decoded bytes per decompress call: memory per step stays this small whatever the ratio.
STEP: Final = 64 * 1024
# A decompression bomb: more than MAX_EXPANSION decoded bytes per compressed byte, once past
# EXPANSION_FLOOR decoded bytes. Real JSON and SSE answers compress ten- to fortyfold; deflate
# tops out near 1032:1, so a bomb trips this within its first step.
MAX_EXPANSION: Final = 200
EXPANSION_FLOOR: Final = 16 * 1024

_GZIP: Final = 16 + zlib.MAX_WBITS
_ZLIB: Final = zlib.MAX_WBITS
_RAW_DEFLATE: Final = -zlib.MAX_WBITS
_GZIP_MAGIC: Final = b"\x1f\x8b"
# RFC 9110 8.4.1: x-gzip is gzip; identity means none.
_NAMES: Final = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
# The codings a 502 may name: registered ones (RFC 9110 18.6; br RFC 7932, zstd RFC 8878). Any other
# value is the provider's own text, which may hold anything (a key among it), so it is never quoted.
_KNOWN: Final = frozenset({"br", "zstd", "compress", "x-compress", "gzip", "x-gzip", "deflate"})


def decoder_for(content_encoding: Sequence[bytes], provider: str, status: int) -> BodyDecoder | None:
    """The decoder for the answer's Content-Encoding; None for identity; 502 for anything else.

    Anything else cannot be scrubbed, so it is refused rather than relayed; the message keeps the
    provider's status.
    """
    if not content_encoding:  # the usual answer: identity, as asked
        return None
    # latin-1 decodes any byte, so an odd value still gets the "unknown coding" answer below.
    codings = [c.strip().lower() for value in content_encoding for c in value.decode("latin-1").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _NAMES:
        return BodyDecoder(_NAMES[codings[0]], provider)
    named = all(c in _KNOWN for c in codings)
    which = f"Content-Encoding {', '.join(codings)!r}" if named else "an unknown coding in Content-Encoding"
    raise UpstreamUnreachable(
        f"provider {provider!r} answered {status} with {which}, which the gateway does not decode "
        "(it asks for identity and decodes a single gzip or deflate only)",
        "bad-encoding",
    )


def _zlib_wbits(head: bytes) -> int:
    """zlib-wrapped deflate (RFC 9110 8.4.1.2) or, as browsers accept too, raw deflate (RFC 1951).

    RFC 1950 2.2: a zlib stream starts with CM=8 and a header whose 16 bits are a multiple of 31.
    """
    cmf, flg = head[0], head[1]
    return _ZLIB if cmf & 0x0F == 8 and ((cmf << 8) | flg) % 31 == 0 else _RAW_DEFLATE


class BodyDecoder:
    """Compressed pieces in, decoded pieces of at most STEP bytes out, lazily."""

    __slots__ = ("_codec", "_coding", "_fed", "_head", "_out", "_provider", "trailing")

    def __init__(self, coding: str, provider: str) -> None:
        self._coding = coding
        self._provider = provider
        self._codec: zlib._Decompress | None = zlib.decompressobj(_GZIP) if coding == "gzip" else None
        self._head = b""  # deflate: the first bytes, until two tell zlib from raw deflate
        self._fed = 0
        self._out = 0
        self.trailing = False  # past the end: what follows is ignored, as browsers do, not kept

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self.trailing:
            return
        if self._codec is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._head = b""
            self._codec = zlib.decompressobj(_zlib_wbits(data))
        self._fed += len(data)
        yield from self._drain(data)

    def end(self) -> Iterator[bytes]:
        """The output still inside zlib; a stream that stopped before its end is a 502."""
        if not self._fed and not self._head:
            return  # an empty body labelled compressed is just empty
        if self._codec is not None:
            yield from self._drain(b"")
        if self._codec is None or not self._codec.eof:
            cut = f"provider {self._provider!r} cut its {self._coding} answer short"
            raise UpstreamUnreachable(cut, "bad-encoding")

    def _drain(self, data: bytes) -> Iterator[bytes]:
        codec = self._codec
        assert codec is not None
        while True:
            try:
                piece = codec.decompress(data, STEP)
            except zlib.error as exc:
                raise UpstreamUnreachable(
                    f"provider {self._provider!r} sent corrupt {self._coding} data", "bad-encoding"
                ) from exc
            data = codec.unconsumed_tail
            if piece:
                self._out += len(piece)
                if self._out > EXPANSION_FLOOR and self._out > MAX_EXPANSION * (self._fed - len(data)):
                    raise UpstreamUnreachable(
                        f"provider {self._provider!r} sent {self._coding} data that expands more than "
                        f"{MAX_EXPANSION}-fold (a decompression bomb); the answer was refused",
                        "bad-encoding",
                    )
                yield piece
            if codec.eof:
                rest = codec.unused_data
                if self._coding == "gzip" and rest.startswith(_GZIP_MAGIC):
                    # RFC 1952 2.2: a gzip file is a series of members.
                    data = rest
                    codec = self._codec = zlib.decompressobj(_GZIP)
                    continue
                if rest and not (self._coding == "gzip" and _GZIP_MAGIC.startswith(rest)):
                    self.trailing = True
                    return
            # A full step may leave output inside zlib with no input left: ask again until it is empty.
            if not data and len(piece) < STEP:
                return


async def decoded(chunks: AsyncIterator[bytes], decoder: BodyDecoder) -> AsyncIterator[bytes]:
    """The decoded body, one bounded piece at a time: the next is made only once this one is sent.

    Nothing is kept while waiting for the provider's next read (memory the stream budget would not
    see), and nothing more is read once the coded data has ended: the caller closes the response.
    """
    async for chunk in chunks:
        pieces = decoder.feed(chunk)
        del chunk  # `pieces` holds it only until it is used up
        for piece in pieces:
            yield piece
            del piece
        if decoder.trailing:
            break
    for piece in decoder.end():
        yield piece
