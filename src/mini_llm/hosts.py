"""Host names: the name part of a Host header, bind address or setting entry, and which names mean this machine."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

# RFC 1123 labels, plus `_`: Docker Compose and Kubernetes service names (`mini_llm`) resolve with it.
_NAME: Final = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_PORT: Final = re.compile(r"[0-9]{0,5}")  # RFC 3986 3.2.3: port = *DIGIT
# The port each URL scheme the gateway speaks implies when a URL names none (RFC 9110 4.2).
DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def host_name(authority: str) -> str | None:
    """`Example.COM:8080` -> `example.com`, `[::1]:3333` -> `::1`; None for anything but `host[:port]`.

    RFC 9110 7.2: Host is `uri-host [ ":" port ]`, an IPv6 literal in brackets (RFC 3986 3.2.2);
    a trailing dot (an absolute DNS name) names the same host. A bare IPv6 address (a bind address
    such as `::`) is taken whole. No userinfo, no path, nothing after `]`, a port of digits only:
    `localhost:evil` or `127.0.0.1:1@evil.example` must not pass for loopback.
    """
    text = authority.strip().lower()
    if text.startswith("["):
        name, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        return name if _is_ipv6(name) and _PORT.fullmatch(port[1:]) else None
    if text.count(":") > 1:
        return text if _is_ipv6(text) else None
    name, _, port = text.partition(":")
    name = name.removesuffix(".")
    return name if _PORT.fullmatch(port) and _NAME.fullmatch(name) else None  # IPv4 addresses match _NAME


def _is_ipv6(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).version == 6
    except ValueError:
        return False


def is_loopback(name: str | None) -> bool:
    """localhost and its subdomains (RFC 6761 6.3), 127.0.0.0/8 and ::1: names no other machine answers."""
    if name is None:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
