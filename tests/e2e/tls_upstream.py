"""The fake provider over TLS, with a certificate from a throwaway CA (trustme), and what each handshake showed.

The server records every handshake it began (one per accepted connection) with the SNI the client sent
(RFC 6066 3), and for every request the connection it came on and the protocol ALPN settled (RFC 7301).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import trustme
from aiohttp import web

from tests.e2e.fake_upstream import FakeUpstream

# Offered in this order: the server picks the first one the client offers too, so a client that
# offered h2 would get h2 and `http/1.1` proves it offered HTTP/1.1 alone.
SERVER_ALPN = ("h2", "http/1.1")


@dataclass(frozen=True)
class TlsRequest:
    """One request as TLS delivered it: on which connection (its handshake's index), SNI, ALPN."""

    connection: int
    server_name: str | None
    alpn: str | None


@dataclass
class TlsUpstream(FakeUpstream):
    """A FakeUpstream on HTTPS whose `base` names `host`: `certify` it, then `start` it."""

    host: str = "localhost"
    # The SNI of each handshake, in order: len() is the number of TLS connections accepted.
    handshakes: list[str | None] = field(default_factory=list)
    requests: list[TlsRequest] = field(default_factory=list)
    _connections: dict[object, int] = field(default_factory=dict)  # SSLObject -> its handshake's index
    _transports: dict[int, asyncio.BaseTransport] = field(default_factory=dict)  # by the same index

    def certify(self, ca: trustme.CA, name: str) -> None:
        """Serve a certificate for `name` issued by `ca`."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        context.set_alpn_protocols(list(SERVER_ALPN))
        context.sni_callback = self._hello
        self.tls = context

    def _hello(self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        """OpenSSL calls it for every ClientHello, with or without SNI (then None)."""
        self._connections[ssl_object] = len(self.handshakes)
        self.handshakes.append(server_name)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        ssl_object = request.transport.get_extra_info("ssl_object")
        connection = self._connections[ssl_object]
        self._transports.setdefault(connection, request.transport)
        self.requests.append(TlsRequest(connection, self.handshakes[connection], ssl_object.selected_alpn_protocol()))
        return await super()._handle(request)

    def close_connection(self, connection: int) -> None:
        """Close one connection from this side (close_notify, then FIN), as a provider's idle timeout does.

        Returns once the client closed its side as well: the TCP socket is gone only then.
        """
        assert self._server is not None
        transport = self._transports[connection]
        sock = transport.get_extra_info("socket")
        self._server.call_soon(transport.close)
        assert self.wait_for(lambda: sock.fileno() == -1), "the client never closed its side"


def tls_upstream(ca: trustme.CA, name: str = "localhost") -> TlsUpstream:
    """A started TLS fake provider whose certificate `ca` issued for `name`; its base URL names localhost."""
    server = TlsUpstream()
    server.certify(ca, name)
    server.start()
    return server
