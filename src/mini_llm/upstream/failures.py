"""A provider's failures as the gateway's 502 and 504, in words safe to show a client."""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
from typing import Final

from mini_llm.errors import UpstreamTimeout, UpstreamUnreachable

logger = logging.getLogger("mini_llm")

# When every address of a host fails, asyncio (and uvloop alike) raise one OSError without an errno,
# its message joining each attempt's "[Errno N] ...": the errors themselves are not kept.
_EVERY_ADDRESS: Final = "Multiple exceptions: "
_ERRNO: Final = re.compile(r"\[Errno (\d+)\]")


def connect_failure_reason(error: BaseException) -> str:
    """The reason a connection failed, safe to show a client: never the OS or TLS message itself.

    Those messages may quote the address. DNS errors carry getaddrinfo's negative EAI codes and
    TLS errors OpenSSL's, neither of which is an errno that os.strerror knows ("Unknown error -2",
    "Operation not permitted"), so both are named by what failed.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        return "certificate verify failed"
    if isinstance(error, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(error, socket.gaierror):
        return "DNS lookup failed"
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    if isinstance(error, OSError) and str(error).startswith(_EVERY_ADDRESS):
        return _every_address_reason(str(error))
    return type(error).__name__


def _every_address_reason(message: str) -> str:
    """The attempts' shared reason (`Connection refused on every address`), else that none worked."""
    codes = set(_ERRNO.findall(message))
    if len(codes) == 1:
        return f"{os.strerror(int(codes.pop()))} on every address"
    return "no address of the host could be reached"


class ProviderFailures:
    """The 502 and 504 errors of one provider, worded as the aiohttp client words them.

    They name the provider only: where it is stays in the log, and no byte it sent reaches a message.
    """

    __slots__ = ("name", "timeout")

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout

    def silent(self, answering: bool) -> UpstreamTimeout:
        """No byte for `timeout` seconds, before the status line or between pieces of the body."""
        doing = "while sending its answer" if answering else "before answering"
        return UpstreamTimeout(f"provider {self.name!r} went silent for {self.timeout:g}s {doing}")

    def no_connection_free(self) -> UpstreamTimeout:
        """Every connection the pool may open stayed busy for `timeout` seconds; the provider was not asked."""
        limit = f"no connection to provider {self.name!r} came free within {self.timeout:g}s"
        return UpstreamTimeout(f"{limit} (MINI_LLM_UPSTREAM_POOL_LIMIT)", "pool-full")

    def broke(self, answering: bool, reason: str) -> UpstreamUnreachable:
        """The answer could not be read to its end: a framing error, or the connection closed."""
        doing = "while sending its answer" if answering else "before answering"
        return UpstreamUnreachable(f"provider {self.name!r} failed {doing}: {reason}", "reset")

    def unreachable(
        self, error: OSError, host: str, port: int | None, reason: str | None = None
    ) -> UpstreamUnreachable:
        """No connection could be made; the log says where to, the client only which provider (and why)."""
        logger.warning("cannot reach provider %r at %s:%s (%s)", self.name, host, port, error)
        why = connect_failure_reason(error) if reason is None else reason
        return UpstreamUnreachable(f"cannot reach provider {self.name!r} ({why})")
