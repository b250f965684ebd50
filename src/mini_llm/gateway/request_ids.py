"""Request ids: the client's `x-request-id` when it is usable, else one this worker makes."""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Final

HEADER: Final = b"x-request-id"
# On every answer: the gateway's id, also when the provider's answer carries its own x-request-id.
GATEWAY_HEADER: Final = b"x-mini-llm-request-id"
LONGEST: Final = 128
# Visible ASCII, with spaces only inside (RFC 9110 5.5 trims a field value's surrounding whitespace).
_USABLE: Final = re.compile(rb"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")


class RequestIds:
    """Made per worker (in lifespan, after the fork): a random prefix and a counter, unique across workers.

    `req_` + 16 random hex digits + a 12-digit counter: cheaper than a uuid4 per request, and as unique.
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = "req_" + secrets.token_hex(8)
        self._count = itertools.count(1)

    def make(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"

    def of(self, headers: dict[bytes, bytes]) -> str:
        """The request's id; a missing or unusable client id is replaced in `headers`, so it goes upstream too."""
        sent = headers.get(HEADER)
        if sent is not None and len(sent) <= LONGEST and _USABLE.fullmatch(sent):
            return sent.decode("ascii")
        made = self.make()
        headers[HEADER] = made.encode()
        return made
