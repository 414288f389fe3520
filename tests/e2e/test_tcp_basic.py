from __future__ import annotations

import socket

from tests.conftest import connect, recv_all


def test_echo_through_proxy(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(address) as client:
        client.sendall(b"hello")
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b"hello"
