"""The key scrub: same-length masks, keys cut anywhere across pieces, nothing copied when nothing matches."""

from __future__ import annotations

import random

import pytest

from mini_llm.gateway.scrub import StreamScrubber, mask

KEY = "sk-proj-secret-KEY-0123456789"
SECRET = KEY.encode()
MASK = b"*" * len(KEY)


def _scrub_in_pieces(data: bytes, cuts: list[int], secret: bytes | None = SECRET) -> list[bytes]:
    scrubber = StreamScrubber(secret)
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    out = [scrubber.feed(piece) for piece in pieces]
    return [*out, scrubber.flush()]


def test_mask_keeps_the_length() -> None:
    data = b'{"auth":"Bearer ' + KEY.encode() + b'","again":"' + KEY.encode() + b'"}'
    masked = mask(data, KEY.encode())
    assert masked == data.replace(KEY.encode(), MASK)
    assert len(masked) == len(data)
    assert mask(data, None) is data


@pytest.mark.parametrize("seed", range(200))
def test_a_key_cut_anywhere_across_pieces_is_masked(seed: int) -> None:
    rng = random.Random(seed)
    # Near misses too: prefixes of the key that never complete, and a key right at the end.
    filler = [b"x" * rng.randint(0, 40), KEY[: rng.randint(1, len(KEY) - 1)].encode(), b"s", b"sk-"]
    parts = [rng.choice([KEY.encode(), *filler]) for _ in range(rng.randint(1, 12))]
    data = b"".join(parts)
    cuts = sorted(set(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 15))))) if len(data) > 1 else []
    out = b"".join(_scrub_in_pieces(data, cuts))
    assert out == data.replace(KEY.encode(), MASK)


def test_one_byte_pieces() -> None:
    data = b"a" + KEY.encode() + b"b" + KEY[:5].encode()
    out = b"".join(_scrub_in_pieces(data, list(range(1, len(data)))))
    assert out == b"a" + MASK + b"b" + KEY[:5].encode()


def test_a_piece_without_a_key_prefix_at_its_end_goes_out_uncopied() -> None:
    scrubber = StreamScrubber(SECRET)
    piece = b'{"choices":[{"text":"no secrets here"}]}'
    assert scrubber.feed(piece) is piece
    assert scrubber.flush() == b""


def test_only_the_possible_key_start_is_held_back() -> None:
    scrubber = StreamScrubber(SECRET)
    assert scrubber.feed(b"abc sk-pr") == b"abc "
    assert scrubber.feed(b"ice") == b"sk-price"


def test_no_key_means_no_work() -> None:
    piece = b"anything " + KEY.encode()
    assert StreamScrubber(None).feed(piece) is piece
