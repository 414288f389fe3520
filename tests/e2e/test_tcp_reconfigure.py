"""Configuration changes while TCP connections are open: none of them cuts an open
connection. Each test opens a connection, proves it echoes, makes the change, and proves
the same connection still echoes (both ways, a few round trips) before closing it."""

from __future__ import annotations

import socket

import pytest

from pysozu.reactor.channel import ChannelError
from tests.conftest import WAIT, connect, recv_all
from tests.e2e.helpers import (
    echo,
    events_so_far,
    expect_eof,
    expect_refused,
    kinds,
    sessions,
    wait_sessions,
)


def _still_echoes(sock: socket.socket) -> None:
    for size in (1, 1000, 300_000):  # the last is bigger than both pooled buffers together
        echo(sock, bytes(range(256)) * (size // 256) + b"x" * (size % 256))


def _close_cleanly(sock: socket.socket) -> None:
    """Half-close, see the echo end with EOF, close."""
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b""
    sock.close()


def test_add_backend_keeps_open_connection(proxy, make_echo_backend):
    first, second = make_echo_backend(greeting=b"A"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [first.address])
    with connect(address) as client:
        assert client.recv(1) == b"A"
        echo(client, b"before")
        proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-1", address=second.address)
        _still_echoes(client)
        # new connections now reach both backends (round robin)
        greetings = set()
        for _ in range(2):
            with connect(address) as other:
                greetings.add(other.recv(1))
        assert greetings == {b"A", b"B"}
        _still_echoes(client)
        _close_cleanly(client)


def test_remove_backend_keeps_open_connection_then_reports_drained(proxy, make_echo_backend):
    backend = make_echo_backend()
    address = proxy.tcp_cluster("app", [backend.address])
    with connect(address) as client:
        echo(client, b"before")
        proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-0", address=backend.address)
        _still_echoes(client)
        # the removed backend takes no new connection: a new client finds no backend
        with connect(address) as other:
            expect_eof(other)
        assert backend.accepted == 1
        # still connected: the drained event must not have been pushed yet
        assert "REMOVED_BACKEND_HAS_NO_CONNECTIONS" not in kinds(events_so_far(proxy))
        _still_echoes(client)
        _close_cleanly(client)
    event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", timeout=WAIT)
    assert event["content"]["backend_id"] == "app-0"
    assert event["content"]["address"] == backend.address
    wait_sessions(proxy, 0)


def test_remove_idle_backend_reports_drained_at_once(proxy, echo_backend):
    proxy.tcp_cluster("app", [echo_backend.address], listen=False)
    proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-0", address=echo_backend.address)
    event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", timeout=WAIT)
    assert event["content"]["backend_id"] == "app-0"


def test_remove_cluster_keeps_open_connection(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(address) as client:
        echo(client, b"before")
        proxy.ok("REMOVE_CLUSTER", cluster_id="app")
        _still_echoes(client)
        with connect(address) as other:  # no frontend any more: closed at once
            expect_eof(other)
        _still_echoes(client)
        _close_cleanly(client)
    event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", timeout=WAIT)
    assert event["content"]["backend_id"] == "app-0"


def test_remove_tcp_frontend_keeps_open_connection(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(address) as client:
        echo(client, b"before")
        proxy.ok("REMOVE_TCP_FRONTEND", cluster_id="app", address=address)
        _still_echoes(client)
        with connect(address) as other:  # the listener still accepts, but routes nowhere
            expect_eof(other)
        assert echo_backend.accepted == 1
        _still_echoes(client)
        # the frontend comes back: new connections are served again
        proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
        with connect(address) as other:
            echo(other, b"again")
        _still_echoes(client)
        _close_cleanly(client)


def test_deactivate_and_reactivate_listener(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(address) as client:
        echo(client, b"before")
        proxy.ok("DEACTIVATE_LISTENER", address=address, proxy="TCP")
        expect_refused(address)  # the listening socket is closed
        _still_echoes(client)
        # reactivate without a handed-over socket: the worker binds the address again
        answer = proxy.ok("ACTIVATE_LISTENER", address=address, proxy="TCP")
        assert answer["content"]["bound_address"] == address
        with connect(address) as other:
            echo(other, b"served again")
        _still_echoes(client)
        # and once more, this time from a socket offered by the test (the SCM path)
        proxy.ok("DEACTIVATE_LISTENER", address=address, proxy="TCP")
        expect_refused(address)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        host, port = address.rsplit(":", 1)
        sock.bind((host, int(port)))
        sock.listen(16)
        proxy.worker.offer_listen_socket(address, sock)
        proxy.ok("ACTIVATE_LISTENER", address=address, proxy="TCP", from_scm=True)
        with connect(address) as other:
            echo(other, b"served from scm")
        _still_echoes(client)
        _close_cleanly(client)
    assert echo_backend.accepted == 3


def test_soft_stop_drains_open_connection_then_answers_ok(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    client = connect(address)
    try:
        echo(client, b"before")
        request_id = proxy.channel.send({"type": "SOFT_STOP"})
        first = proxy.channel.read_response(request_id, timeout=WAIT)
        assert first["status"] == "PROCESSING", first
        # PROCESSING is written before the handler closes the listeners; the next answer
        # on the channel comes after the handler returned.
        assert sessions(proxy) == 1
        expect_refused(address)  # no new connection during the drain
        _still_echoes(client)
        # The open connection holds the stop: no OK comes while it is open. (A bounded
        # wait that shows something does not happen; the worker loop runs every 0.1 s
        # during a stop, so 0.5 s gives it several chances to answer too early.)
        with pytest.raises(ChannelError):
            proxy.channel.read_response(request_id, timeout=0.5)
        _still_echoes(client)
        _close_cleanly(client)
    finally:
        client.close()
    final = proxy.channel.read_response(request_id, timeout=WAIT)
    assert final["status"] == "OK", final
    assert proxy.worker._thread is not None
    proxy.worker._thread.join(WAIT)
    assert not proxy.worker._thread.is_alive()


def test_soft_stop_without_connections_answers_ok_at_once(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    answer = proxy.request("SOFT_STOP")
    assert answer["status"] == "OK", answer
    expect_refused(address)


def test_removed_backend_reports_only_after_its_last_connection(proxy, make_echo_backend):
    a, b = make_echo_backend(greeting=b"A"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [a.address, b.address], load_balancing="ROUND_ROBIN")
    clients = [connect(address) for _ in range(4)]  # A, B, A, B
    try:
        assert [c.recv(1) for c in clients] == [b"A", b"B", b"A", b"B"]
        proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-0", address=a.address)
        for client in clients:
            _still_echoes(client)
        with connect(address) as other:  # new clients only reach B now
            assert other.recv(1) == b"B"
        _close_cleanly(clients[0])  # one of A's two connections
        wait_sessions(proxy, 3)
        assert "REMOVED_BACKEND_HAS_NO_CONNECTIONS" not in kinds(events_so_far(proxy))
        _still_echoes(clients[2])
        _close_cleanly(clients[2])  # A's last one
        event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", timeout=WAIT)
        assert event["content"]["backend_id"] == "app-0"
        for client in (clients[1], clients[3]):  # B's connections never noticed
            _still_echoes(client)
    finally:
        for client in clients:
            client.close()


def test_soft_stop_waits_for_every_connection(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    clients = [connect(address) for _ in range(3)]
    try:
        for client in clients:
            echo(client, b"hi")
        request_id = proxy.channel.send({"type": "SOFT_STOP"})
        assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "PROCESSING"
        for n, client in enumerate(clients):
            _still_echoes(client)
            _close_cleanly(client)
            if n < len(clients) - 1:
                # connections remain: no OK yet (bounded wait showing it does not come)
                with pytest.raises(ChannelError):
                    proxy.channel.read_response(request_id, timeout=0.3)
        assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "OK"
    finally:
        for client in clients:
            client.close()
