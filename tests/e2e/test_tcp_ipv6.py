"""IPv6 on both sides of the TCP proxy, and a v2 PROXY header naming IPv6 endpoints."""

from __future__ import annotations

import socket

import pytest

from pysozu.protocols.proxy_protocol import build_v2
from tests.conftest import WAIT, recv_all
from tests.e2e.helpers import echo


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def _listen_v6(proxy) -> tuple[str, int]:
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    address = f"[::1]:{port}"
    proxy.worker.offer_listen_socket(address, sock)
    proxy.ok("ADD_TCP_LISTENER", address=address)
    proxy.ok("ACTIVATE_LISTENER", address=address, proxy="TCP", from_scm=True)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    return address, port


def _connect_v6(port: int) -> socket.socket:
    return socket.create_connection(("::1", port), timeout=WAIT)


def test_ipv6_listener_and_backend(proxy, make_backend):
    backend = make_backend(host="::1")
    proxy.tcp_cluster("app", [backend.address], listen=False)
    _, port = _listen_v6(proxy)
    with _connect_v6(port) as client:
        echo(client, b"over v6" * 1000)
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b""
    assert backend.conn().received() == b"over v6" * 1000


def test_ipv4_listener_to_ipv6_backend(proxy, make_backend):
    backend = make_backend(host="::1")
    address = proxy.tcp_cluster("app", [backend.address])
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as client:
        echo(client, b"v4 in, v6 out")


def test_send_header_tcp6(proxy, make_backend):
    backend = make_backend(host="::1")
    proxy.tcp_cluster("app", [backend.address], listen=False, proxy_protocol="SEND_HEADER")
    _, port = _listen_v6(proxy)
    with _connect_v6(port) as client:
        expected = build_v2(client.getsockname()[:2], ("::1", port))
        assert expected[13] == 0x21  # AF_INET6, STREAM
        client.sendall(b"data")
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == expected + b"data"
    assert backend.conn().received() == expected + b"data"
