"""Decoding a provider's gzip or deflate: bounded steps, both deflate flavours, bombs and damage refused."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import AsyncIterator

import pytest

from mini_llm.errors import UpstreamUnreachable
from mini_llm.gateway.decoding import MAX_EXPANSION, STEP, BodyDecoder, decoded, decoder_for
from tests.unit.memory import retained_while_the_provider_is_silent

BODY = b'{"choices":[{"message":{"content":"caf\xc3\xa9 ' + bytes(range(256)) * 300 + b'"}}]}'


def _compress(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


def _decode(coding: str, data: bytes, cuts: list[int]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
            yield data[a:b]

    async def run() -> list[bytes]:
        return [piece async for piece in decoded(source(), BodyDecoder(coding, "p"))]

    return asyncio.run(run())


@pytest.mark.parametrize(("coding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
@pytest.mark.parametrize("seed", range(10))
def test_decodes_whatever_the_cuts(coding: str, wbits: int, seed: int) -> None:
    data = _compress(BODY, wbits)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 20)))
    cuts = [1, *[c for c in cuts if c > 1]] if seed % 2 else cuts  # a first piece of one byte
    pieces = _decode(coding, data, cuts)
    assert b"".join(pieces) == BODY
    assert max(len(piece) for piece in pieces) <= STEP


def test_gzip_members_in_series_are_all_decoded() -> None:
    data = _compress(b"first,", 31) + _compress(b"second", 31)
    assert b"".join(_decode("gzip", data, [])) == b"first,second"


def test_an_empty_body_labelled_gzip_is_empty() -> None:
    assert _decode("gzip", b"", []) == []


def test_a_cut_or_corrupt_stream_is_a_502() -> None:
    data = _compress(BODY, 31)
    with pytest.raises(UpstreamUnreachable, match="cut its gzip answer short"):
        _decode("gzip", data[: len(data) // 2], [])
    with pytest.raises(UpstreamUnreachable, match="corrupt gzip data"):
        _decode("gzip", b"\x1f\x8b\x08\x00garbage-garbage-garbage", [])


def test_a_bomb_is_refused_within_its_first_step() -> None:
    bomb = _compress(bytes(64 * 1024 * 1024), 31)
    decoder = BodyDecoder("gzip", "p")
    produced = 0
    with pytest.raises(UpstreamUnreachable, match=f"more than {MAX_EXPANSION}-fold"):
        for piece in decoder.feed(bomb):
            produced += len(piece)
    assert produced < 2 * STEP


def test_encodings() -> None:
    assert decoder_for([], "p", 200) is None
    assert decoder_for([b"identity"], "p", 200) is None
    assert isinstance(decoder_for([b"GZIP"], "p", 200), BodyDecoder)
    assert isinstance(decoder_for([b"x-gzip"], "p", 200), BodyDecoder)
    assert isinstance(decoder_for([b"deflate"], "p", 200), BodyDecoder)
    for refused in ([b"br"], [b"zstd"], [b"compress"], [b"gzip, gzip"], [b"gzip", b"deflate"], [b"x-unknown"]):
        with pytest.raises(UpstreamUnreachable, match="does not decode"):
            decoder_for(refused, "p", 401)


def test_bytes_after_the_end_are_ignored_not_kept() -> None:
    decoder = BodyDecoder("gzip", "p")
    out = b"".join(decoder.feed(_compress(b"body", 31) + b"junk"))
    assert out == b"body"
    assert b"".join(decoder.feed(b"x" * 1_000_000)) == b""
    assert list(decoder.end()) == []


def test_a_second_member_whose_magic_is_split_across_reads() -> None:
    second = _compress(b"second", 31)
    data = _compress(b"first,", 31) + second
    cut = len(data) - len(second) + 1  # the second member's first byte ends the first read
    assert b"".join(_decode("gzip", data, [cut])) == b"first,second"


def test_refusals_name_only_codings_the_gateway_knows() -> None:
    """The value is the provider's text: a key there must not reach the client, the log or its redactor."""
    for value, named in [([b"br"], "'br'"), ([b"zstd"], "'zstd'"), ([b"X-Compress"], "'x-compress'")]:
        with pytest.raises(UpstreamUnreachable, match=f"Content-Encoding {named}"):
            decoder_for(value, "p", 200)
    for value in ([b"sk-PROJ-AbC123"], [b"gzip, sk-PROJ-AbC123"], [b"br", b"sk-PROJ-AbC123"]):
        with pytest.raises(UpstreamUnreachable) as refused:
            decoder_for(value, "p", 200)
        assert "an unknown coding" in refused.value.message
        assert "abc123" not in refused.value.message.lower()


def test_nothing_more_is_read_once_the_coded_data_has_ended() -> None:
    reads = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal reads
        for chunk in [_compress(b"body", 31) + b"junk", *[b"x" * 1000] * 5]:
            reads += 1
            yield chunk

    async def run() -> list[bytes]:
        return [piece async for piece in decoded(source(), BodyDecoder("gzip", "p"))]

    assert asyncio.run(run()) == [b"body"]
    assert reads == 1


def test_nothing_of_the_last_read_is_kept_while_the_provider_is_silent() -> None:
    """Neither the compressed read nor the piece decoded from it: memory the stream budget never sees."""
    size = 2 * 1024 * 1024
    compressed = _compress(random.Random(0).randbytes(size), 31)  # incompressible: as big as the input

    async def consume(reads: AsyncIterator[bytes]) -> None:
        async for piece in decoded(reads, BodyDecoder("gzip", "p")):
            del piece  # the client took it

    retained = retained_while_the_provider_is_silent(consume, [compressed[:-8]], compressed[-8:])
    assert retained < size // 2, retained  # the decompressor's own state, not the read
