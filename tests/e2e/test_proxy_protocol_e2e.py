"""PROXY protocol through real sockets: expected on a listener (v1 and v2), sent and
relayed to a cluster's backends, and bad headers refused and counted."""

from __future__ import annotations

import socket

import pytest

from pysozu.protocols.proxy_protocol import build_v1, build_v2
from tests.conftest import connect, dead_address, recv_all
from tests.e2e.helpers import (
    counters,
    echo,
    expect_eof,
    expect_silence,
    wait_for,
    wait_sessions,
)

CLIENT = ("203.0.113.7", 40001)
SERVER = ("198.51.100.1", 443)
DATA = b"payload after the header " * 4000  # 100 kB: several reads and writes

#: HAProxy's proxy-protocol.txt example connection, TCP4 192.168.0.1:56324 -> 192.168.0.11:443,
#: as a v1 line and as the v2 header HAProxy sends for it (written out by hand).
SPEC_V1 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
SPEC_V2 = (
    b"\r\n\r\n\x00\r\nQUIT\n"  # signature
    b"\x21"  # version 2, command PROXY
    b"\x11"  # AF_INET, STREAM
    b"\x00\x0c"  # 12 bytes of addresses
    b"\xc0\xa8\x00\x01"  # 192.168.0.1
    b"\xc0\xa8\x00\x0b"  # 192.168.0.11
    b"\xdc\x04"  # 56324
    b"\x01\xbb"  # 443
)


def _sockaddr(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _cluster(proxy, backend, *, expect: bool, mode: str | None) -> str:
    """A cluster in PROXY ``mode`` behind a listener that expects a header or not."""
    fields = {"proxy_protocol": mode} if mode else {}
    proxy.tcp_cluster("app", [backend.address], listen=False, **fields)
    address = proxy.listen(expect_proxy=expect)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    return address


def _exchange(address: str, header: bytes, data: bytes = DATA) -> socket.socket:
    """Send header + data, check the echo of ``data`` only, half-close; the open socket."""
    client = connect(address)
    client.sendall(header + data)
    client.shutdown(socket.SHUT_WR)
    assert recv_all(client) == data
    return client


# -- listener expects a header ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        build_v1(CLIENT, SERVER),
        build_v2(CLIENT, SERVER),
        build_v1(("2001:db8::7", 40001), ("2001:db8::1", 443)),
        build_v2(("2001:db8::7", 40001), ("2001:db8::1", 443)),
        build_v2(CLIENT, SERVER, tlvs=[(0x04, b"abc"), (0x30, b"ns")]),
        build_v2(None, None, command="LOCAL"),
        b"PROXY UNKNOWN\r\n",
        SPEC_V1,
        SPEC_V2,
    ],
    ids=[
        "v1",
        "v2",
        "v1-tcp6",
        "v2-tcp6",
        "v2-tlvs",
        "v2-local",
        "v1-unknown",
        "spec-v1",
        "spec-v2",
    ],
)
def test_expect_proxy_strips_header(proxy, make_backend, header):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode=None)
    _exchange(address, header).close()
    assert backend.conn().received() == DATA  # the header never reaches the backend
    assert counters(proxy).get("proxy_protocol.errors", 0) == 0


@pytest.mark.parametrize("version", [1, 2])
def test_expect_proxy_header_in_pieces(proxy, make_backend, version):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode=None)
    header = build_v1(CLIENT, SERVER) if version == 1 else build_v2(CLIENT, SERVER)
    with connect(address) as client:
        for i in range(0, len(header) - 1, 7):
            client.sendall(header[i : i + 7] if i + 7 < len(header) else header[i:-1])
        # a valid prefix keeps the connection open and sends nothing on (bounded wait)
        expect_silence(client)
        assert not backend.conns
        client.sendall(header[-1:] + b"hello")
        assert recv_all(client, 5) == b"hello"
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b""
    assert backend.conn().received() == b"hello"


@pytest.mark.parametrize(
    "bad",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PROXY TCP4 300.0.0.1 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12),  # version 3
        b"\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c" + bytes(12),  # command 2
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + bytes(4),  # too short for AF_INET
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + bytes(12),  # longer than accepted
        b"PROXY " + b"x" * 200,
    ],
    ids=["http", "bad-ip", "bare-lf", "v2-version", "v2-command", "v2-short", "v2-long", "v1-long"],
)
def test_bad_header_closes_and_is_counted(proxy, make_backend, bad):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode=None)
    # a client already through its header keeps being served meanwhile
    with connect(address) as good:
        good.sendall(build_v1(CLIENT, SERVER))
        echo(good, b"before")
        with connect(address) as client:
            try:
                client.sendall(bad)
            except ConnectionResetError:
                pass  # closed while we were still sending: refused all the same
            expect_eof(client)
        assert counters(proxy)["proxy_protocol.errors"] == 1
        echo(good, b"after")
        good.shutdown(socket.SHUT_WR)
        assert recv_all(good) == b""
    assert len(backend.conns) == 1  # the bad client never reached a backend
    _exchange(address, build_v2(CLIENT, SERVER)).close()  # new clients still served
    assert counters(proxy)["proxy_protocol.errors"] == 1


def test_client_closing_mid_header_is_counted(proxy, make_backend):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode=None)
    with connect(address) as client:
        client.sendall(build_v2(CLIENT, SERVER)[:10])
    wait_for(lambda: counters(proxy).get("proxy_protocol.errors") == 1, what="the error count")
    wait_sessions(proxy, 0)
    # a connection closed before its first byte is a health check: not an error
    connect(address).close()
    wait_sessions(proxy, 0)
    assert counters(proxy)["proxy_protocol.errors"] == 1
    assert not backend.conns


# -- cluster sends a header ---------------------------------------------------------------------


def test_send_header_names_client_and_listener(proxy, make_backend):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=False, mode="SEND_HEADER")
    client = connect(address)
    with client:
        expected = build_v2(client.getsockname()[:2], _sockaddr(address))
        client.sendall(DATA)
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == expected + DATA  # the echo backend returns it all
    received = backend.conn().received()
    assert received[: len(expected)] == expected
    assert received[len(expected) :] == DATA


def test_send_header_before_client_speaks(proxy, make_backend):
    # the header goes out as soon as the backend is up, even from a silent client
    backend = make_backend()
    address = _cluster(proxy, backend, expect=False, mode="SEND_HEADER")
    with connect(address) as client:
        expected = build_v2(client.getsockname()[:2], _sockaddr(address))
        conn = backend.conn()
        wait_for(lambda: conn.received() == expected, what="the v2 header at the backend")
        assert recv_all(client, len(expected)) == expected
        echo(client, b"then data")


def test_expect_then_send_uses_the_client_header(proxy, make_backend):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode="SEND_HEADER")
    # the backend must see the address from the client's header, not the socket's peer
    client = _exchange_raw(address, SPEC_V1 + DATA)
    client.close()
    assert backend.conn().received() == SPEC_V2 + DATA  # HAProxy's bytes for this connection


def test_expect_v2_then_send_tcp6(proxy, make_backend):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode="SEND_HEADER")
    source, destination = ("2001:db8::7", 40001), ("2001:db8::1", 443)
    _exchange_raw(address, build_v2(source, destination) + b"six").close()
    assert backend.conn().received() == build_v2(source, destination) + b"six"


def test_expect_local_then_send_local(proxy, make_backend):
    # a LOCAL header (the front proxy's own health check) is passed on as LOCAL
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode="SEND_HEADER")
    local = build_v2(None, None, command="LOCAL")
    _exchange_raw(address, local + b"ping").close()
    assert backend.conn().received() == local + b"ping"


def _exchange_raw(address: str, data: bytes) -> socket.socket:
    """Send ``data``, half-close, read the whole echo (whatever the backend returns)."""
    client = connect(address)
    client.sendall(data)
    client.shutdown(socket.SHUT_WR)
    recv_all(client)
    return client


# -- cluster relays the client's header ---------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        build_v1(CLIENT, SERVER),
        build_v2(CLIENT, SERVER),
        build_v2(CLIENT, SERVER, tlvs=[(0x01, b"h2")]),
        SPEC_V2,
    ],
    ids=["v1", "v2", "v2-tlvs", "spec-v2"],
)
@pytest.mark.parametrize("expect", [True, False], ids=["expect", "no-expect"])
def test_relay_header_unchanged(proxy, make_backend, header, expect):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=expect, mode="RELAY_HEADER")
    with connect(address) as client:
        client.sendall(header + DATA)
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == header + DATA  # the echo includes the relayed header
    assert backend.conn().received() == header + DATA


def test_relay_bad_header_is_refused(proxy, make_backend):
    backend = make_backend()
    address = _cluster(proxy, backend, expect=True, mode="RELAY_HEADER")
    with connect(address) as client:
        client.sendall(b"NOT A PROXY HEADER\r\n")
        expect_eof(client)
    assert counters(proxy)["proxy_protocol.errors"] == 1
    assert not backend.conns


@pytest.mark.parametrize("expect", [True, False], ids=["expect", "no-expect"])
def test_send_header_after_a_failed_connect(proxy, make_backend, expect):
    # the first backend (picked first: LEAST_LOADED breaks ties on list order) refuses;
    # the header is written whole to the backend that answers, then the data
    backend = make_backend()
    proxy.tcp_cluster(
        "app",
        [dead_address(), backend.address],
        listen=False,
        proxy_protocol="SEND_HEADER",
        load_balancing="LEAST_LOADED",
    )
    address = proxy.listen(expect_proxy=expect)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    with connect(address) as client:
        if expect:
            client.sendall(SPEC_V1)
            expected = SPEC_V2
        else:
            expected = build_v2(client.getsockname()[:2], _sockaddr(address))
        client.sendall(DATA)
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == expected + DATA
    assert backend.conn().received() == expected + DATA
    assert counters(proxy)["backend.connections.error"] == 1
