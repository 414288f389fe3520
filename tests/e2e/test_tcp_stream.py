"""Bulk data through the TCP proxy: many concurrent clients, one very long stream, and
back-pressure when either side stops reading.

The echo clients are driven by one ``selectors`` loop: each sends a window of a random pattern
and checks every echoed byte against the pattern as it arrives, so nothing is held twice
in memory and a byte lost, duplicated, reordered or crossed between connections fails at
the first wrong byte.
"""

from __future__ import annotations

import random
import selectors
import socket
import threading
import time

import pytest

from pysozu.protocols.pipe import Pipe
from pysozu.reactor.readiness import READABLE
from tests.conftest import WAIT, connect
from tests.e2e.helpers import ScriptedBackend, in_worker, wait_for, wait_sessions

#: Pattern length: odd and not a power of two, so a dropped or repeated buffer-sized run
#: cannot line up with the pattern again.
PERIOD = (1 << 20) + 9
CHUNK = 256 * 1024


def _pattern() -> memoryview:
    base = random.Random(0x5020).randbytes(PERIOD)
    return memoryview(base + base)  # any window of <= PERIOD bytes is one slice


class _Client:
    __slots__ = ("done_sending", "offset", "received", "sent", "sock", "total")

    def __init__(self, sock: socket.socket, offset: int, total: int) -> None:
        self.sock = sock
        self.offset = offset
        self.total = total
        self.sent = 0
        self.received = 0
        self.done_sending = False


def echo_streams(address: str, sizes: list[int], timeout: float) -> None:
    """Open one connection per size, echo that many pattern bytes on each, concurrently,
    and verify every byte that comes back; each connection then sees a clean EOF."""
    pattern = _pattern()
    sel = selectors.DefaultSelector()
    clients = []
    try:
        for i, size in enumerate(sizes):
            sock = connect(address)
            sock.setblocking(False)
            client = _Client(sock, (i * 5003) % PERIOD, size)
            clients.append(client)
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        open_clients = len(clients)
        deadline = time.monotonic() + timeout
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while open_clients:
            assert time.monotonic() < deadline, "echo streams did not finish in time: " + ", ".join(
                f"{c.received}/{c.total}" for c in clients if c.received < c.total
            )
            for key, mask in sel.select(1.0):
                c: _Client = key.data
                if mask & selectors.EVENT_WRITE and not c.done_sending:
                    start = (c.offset + c.sent) % PERIOD
                    n = min(CHUNK, c.total - c.sent)
                    try:
                        c.sent += c.sock.send(pattern[start : start + n])
                    except BlockingIOError:
                        pass
                    if c.sent == c.total:
                        c.done_sending = True
                        c.sock.shutdown(socket.SHUT_WR)  # half-close: the echo ends too
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if mask & selectors.EVENT_READ:
                    try:
                        n = c.sock.recv_into(view)
                    except BlockingIOError:
                        continue
                    if n == 0:
                        assert c.received == c.total, f"EOF after {c.received} of {c.total} bytes"
                        sel.unregister(c.sock)
                        open_clients -= 1
                        continue
                    start = (c.offset + c.received) % PERIOD
                    if view[:n] != pattern[start : start + n]:
                        raise AssertionError(
                            f"corrupt echo at byte {c.received} of a {c.total}-byte stream"
                        )
                    c.received += n
                    assert c.received <= c.total, "more bytes came back than were sent"
    finally:
        sel.close()
        for client in clients:
            client.sock.close()


def test_200_clients_echo_1_mib_each(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    started = time.monotonic()
    echo_streams(address, [1 << 20] * 200, timeout=90)
    print(f"200 x 1 MiB: {time.monotonic() - started:.2f} s")
    assert echo_backend.accepted == 200
    _assert_all_released(proxy, 200 << 20)


@pytest.mark.slow
def test_one_256_mib_stream(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    started = time.monotonic()
    echo_streams(address, [256 << 20], timeout=100)
    print(f"256 MiB: {time.monotonic() - started:.2f} s")
    _assert_all_released(proxy, 256 << 20)


def _assert_all_released(proxy, carried: int) -> None:
    """Every session closed, every buffer and backend connection given back, and the bytes
    counted by the proxy itself (so they did go through it)."""
    wait_sessions(proxy, 0)
    status = proxy.request("STATUS")["content"]
    assert status["buffers_in_use"] == 0
    assert status["metrics"]["gauges"]["backend.connections"] == 0
    assert status["metrics"]["counters"]["bytes_in"] == carried
    assert status["metrics"]["counters"]["bytes_out"] == carried


def _reading_paused(proxy) -> list[tuple[bool, bool]]:
    """For each open pipe: (client not read for lack of room, backend not read for lack
    of room), i.e. the proxy applies back-pressure on that side."""

    def read() -> list[tuple[bool, bool]]:
        out = []
        for session in proxy.worker.server.sessions:
            pipe = session.state
            assert isinstance(pipe, Pipe)
            out.append(
                (
                    not pipe.front_readiness.interest & READABLE and not pipe.front_eof,
                    not pipe.back_readiness.interest & READABLE and not pipe.back_eof,
                )
            )
        return out

    return in_worker(proxy, read)


def test_backpressure_towards_a_backend_that_stops_reading(proxy, make_backend):
    # The backend reads nothing until told to: the client's bytes pile up until the proxy's
    # buffer is full and it stops reading the client. When the backend reads again, the
    # proxy must resume on its own (under edge-triggered epoll no new event will come for
    # the bytes already waiting in the kernel).
    go = threading.Event()

    def late_reader(backend, conn) -> None:
        go.wait(WAIT)
        ScriptedBackend.read_all(conn)

    backend = make_backend(late_reader)
    address = proxy.tcp_cluster("app", [backend.address])
    total = 8 << 20
    pattern = _pattern()
    with connect(address) as client:
        sender = threading.Thread(target=client.sendall, args=(pattern[: 1 << 20].tobytes() * 8,))
        sender.start()
        wait_for(lambda: _reading_paused(proxy) == [(True, False)], what="back-pressure")
        go.set()
        sender.join(WAIT)
        assert not sender.is_alive()
        client.shutdown(socket.SHUT_WR)
        conn = backend.conn()
        assert conn.eof.wait(WAIT)
    received = conn.received()
    assert len(received) == total
    assert received == pattern[: 1 << 20].tobytes() * 8


def test_backpressure_towards_a_client_that_stops_reading(proxy, make_backend):
    # The mirror case: the backend sends 8 MiB to a client that reads nothing at first.
    chunk = _pattern()[: 1 << 20].tobytes()

    def talker(backend, conn) -> None:
        conn.sock.sendall(chunk * 8)
        conn.sock.shutdown(socket.SHUT_WR)
        ScriptedBackend.read_all(conn)

    backend = make_backend(talker)
    address = proxy.tcp_cluster("app", [backend.address])
    with connect(address) as client:
        wait_for(lambda: _reading_paused(proxy) == [(False, True)], what="back-pressure")
        received = bytearray()
        while True:
            data = client.recv(1 << 20)
            if not data:
                break
            received += data
        assert received == chunk * 8
