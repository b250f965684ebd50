"""Gateway API keys: a `/v1/...` request must present one of them, as either SDK sends its api_key."""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from mini_llm.errors import GatewayError

_BEARER: Final = b"bearer "


class ClientAuth:
    """Checks the key a client presents against the configured SHA-256 digests.

    The OpenAI SDK sends `Authorization: Bearer <key>`, the Anthropic SDK `x-api-key: <key>` (or a
    Bearer token), so either header is accepted. The presented key is hashed and compared with
    `hmac.compare_digest` against every digest, without stopping at a match: plaintext and
    `sha256:` entries take the same path, and the time taken does not depend on which key matched.
    """

    def __init__(self, digests: tuple[bytes, ...]) -> None:
        self._digests = digests

    def check(self, headers: dict[bytes, bytes]) -> None:
        """Return if a presented key matches; raise the protocol's 401 otherwise (the key is never quoted)."""
        authorization = headers.get(b"authorization")
        presented = [headers.get(b"x-api-key")]
        # RFC 9110 11.1: the auth scheme is case-insensitive.
        if authorization is not None and authorization[: len(_BEARER)].lower() == _BEARER:
            presented.append(authorization[len(_BEARER) :].strip())
        matched = False
        for key in presented:
            if key:
                matched |= self._matches(hashlib.sha256(key).digest())
        if not matched:
            reason = "is not a valid gateway API key" if any(presented) else "is missing"
            raise GatewayError(
                401,
                f"the API key {reason}: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                code="invalid_api_key",
                openai_type="invalid_request_error",
            )

    def _matches(self, digest: bytes) -> bool:
        matched = False
        for candidate in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched
