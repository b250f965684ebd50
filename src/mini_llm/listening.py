"""The addresses this process serves TCP on, whichever server bound them."""

from __future__ import annotations

import os
import socket
from typing import Final

# Linux lists a process's descriptors here, the BSDs and macOS at /dev/fd.
_FD_DIRS: Final = ("/proc/self/fd", "/dev/fd")


def serving_hosts() -> list[str]:
    """The local address of every bound, unconnected TCP socket this process holds: where it serves.

    The app cannot ask its ASGI server where it listens (lifespan carries no address), and
    `granian mini_llm.gateway.app:app --host 0.0.0.0` bypasses MINI_LLM_HOST: the socket itself tells.
    granian's workers call listen() only after lifespan startup, so a bound socket without a
    peer counts, not only a listening one; a connected socket (one with a peer) never does.
    """
    folder = next((path for path in _FD_DIRS if os.path.isdir(path)), None)
    hosts = []
    for entry in os.listdir(folder) if folder else []:
        try:
            fd = os.dup(int(entry))  # a duplicate: closing it leaves the server's socket open
        except (OSError, ValueError):  # the listing's own descriptor, closed by now
            continue
        try:
            sock = socket.socket(fileno=fd)
        except OSError:  # not a socket
            os.close(fd)
            continue
        with sock:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                host, port = sock.getsockname()[:2]
                if port and not _connected(sock):
                    hosts.append(host)
    return hosts


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
