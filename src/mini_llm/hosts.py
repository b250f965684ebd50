"""Host names: the name part of a Host header or bind address, and which names mean this machine."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

_NAME: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def host_name(authority: str) -> str:
    """`Example.COM:8080` -> `example.com`, `[::1]:3333` -> `::1`: lowercase, no port, no brackets.

    RFC 9110 7.2: Host is `uri-host [ ":" port ]`, an IPv6 literal in brackets (RFC 3986 3.2.2);
    a trailing dot (an absolute DNS name) names the same host.
    """
    name = authority.strip().lower()
    if name.startswith("["):
        return name[1 : name.find("]")] if "]" in name else name
    if name.count(":") == 1:
        name = name.partition(":")[0]
    return name.removesuffix(".")


def setting_name(entry: str) -> str | None:
    """The name in a `host[:port]` setting entry, as `host_name` gives it; None when the entry is not one."""
    parts = urlsplit("//" + entry.strip())
    try:
        _ = parts.port  # a port that is not a number in 0..65535 raises
    except ValueError:
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc or not parts.hostname:
        return None
    name = parts.hostname.removesuffix(".")
    if _NAME.fullmatch(name):
        return name
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return name


def is_loopback(name: str) -> bool:
    """localhost and its subdomains (RFC 6761 6.3), 127.0.0.0/8 and ::1: names no other machine answers."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
