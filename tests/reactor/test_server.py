"""Reactor behaviour that end-to-end proxy tests cannot pin down on their own."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from pysozu.config import ServerConfig
from pysozu.reactor import metrics as m
from pysozu.reactor.poller import EpollPoller, SelectorPoller
from pysozu.reactor.readiness import READABLE, WRITABLE
from pysozu.reactor.server import Server
from pysozu.reactor.session import ProxySession, SessionResult, SessionState, StateMachineSession
from tests.conftest import WAIT, connect


def wait_for(predicate, timeout: float = WAIT, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)  # polling a condition with a deadline, not synchronising by sleep
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def assert_closed(sock: socket.socket) -> None:
    """The peer closed: EOF, or a reset when our unread bytes were discarded."""
    try:
        assert sock.recv(1) == b""
    except ConnectionResetError:
        pass


class RecordingSession(ProxySession):
    def __init__(self, server: Server, sock: socket.socket, on_ready=None) -> None:
        self.server = server
        self.sock = sock
        self.frontend_token = sock.fileno()
        self.last_event = server.now
        self.alive = True
        self.events: list[int] = []
        self.on_ready = on_ready

    def update_readiness(self, token: int, events: int) -> None:
        self.events.append(events)

    def ready(self) -> bool:
        if self.on_ready is not None:
            self.on_ready()
        return False

    def tokens(self) -> list[int]:
        return [self.frontend_token]

    def interest(self, token: int) -> int:
        return READABLE

    def close(self) -> None:
        self.server.unregister(self.frontend_token)
        self.sock.close()


class ScriptedPoller:
    """Returns one prepared batch of events, as epoll would after a busy wait."""

    level_triggered = False

    def __init__(self) -> None:
        self.batch: list[tuple[int, int]] = []
        self.registered: set[int] = set()

    def register(self, fd: int, interest: int) -> None:
        self.registered.add(fd)

    def unregister(self, fd: int) -> None:
        self.registered.discard(fd)

    def update_interest(self, fd: int, interest: int) -> None:
        pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        batch, self.batch = self.batch, []
        return batch

    def close(self) -> None:
        pass


def test_stale_event_never_reaches_a_session_that_reused_the_fd():
    poller = ScriptedPoller()
    server = Server(poller=poller, zombie_check_interval=0)
    a, a_peer = socket.socketpair()
    b, b_peer = socket.socketpair()
    victim = RecordingSession(server, b)
    newcomer: list[RecordingSession] = []

    def close_victim_and_reuse_its_fd() -> None:
        server.kill_session(victim)
        fresh, fresh_peer = socket.socketpair()
        fresh_peer.close()
        if fresh.fileno() != victim.frontend_token:
            other = fresh
            fresh, _ = socket.socketpair()
            other.close()
        session = RecordingSession(server, fresh)
        server.sessions.add(session)
        server.register(fresh.fileno(), session)
        newcomer.append(session)

    first = RecordingSession(server, a, on_ready=close_victim_and_reuse_its_fd)
    for s in (first, victim):
        server.sessions.add(s)
        server.register(s.frontend_token, s)
    old_fd = victim.frontend_token
    poller.batch = [(first.frontend_token, READABLE), (old_fd, READABLE | WRITABLE)]
    server.run_once()
    assert first.events == [READABLE]
    assert newcomer and newcomer[0].frontend_token == old_fd  # the fd number was reused
    assert newcomer[0].events == []  # ...but the stale event was dropped
    # the next batch for that fd is genuine and is delivered
    poller.batch = [(old_fd, READABLE)]
    server.run_once()
    assert newcomer[0].events == [READABLE]
    for s in [first, *newcomer]:
        server.kill_session(s)
    a_peer.close()
    b_peer.close()
    server.close()


@pytest.mark.parametrize("poller_class", [EpollPoller, SelectorPoller])
def test_pollers_report_readable_and_writable(poller_class):
    poller = poller_class()
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        poller.register(a.fileno(), READABLE | WRITABLE)
        events = dict(poller.poll(1.0))
        assert events[a.fileno()] & WRITABLE
        b.sendall(b"x")
        deadline = time.monotonic() + WAIT
        got = 0
        while not got & READABLE and time.monotonic() < deadline:
            got = dict(poller.poll(1.0)).get(a.fileno(), 0)
        assert got & READABLE
    finally:
        poller.unregister(a.fileno())
        poller.close()
        a.close()
        b.close()


def test_epoll_is_edge_triggered():
    """Unread data is reported once: states must read until EAGAIN (the design's premise)."""
    poller = EpollPoller()
    a, b = socket.socketpair()
    try:
        poller.register(a.fileno(), READABLE)
        b.sendall(b"data")
        assert dict(poller.poll(1.0)).get(a.fileno(), 0) & READABLE
        assert not dict(poller.poll(0.05)).get(a.fileno(), 0) & READABLE
    finally:
        poller.close()
        a.close()
        b.close()


class Runaway(SessionState):
    """Upgrades to itself forever: the session must give up and count it."""

    NAME = "runaway"

    def __init__(self, session: StateMachineSession, rank: int = 1) -> None:
        self.RANK = rank

    def ready(self, session):
        return SessionResult.UPGRADE

    def upgrade(self, session):
        return Runaway(session, self.RANK + 1)

    def update_readiness(self, token, events):
        pass

    def interest(self, token):
        return READABLE


def test_runaway_session_is_closed_and_counted():
    server = Server(zombie_check_interval=0)
    a, b = socket.socketpair()
    a.setblocking(False)
    session = StateMachineSession(server, a, None, None, Runaway)
    server.sessions.add(session)
    server.register(a.fileno(), session)
    server.run_session(session)
    assert not session.alive
    assert server.metrics.counters[m.INFINITE_LOOP] == 1
    b.close()
    server.close()


def test_backward_upgrade_is_refused():
    class Back(Runaway):
        def upgrade(self, session):
            return Runaway(session, rank=0)

    server = Server(zombie_check_interval=0)
    a, b = socket.socketpair()
    a.setblocking(False)
    session = StateMachineSession(server, a, None, None, lambda s: Back(s, rank=5))
    server.sessions.add(session)
    server.register(a.fileno(), session)
    server.run_session(session)
    assert not session.alive
    assert server.metrics.counters["session.failed_upgrade"] == 1
    b.close()
    server.close()


@pytest.fixture
def server_config():
    return dataclasses.replace(ServerConfig(), zombie_check_interval=1)


def test_zombie_sessions_are_swept(proxy, echo_backend):
    address = proxy.listen(front_timeout=3600, back_timeout=3600)
    proxy.tcp_cluster("app", [echo_backend.address], listen=False)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    with connect(address) as client:
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"
        # idle: no event for over a zombie interval, the sweep must close it
        assert client.recv(1) == b""
    counters = proxy.request("STATUS")["content"]["metrics"]["counters"]
    assert counters[m.ZOMBIES] >= 1


def test_buffer_pool_exhaustion_refuses_new_clients(poller, echo_backend):
    from pysozu.worker import Worker
    from tests.conftest import Proxy

    p = Proxy(Worker(dataclasses.replace(ServerConfig(), max_buffers=2), poller=poller))
    try:
        address = p.tcp_cluster("app", [echo_backend.address])
        with connect(address) as first:
            first.sendall(b"a")
            assert first.recv(1) == b"a"
            with connect(address) as second:
                second.sendall(b"b")
                assert_closed(second)  # closed at once: no buffer for it
            counters = p.request("STATUS")["content"]["metrics"]["counters"]
            assert counters[m.BUFFER_EXHAUSTED] == 1
            first.sendall(b"c")
            assert first.recv(1) == b"c"  # the first client is unaffected
    finally:
        p.close()


EMFILE_SCRIPT = textwrap.dedent(
    """
    import resource, socket, sys
    from pysozu.command import make_request
    from pysozu.reactor.channel import Channel
    from pysozu.worker import Worker

    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(64)
    address = "127.0.0.1:%d" % ls.getsockname()[1]
    worker = Worker()
    worker.offer_listen_socket(address, ls)
    worker.apply([
        make_request("1", "ADD_TCP_LISTENER", address=address),
        make_request("2", "ADD_CLUSTER", cluster_id="app"),
        make_request("3", "ADD_TCP_FRONTEND", cluster_id="app", address=address),
        make_request("4", "ADD_BACKEND", cluster_id="app", backend_id="b",
                     address=sys.argv[1]),
        make_request("5", "ACTIVATE_LISTENER", address=address, proxy="TCP", from_scm=True),
    ])
    # Leave room for a few sessions only: every open fd now, plus a handful.
    import os
    used = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
    print(address, flush=True)
    worker.start_thread()
    sys.stdin.readline()
    print("EMFILE", worker.server.metrics.counters["accept_queue.emfile"], flush=True)
    """
)


def test_accept_backs_off_on_emfile_and_recovers(echo_backend):
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SCRIPT, echo_backend.address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None and proc.stdin is not None
        address = proc.stdout.readline().strip()
        # Each proxied client costs two fds in the worker (client, backend): room for ~4.
        for i in range(12):
            c = connect(address)
            clients.append(c)
            c.sendall(b"%02d" % i)
        served = []
        for c in clients[:3]:
            assert c.recv(2) != b""  # the first ones are served
            served.append(c)
        for c in served:
            c.close()
        clients = clients[3:]
        # Close clients one by one; the ones waiting get served once fds free up.
        for i, c in enumerate(clients):
            c.settimeout(WAIT)
            data = c.recv(2)
            assert data == b"%02d" % (i + 3), (i, data)
            c.close()
        clients = []
        proc.stdin.write("\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line.startswith("EMFILE") and int(line.split()[1]) >= 1, line
    finally:
        for c in clients:
            c.close()
        proc.kill()
        proc.wait(WAIT)
