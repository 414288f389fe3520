"""Helpers shared by the end-to-end TCP tests: bounded waits, exact reads, scripted backends.

Every wait here polls a condition against a deadline (``WAIT`` from ``tests.conftest``
bounds it), so a broken proxy turns into a clear failure instead of a hang. The only
fixed-length waits are the ``*_not_*`` helpers, which show that something does *not*
happen within a short window; each says so where it is used.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import WAIT, Proxy, connect

#: How long the "nothing happens" checks watch (a bounded wait, not a synchronisation).
QUIET = 0.3


def wait_for(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; fail on EOF before that (the socket timeout bounds reads)."""
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise AssertionError(f"EOF after {len(buf)} of {n} bytes")
        buf += data
    return bytes(buf)


def echo(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` and check that exactly it comes back (an echo backend behind)."""
    sock.sendall(data)
    assert recv_exact(sock, len(data)) == data


def expect_eof(sock: socket.socket, timeout: float = 2.0) -> None:
    """The peer closed: EOF or a reset within ``timeout`` (and no data before it)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return
    assert data == b"", f"expected EOF, got {data[:64]!r}"


def expect_silence(sock: socket.socket, wait: float = QUIET) -> None:
    """Nothing arrives within ``wait`` seconds: neither data nor EOF (a bounded wait)."""
    sock.settimeout(wait)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return
    finally:
        sock.settimeout(WAIT)
    raise AssertionError(f"expected nothing, got {data[:64]!r}")


def expect_refused(address: str) -> None:
    """Nothing listens at ``address``: the connect is refused."""
    try:
        sock = connect(address, timeout=2.0)
    except ConnectionRefusedError:
        return
    sock.close()
    raise AssertionError(f"{address} still accepts connections")


def counters(proxy: Proxy) -> dict[str, int]:
    return dict(proxy.request("STATUS")["content"]["metrics"]["counters"])


def sessions(proxy: Proxy) -> int:
    return int(proxy.request("STATUS")["content"]["sessions"])


def wait_sessions(proxy: Proxy, n: int) -> None:
    wait_for(lambda: sessions(proxy) == n, what=f"{n} open sessions")


def events_so_far(proxy: Proxy) -> list[dict[str, Any]]:
    """Every event the worker pushed before it answered a STATUS sent now.

    The channel is one ordered stream, so once the STATUS answer is read, every event the
    worker pushed before it is in ``channel.events``: a deterministic barrier.
    """
    proxy.request("STATUS")
    events = [e["content"] for e in proxy.channel.events]
    proxy.channel.events.clear()
    return events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def in_worker(proxy: Proxy, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in the worker's loop thread and return its result (runtime state lives
    there: touching it from the test thread would race the loop). ``proxy`` is anything
    with a running ``worker`` attribute."""
    done = threading.Event()
    result: list[Any] = []

    def call() -> None:
        try:
            result.append(fn())
        finally:
            done.set()

    proxy.worker.server.call_soon(call)
    assert done.wait(WAIT), "the worker loop did not run the callback"
    return result[0] if result else None


class Conn:
    """One connection accepted by a ``ScriptedBackend``: everything it received, and when."""

    def __init__(self, sock: socket.socket, peer: Any) -> None:
        self.sock = sock
        self.peer = peer
        self.data = bytearray()
        self.eof = threading.Event()
        self.lock = threading.Lock()

    def received(self) -> bytes:
        with self.lock:
            return bytes(self.data)


class ScriptedBackend:
    """A threaded TCP server whose per-connection behaviour is a function.

    ``handler(conn)`` runs in the connection's thread; ``read_all(conn)`` reads to EOF
    recording every byte. The default handler echoes and records everything.
    """

    def __init__(
        self,
        handler: Callable[[ScriptedBackend, Conn], None] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        port = self.sock.getsockname()[1]
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.handler = handler or ScriptedBackend.echo_all
        self.conns: list[Conn] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, peer = self.sock.accept()
            except OSError:
                return
            sock.settimeout(WAIT)
            conn = Conn(sock, peer)
            with self.lock:
                self.conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self.lock:
                self.threads.append(thread)
            thread.start()

    def _run(self, conn: Conn) -> None:
        try:
            self.handler(self, conn)
        except OSError:
            pass
        finally:
            conn.eof.set()
            conn.sock.close()

    @staticmethod
    def recv_some(conn: Conn) -> bytes:
        data = conn.sock.recv(262144)
        with conn.lock:
            conn.data += data
        return data

    @staticmethod
    def read_all(conn: Conn) -> None:
        while ScriptedBackend.recv_some(conn):
            pass

    @staticmethod
    def echo_all(backend: ScriptedBackend, conn: Conn) -> None:
        while True:
            data = ScriptedBackend.recv_some(conn)
            if not data:
                conn.sock.shutdown(socket.SHUT_WR)
                return
            conn.sock.sendall(data)

    def conn(self, index: int = 0) -> Conn:
        """The ``index``-th accepted connection, waiting for it."""
        wait_for(lambda: len(self.conns) > index, what=f"backend connection #{index}")
        with self.lock:
            return self.conns[index]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(WAIT)
        with self.lock:
            conns = list(self.conns)
            threads = list(self.threads)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(WAIT)


class BlackHole:
    """An address whose connects hang: a listener that never accepts, with its accept queue
    already full (backlog 0 holds one connection), so the kernel drops every further SYN
    and a connect neither succeeds nor fails until the caller's own timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.filler = socket.create_connection(self.sock.getsockname(), timeout=WAIT)

    def close(self) -> None:
        self.filler.close()
        self.sock.close()


def greeting(address: str) -> tuple[socket.socket, bytes]:
    """Connect and read the one-byte greeting of the ``EchoBackend`` that serves us."""
    sock = connect(address)
    try:
        data = sock.recv(1)
    except BaseException:
        sock.close()
        raise
    assert data, "closed before the backend's greeting"
    return sock, data
