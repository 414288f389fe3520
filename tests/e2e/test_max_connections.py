"""max_connections: at the limit, new clients wait in the kernel's backlog (their connect
succeeds, nothing serves them) and are served once the worker is back under 90 % of it."""

from __future__ import annotations

import dataclasses
import socket
import time

import pytest

from pysozu.config import ServerConfig
from tests.conftest import connect, recv_all
from tests.e2e.helpers import echo, expect_silence, recv_exact, wait_sessions

LIMIT = 10


@pytest.fixture
def server_config() -> ServerConfig:
    return dataclasses.replace(ServerConfig(), max_connections=LIMIT)


def _gauges(proxy) -> dict[str, int]:
    return proxy.request("STATUS")["content"]["metrics"]["gauges"]


def _close(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_WR)
    assert recv_all(sock) == b""
    sock.close()


def test_waits_in_backlog_until_under_90_percent(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    clients = []
    try:
        for n in range(LIMIT):
            clients.append(connect(address))
            echo(clients[-1], b"client %d" % n)
        assert _gauges(proxy)["accept_queue.backpressure"] == 1
        waiting = connect(address)  # the kernel completes the handshake: it is in the backlog
        clients.append(waiting)
        waiting.sendall(b"let me in")
        # not accepted, so not served (bounded wait: shows that nothing happens)
        expect_silence(waiting)
        assert echo_backend.accepted == LIMIT
        # one closes: 9 open is not under 90 % of 10, the newcomer still waits
        _close(clients.pop(0))
        wait_sessions(proxy, LIMIT - 1)
        expect_silence(waiting)
        assert echo_backend.accepted == LIMIT
        # another closes: 8 < 9, accepting resumes and the waiting client is served
        _close(clients.pop(0))
        assert recv_exact(waiting, 9) == b"let me in"
        assert echo_backend.accepted == LIMIT + 1
        assert _gauges(proxy)["accept_queue.backpressure"] == 0
        for client in clients:  # the connections that stayed open were never disturbed
            echo(client, b"still fine")
    finally:
        for client in clients:
            client.close()


def test_burst_over_the_limit_is_served_in_turn(proxy, echo_backend):
    # three times the limit connect at once; each is served once earlier ones finish
    address = proxy.tcp_cluster("app", [echo_backend.address])
    clients = [connect(address) for _ in range(3 * LIMIT)]
    try:
        for n, client in enumerate(clients):
            client.sendall(b"#%d" % n)
            client.shutdown(socket.SHUT_WR)
        for n, client in enumerate(clients):
            assert recv_all(client) == b"#%d" % n
    finally:
        for client in clients:
            client.close()
    assert echo_backend.accepted == 3 * LIMIT


def test_worker_idles_while_clients_wait(proxy, echo_backend):
    # At the limit a level-triggered poller still sees the listener readable; the worker
    # must stop watching it instead of spinning. Measured as process CPU time over a
    # bounded wait: a spinning loop burns most of it, an idle one almost none.
    address = proxy.tcp_cluster("app", [echo_backend.address])
    clients = [connect(address) for _ in range(LIMIT + 1)]
    try:
        for client in clients[:LIMIT]:
            echo(client, b"in")
        cpu, wall = time.process_time(), time.monotonic()
        expect_silence(clients[LIMIT], wait=0.5)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert cpu < 0.4 * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s while waiting"
        _close(clients.pop(0))
        _close(clients.pop(0))
        echo(clients[-1], b"served")
    finally:
        for client in clients:
            client.close()
