"""The TLS settings of the fast client: verified, the system trust store, HTTP/1.1 by ALPN."""

from __future__ import annotations

import ssl


def client_context() -> ssl.SSLContext:
    """A verifying client context on the system trust store, made once per worker.

    `create_default_context` checks the certificate chain and the host name and loads the
    OpenSSL default paths, which honour SSL_CERT_FILE and SSL_CERT_DIR (how a private CA is
    trusted). ALPN offers only `http/1.1` (RFC 7301): the client speaks nothing else, so a
    server that would pick h2 has to answer in HTTP/1.1 or refuse.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    return context
