"""A provider's failures as the gateway's 502 and 504, in words safe to show a client."""

from __future__ import annotations

import logging
import os
import socket
import ssl

from mini_llm.errors import UpstreamTimeout, UpstreamUnreachable

logger = logging.getLogger("mini_llm")


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
    return os.strerror(code) if isinstance(code, int) and code > 0 else type(error).__name__


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

    def broke(self, answering: bool, reason: str) -> UpstreamUnreachable:
        """The answer could not be read to its end: a framing error, or the connection closed."""
        doing = "while sending its answer" if answering else "before answering"
        return UpstreamUnreachable(f"provider {self.name!r} failed {doing}: {reason}")

    def unreachable(self, error: OSError, host: str, port: int) -> UpstreamUnreachable:
        """No connection could be made; the log says where to, the client only which provider."""
        logger.warning("cannot reach provider %r at %s:%s (%s)", self.name, host, port, error)
        return UpstreamUnreachable(f"cannot reach provider {self.name!r} ({connect_failure_reason(error)})")
