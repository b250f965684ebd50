"""Which client request ids are kept, and the ids a worker makes."""

from __future__ import annotations

import re

import pytest

from mini_llm.gateway.request_ids import HEADER, LONGEST, RequestIds


@pytest.mark.parametrize("sent", [b"a", b"abc-123_XYZ.~", b"with inner spaces", b"!" + b"x" * (LONGEST - 2) + b"~"])
def test_a_usable_client_id_is_kept_as_it_came(sent: bytes) -> None:
    headers = {HEADER: sent}
    assert RequestIds().of(headers) == sent.decode()
    assert headers[HEADER] == sent


@pytest.mark.parametrize(
    "sent",
    [b"", b"x" * (LONGEST + 1), b"tab\tinside", b"bell\x07", b"del\x7f", b"caf\xc3\xa9", b"trailing ", b" leading"],
)
def test_an_unusable_client_id_is_replaced_for_the_provider_too(sent: bytes) -> None:
    headers = {HEADER: sent}
    made = RequestIds().of(headers)
    assert re.fullmatch(r"req_[0-9a-f]{28}", made)
    assert headers[HEADER] == made.encode()


def test_a_missing_id_is_made_and_added() -> None:
    headers: dict[bytes, bytes] = {}
    made = RequestIds().of(headers)
    assert headers == {HEADER: made.encode()}


def test_ids_are_unique_within_a_worker_and_across_workers() -> None:
    first, second = RequestIds(), RequestIds()
    made = [first.make() for _ in range(1000)] + [second.make() for _ in range(1000)]
    assert len(set(made)) == len(made)
    assert first.make()[:20] != second.make()[:20]  # each worker its own random prefix
