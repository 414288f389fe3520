"""Half-close through the pipe: a FIN is relayed each way on its own, and the other
direction keeps flowing until it ends too."""

from __future__ import annotations

import hashlib
import socket
import struct

from tests.conftest import connect, recv_all
from tests.e2e.helpers import ScriptedBackend, expect_eof, wait_for, wait_sessions

LATE = bytes(range(256)) * 8192  # 2 MiB: more than the pooled buffers and socket buffers


def _answer_after_eof(backend: ScriptedBackend, conn) -> None:
    """Read the whole request (to EOF), then answer with its digest and a long tail."""
    ScriptedBackend.read_all(conn)
    conn.sock.sendall(hashlib.sha256(conn.received()).digest() + LATE)


def _speak_then_listen(backend: ScriptedBackend, conn) -> None:
    """Greet, close the write side at once, then read everything the client sends."""
    conn.sock.sendall(b"bye-from-backend")
    conn.sock.shutdown(socket.SHUT_WR)
    ScriptedBackend.read_all(conn)


def test_client_half_close_still_receives_backend_data(proxy, make_backend):
    backend = make_backend(_answer_after_eof)
    address = proxy.tcp_cluster("app", [backend.address])
    request = b"request body " * 10000
    with connect(address) as client:
        client.sendall(request)
        client.shutdown(socket.SHUT_WR)  # FIN: the backend sees EOF, the reverse stays open
        answer = recv_all(client)
    assert answer == hashlib.sha256(request).digest() + LATE
    assert backend.conn().received() == request
    wait_sessions(proxy, 0)  # both directions done: the session is gone


def test_backend_half_close_client_can_still_send(proxy, make_backend):
    backend = make_backend(_speak_then_listen)
    address = proxy.tcp_cluster("app", [backend.address])
    payload = b"after your FIN " * 100000  # 1.5 MB, sent after the client saw EOF
    with connect(address) as client:
        assert recv_all(client) == b"bye-from-backend"  # the backend's FIN reached us
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        conn = backend.conn()
        assert conn.eof.wait(10), "the backend never saw the client's FIN"
        assert recv_all(client) == b""
    assert conn.received() == payload
    wait_sessions(proxy, 0)


def test_half_closed_echo_many_rounds(proxy, echo_backend):
    # a FIN right after the data, before the backend even answered: nothing is lost
    address = proxy.tcp_cluster("app", [echo_backend.address])
    for n in range(20):
        data = b"%d:" % n + b"z" * (n * 5000)
        with connect(address) as client:
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == data
    wait_sessions(proxy, 0)


def test_fin_before_any_data_reaches_backend(proxy, make_backend):
    # a client that sends nothing and half-closes: the backend still gets a clean EOF and
    # its answer still reaches the client
    backend = make_backend(_answer_after_eof)
    address = proxy.tcp_cluster("app", [backend.address])
    with connect(address) as client:
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == hashlib.sha256(b"").digest() + LATE
    assert backend.conn().received() == b""


def test_session_stays_open_while_one_direction_is_open(proxy, make_backend):
    backend = make_backend(_speak_then_listen)
    address = proxy.tcp_cluster("app", [backend.address])
    with connect(address) as client:
        assert recv_all(client) == b"bye-from-backend"
        conn = backend.conn()
        expected = b""
        for n in range(5):  # the client's direction keeps working, round after round
            client.sendall(b"chunk %d;" % n)
            expected += b"chunk %d;" % n
            wait_for(lambda want=expected: conn.received() == want, what="the chunk")
        wait_sessions(proxy, 1)
        client.shutdown(socket.SHUT_WR)
        assert conn.eof.wait(10)
    assert conn.received() == expected


def _abort(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_client_reset_closes_backend_connection(proxy, make_backend):
    backend = make_backend()
    address = proxy.tcp_cluster("app", [backend.address])
    client = connect(address)
    client.sendall(b"x" * 1000)
    conn = backend.conn()
    wait_for(lambda: len(conn.received()) == 1000, what="the bytes at the backend")
    _abort(client)
    assert conn.eof.wait(10), "the backend connection outlived the client's reset"
    wait_sessions(proxy, 0)
    assert proxy.request("STATUS")["content"]["buffers_in_use"] == 0


def test_backend_reset_closes_client(proxy, make_backend):
    def reset_after_hello(backend, conn) -> None:
        ScriptedBackend.recv_some(conn)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    backend = make_backend(reset_after_hello)
    address = proxy.tcp_cluster("app", [backend.address])
    with connect(address) as client:
        client.sendall(b"hello")
        expect_eof(client, timeout=5)
    wait_sessions(proxy, 0)
