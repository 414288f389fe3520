"""Shared fixtures: real workers, real backends, real sockets on 127.0.0.1.

``poller`` is parametrised so that every test using ``worker`` runs on the edge-triggered
epoll poller and on the level-triggered selectors fallback.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from pysozu.config import ServerConfig
from pysozu.reactor.channel import Channel
from pysozu.worker import Worker

WAIT = 10.0  # bound for every wait in the suite: a hang becomes a clear failure


class EchoBackend:
    """A threaded TCP echo server that honours half-close and counts connections."""

    def __init__(self, *, greeting: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.greeting = greeting
        self.accepted = 0
        self.received: list[bytes] = []  # first bytes of each connection, for PROXY tests
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        first = True
        try:
            if self.greeting:
                conn.sendall(self.greeting)
            while True:
                data = conn.recv(262144)
                if first:
                    with self.lock:
                        self.received.append(data)
                    first = False
                if not data:
                    conn.shutdown(socket.SHUT_WR)
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            conns = list(self.conns)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


#: sockets that hold the ports of ``dead_address`` (the oldest are let go)
_HELD: deque[socket.socket] = deque()


def dead_address() -> str:
    """An address where nothing listens: connects are refused.

    The port stays bound (never listening) for a while: a closed port of the ephemeral
    range could be picked at once as the source port of a connect to itself, which then
    succeeds (TCP self-connect) and the "dead" backend would answer. SO_REUSEADDR lets a
    test hand the address to a listener all the same.
    """
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % s.getsockname()[1]
    _HELD.append(s)
    while len(_HELD) > 256:
        _HELD.popleft().close()
    return address


class Proxy:
    """A worker running in a thread, with a blocking channel to drive it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.channel = Channel(worker.channel_pair())
        worker.start_thread()

    def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        return self.channel.request({"type": type_, **fields}, timeout=WAIT)

    def ok(self, type_: str, **fields: Any) -> dict[str, Any]:
        answer = self.request(type_, **fields)
        assert answer["status"] == "OK", answer
        return answer

    def listen(self, *, expect_proxy: bool = False, **timeouts: Any) -> str:
        """Add and activate a TCP listener on a port the test bound itself; its address."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        address = "127.0.0.1:%d" % sock.getsockname()[1]
        self.worker.offer_listen_socket(address, sock)
        self.ok("ADD_TCP_LISTENER", address=address, expect_proxy=expect_proxy, **timeouts)
        self.ok("ACTIVATE_LISTENER", address=address, proxy="TCP", from_scm=True)
        return address

    def tcp_cluster(
        self, cluster_id: str, backends: list[str], *, listen: bool = True, **cluster: Any
    ) -> str:
        """A cluster with backends ``<id>-<n>`` and, if ``listen``, a listener for it."""
        self.ok("ADD_CLUSTER", cluster_id=cluster_id, **cluster)
        for n, address in enumerate(backends):
            self.ok("ADD_BACKEND", cluster_id=cluster_id, backend_id=f"{cluster_id}-{n}",
                    address=address)
        if not listen:
            return ""
        address = self.listen()
        self.ok("ADD_TCP_FRONTEND", cluster_id=cluster_id, address=address)
        return address

    def close(self) -> None:
        self.channel.close()
        self.worker.stop_thread()


def connect(address: str, timeout: float = WAIT) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    return sock


def recv_all(sock: socket.socket, limit: int | None = None) -> bytes:
    """Read until EOF (or ``limit`` bytes); the socket's timeout bounds each read."""
    chunks = bytearray()
    while limit is None or len(chunks) < limit:
        data = sock.recv(1 << 20)
        if not data:
            break
        chunks += data
    return bytes(chunks)


@pytest.fixture(params=["epoll", "selectors"])
def poller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig()


@pytest.fixture
def proxy(poller: str, server_config: ServerConfig) -> Iterator[Proxy]:
    p = Proxy(Worker(server_config, poller=poller))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def echo_backend() -> Iterator[EchoBackend]:
    backend = EchoBackend()
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def make_echo_backend() -> Iterator[Any]:
    backends: list[EchoBackend] = []

    def make(**kwargs: Any) -> EchoBackend:
        backend = EchoBackend(**kwargs)
        backends.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in backends:
            backend.close()
