"""serving_hosts: the addresses of this process's bound, unconnected TCP sockets, which a server serves on."""

from __future__ import annotations

import os
import socket

from mini_llm.listening import serving_hosts


def test_bound_and_listening_sockets_count_and_connected_ones_do_not() -> None:
    with socket.socket() as bound, socket.socket() as listening:
        bound.bind(("0.0.0.0", 0))  # granian's workers: bound at lifespan, listen() comes later
        listening.bind(("127.0.0.3", 0))
        listening.listen()
        with socket.create_connection(listening.getsockname(), source_address=("127.0.0.6", 0)):
            hosts = serving_hosts()
            assert "0.0.0.0" in hosts
            assert "127.0.0.3" in hosts
            assert "127.0.0.6" not in hosts  # connected: a client's socket, not a server's


def test_unbound_sockets_and_other_descriptors_do_not_count_and_none_is_left_open() -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    with socket.socket(), socket.socket(type=socket.SOCK_DGRAM) as datagram:
        datagram.bind(("127.0.0.5", 0))
        assert "127.0.0.5" not in serving_hosts()
    assert sorted(os.listdir("/proc/self/fd")) == before
