"""Active health checks: an HTTP probe of every backend of a cluster, inside the loop.

Theory of operation
-------------------
``SET_HEALTH_CHECK`` gives a cluster a probe: every ``interval`` seconds each of its
backends gets a fresh, non-blocking connection that sends
``GET <uri> HTTP/1.1`` with ``Connection: close`` and reads the response head (Sōzu's
``lib/src/health_check.rs``). The probe succeeds when the status is ``expected_status``
(or any 2xx when that is 0) within ``timeout`` seconds; anything else fails it (refused
connection, timeout, garbage, another status).

Rise and fall thresholds debounce the verdict: a healthy backend turns unhealthy after
``unhealthy_threshold`` consecutive failures, an unhealthy one turns healthy after
``healthy_threshold`` consecutive successes. Each turn sets ``Backend.healthy`` (which
``can_open`` honours, so load balancing skips the backend; when every backend is
unhealthy the fail-open rule of ``backends.py`` still serves) and pushes
``HEALTH_CHECK_UNHEALTHY`` / ``HEALTH_CHECK_HEALTHY``. When the last healthy backend of a
cluster goes, ``NO_AVAILABLE_BACKENDS`` is pushed; when one comes back,
``CLUSTER_RECOVERED``.

A cluster with ``backend_tls`` is probed over TLS with the same settings (context, SNI,
verification and name check of ``tls_backend.py``): after the connect the probe runs the
client handshake, and a failed handshake or name check fails the probe (and counts
``backend.tls.errors``), so a backend whose certificate stops verifying is taken out.

Probes are sessions of the reactor (registered under their socket's fd) but are not client
sessions: they do not count towards ``max_connections`` and a soft stop does not wait for
them.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL

from pysozu.parser import ParseError, parse_response_head
from pysozu.reactor.channel import event_message
from pysozu.reactor.readiness import ERROR, HUP, READABLE, WRITABLE, Readiness
from pysozu.reactor.server import Server
from pysozu.reactor.session import ProxySession
from pysozu.reactor.timer import TimerEntry

from .backends import Backend
from .h2_connection import H2Connection, HeadersReceived, StreamReset, Terminated
from .tls_backend import BACKEND_TLS_ERRORS, BackendTls, BackendTlsError, handshake_step
from .upstream import Upstreams, backend_event

log = logging.getLogger("pysozu.health_check")

#: A probe reads at most this much of the response (the head must fit).
MAX_PROBE_RESPONSE = 16384


@dataclass(frozen=True)
class HealthCheckConfig:
    """Sōzu's ``HealthCheckConfig``."""

    uri: str
    interval: float = 10
    timeout: float = 5
    healthy_threshold: int = 3
    unhealthy_threshold: int = 3
    expected_status: int = 0  # 0: any 2xx

    def accepts(self, status: int) -> bool:
        if self.expected_status:
            return status == self.expected_status
        return 200 <= status < 300


class _BackendHealth:
    __slots__ = ("failures", "successes")

    def __init__(self) -> None:
        self.successes = 0
        self.failures = 0


class Probe(ProxySession):
    """One probe connection: connect, send the request, read the status, report."""

    protocol = "health_check"

    def __init__(
        self, checker: HealthChecker, cluster_id: str, backend: Backend, sock: socket.socket,
        request: bytes, timeout: float, tls: BackendTls | None = None,
        h2: H2Connection | None = None,
    ) -> None:
        server = checker.server
        self.server = server
        self.checker = checker
        self.cluster_id = cluster_id
        self.backend = backend
        self.sock = sock
        self.frontend_token = sock.fileno()
        self.last_event = server.now
        self.alive = True
        self.readiness = Readiness(WRITABLE | READABLE | HUP | ERROR)
        self.request = request
        self.sent = 0
        self.connected = False
        self.tls = tls
        #: the TLS connection once the connect succeeded (a TLS cluster only)
        self.conn: SSL.Connection | None = None
        self.handshaken = tls is None
        self.response = bytearray()
        #: an h2c cluster: the probe's HTTP/2 connection (``request`` holds its frames)
        self.h2 = h2
        self.result: bool | None = None
        self.timer: TimerEntry | None = server.timers.schedule(timeout, self._timed_out)

    def update_readiness(self, token: int, events: int) -> None:
        if events & (HUP | ERROR):
            events |= READABLE
        self.readiness.event |= events

    def ready(self) -> bool:
        readiness = self.readiness
        if not self.connected:
            if not readiness.event & (WRITABLE | HUP | ERROR):
                return False
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return self._finish(False)
            self.connected = True
            if self.tls is not None:
                self.conn = self.tls.connection(self.sock)
        if not self.handshaken and not self._handshake():
            return self.result is not None
        conn = self.conn
        while self.sent < len(self.request):
            try:
                if conn is not None:
                    self.sent += conn.send(self.request[self.sent :])
                else:
                    self.sent += self.sock.send(self.request[self.sent :])
            except (BlockingIOError, SSL.WantWriteError):
                readiness.event &= ~WRITABLE
                return False
            except SSL.WantReadError:
                readiness.event &= ~READABLE
                return False
            except (OSError, SSL.Error):
                return self._finish(False)
        readiness.interest = READABLE | HUP | ERROR
        while readiness.event & READABLE:
            try:
                data = conn.recv(4096) if conn is not None else self.sock.recv(4096)
            except (BlockingIOError, SSL.WantReadError, SSL.WantWriteError):
                readiness.event &= ~READABLE
                return False
            except SSL.ZeroReturnError:
                data = b""
            except SSL.SysCallError as exc:
                if not (exc.args and exc.args[0] == -1):  # not just an EOF
                    return self._finish(False)
                data = b""
            except (OSError, SSL.Error):
                return self._finish(False)
            if self.h2 is not None:
                verdict = self._h2_verdict(data)
                if verdict is not None:
                    return self._finish(verdict)
                if not data:
                    return self._finish(False)
                continue
            if data:
                self.response += data
            try:
                head = parse_response_head(self.response, request_method=b"GET")
            except ParseError:
                return self._finish(False)
            if head is not None:
                return self._finish(self.checker.accepts(self.cluster_id, head.status))
            if not data or len(self.response) >= MAX_PROBE_RESPONSE:
                return self._finish(False)
        return False

    def _h2_verdict(self, data: bytes) -> bool | None:
        """An h2c probe: the status of stream 1's final response, False if the backend
        refuses it or breaks the protocol, None while it is still to come."""
        h2 = self.h2
        assert h2 is not None
        for event in h2.receive(data) if data else ():
            if isinstance(event, HeadersReceived) and event.stream_id == 1:
                status = dict(event.headers).get(b":status", b"")
                if status.isdigit() and not status.startswith(b"1"):
                    return self.checker.accepts(self.cluster_id, int(status))
            elif isinstance(event, (StreamReset, Terminated)):
                return False
        return None

    def _handshake(self) -> bool:
        """One step of the TLS handshake; True once done and the name checked."""
        conn, tls = self.conn, self.tls
        assert conn is not None and tls is not None
        try:
            want = handshake_step(conn)
            if not want:
                tls.check_peer(conn, self.backend.sockaddr[0])
        except (SSL.Error, BackendTlsError) as exc:
            self.server.metrics.incr(BACKEND_TLS_ERRORS)
            log.debug("TLS health check of %s failed: %s", self.backend.address, exc)
            self._finish(False)
            return False
        readiness = self.readiness
        if want:  # wait for that readiness only (a level-triggered poller would spin)
            readiness.event &= ~want
            readiness.interest = want | HUP | ERROR
            return False
        self.handshaken = True
        readiness.interest = WRITABLE | READABLE | HUP | ERROR
        return True

    def _finish(self, ok: bool) -> bool:
        if self.result is None:
            self.result = ok
            self.checker.report(self.cluster_id, self.backend, ok)
        return True

    def _timed_out(self) -> None:
        self.timer = None
        if self.alive:
            self._finish(False)
            self.server.kill_session(self)

    def tokens(self) -> list[int]:
        return [self.frontend_token]

    def interest(self, token: int) -> int:
        return self.readiness.interest

    def shutting_down(self) -> bool:
        return True

    def close(self) -> None:
        self.server.timers.cancel(self.timer)
        self.timer = None
        self.server.unregister(self.frontend_token)
        self.sock.close()
        self.checker.probes.discard(self)

    def print_session(self) -> str:
        return f"Probe({self.cluster_id}/{self.backend.backend_id})"


class HealthChecker:
    """The probes of every cluster that has a health check (see the module docstring)."""

    def __init__(self, server: Server, upstreams: Upstreams) -> None:
        self.server = server
        self.upstreams = upstreams
        self.configs: dict[str, HealthCheckConfig] = {}
        self.timers: dict[str, TimerEntry] = {}
        self.health: dict[tuple[str, str, str], _BackendHealth] = {}
        self.probes: set[Probe] = set()
        self._down: set[str] = set()

    def set(self, cluster_id: str, config: HealthCheckConfig) -> None:
        """Start (or change) the probes of a cluster; the first round runs at once."""
        self.remove(cluster_id, keep_health=True)
        self.configs[cluster_id] = config
        self.timers[cluster_id] = self.server.timers.schedule(0, lambda: self._round(cluster_id))

    def remove(self, cluster_id: str, keep_health: bool = False) -> None:
        """Stop probing; without ``keep_health`` every backend counts as healthy again."""
        self.configs.pop(cluster_id, None)
        self.server.timers.cancel(self.timers.pop(cluster_id, None))
        if keep_health:
            return
        backends = self.upstreams.backends.get(cluster_id)
        for backend in backends.backends if backends is not None else ():
            backend.healthy = True
        for key in [k for k in self.health if k[0] == cluster_id]:
            del self.health[key]
        self._down.discard(cluster_id)

    def accepts(self, cluster_id: str, status: int) -> bool:
        config = self.configs.get(cluster_id)
        return config is not None and config.accepts(status)

    def _round(self, cluster_id: str) -> None:
        config = self.configs.get(cluster_id)
        if config is None:
            return
        self.timers[cluster_id] = self.server.timers.schedule(
            config.interval, lambda: self._round(cluster_id)
        )
        backends = self.upstreams.backends.get(cluster_id)
        for backend in list(backends.backends) if backends is not None else ():
            self._probe(cluster_id, backend, config)

    def _probe(self, cluster_id: str, backend: Backend, config: HealthCheckConfig) -> None:
        family = socket.AF_INET6 if ":" in backend.sockaddr[0] else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            log.warning("no socket for the health check of %s: %s", backend.address, e)
            return
        sock.setblocking(False)
        err = sock.connect_ex(backend.sockaddr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            self.report(cluster_id, backend, False)
            return
        h2 = None
        if cluster_id in self.upstreams.backend_h2:  # h2c backends: probe in HTTP/2
            h2 = H2Connection(client=True)
            h2.initiate()
            h2.send_headers(h2.new_stream_id(), [
                (b":method", b"GET"), (b":scheme", b"http"),
                (b":authority", backend.address.encode()), (b":path", config.uri.encode()),
                (b"user-agent", b"pysozu-health-check"), (b"accept", b"*/*")], end_stream=True)
            request = h2.data_to_send()
        else:
            request = (
                f"GET {config.uri} HTTP/1.1\r\nHost: {backend.address}\r\n"
                "User-Agent: pysozu-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            ).encode()
        probe = Probe(self, cluster_id, backend, sock, request, config.timeout,
                      self.upstreams.backend_tls.get(cluster_id), h2)
        self.probes.add(probe)
        self.server.register(probe.frontend_token, probe, probe.readiness.interest)

    def report(self, cluster_id: str, backend: Backend, ok: bool) -> None:
        """Count a probe result and apply the thresholds."""
        config = self.configs.get(cluster_id)
        if config is None:
            return
        key = (cluster_id, backend.backend_id, backend.address)
        health = self.health.get(key)
        if health is None:
            health = self.health[key] = _BackendHealth()
        metrics = self.server.metrics
        if ok:
            health.successes += 1
            health.failures = 0
            metrics.incr_scoped("health_check.success", cluster_id, backend.backend_id)
            if not backend.healthy and health.successes >= config.healthy_threshold:
                backend.healthy = True
                self._push("HEALTH_CHECK_HEALTHY", cluster_id, backend)
        else:
            health.failures += 1
            health.successes = 0
            metrics.incr_scoped("health_check.failure", cluster_id, backend.backend_id)
            if backend.healthy and health.failures >= config.unhealthy_threshold:
                backend.healthy = False
                self._push("HEALTH_CHECK_UNHEALTHY", cluster_id, backend)
        self._cluster_availability(cluster_id)

    def _push(self, kind: str, cluster_id: str, backend: Backend) -> None:
        log.info("%s: %s/%s (%s)", kind, cluster_id, backend.backend_id, backend.address)
        self.upstreams.push(backend_event(kind, cluster_id, backend))

    def _cluster_availability(self, cluster_id: str) -> None:
        backends = self.upstreams.backends.get(cluster_id)
        if backends is None or not backends.backends:
            return
        healthy = any(b.healthy for b in backends.backends)
        if not healthy and cluster_id not in self._down:
            self._down.add(cluster_id)
            self.upstreams.push(event_message("NO_AVAILABLE_BACKENDS", cluster_id=cluster_id))
        elif healthy and cluster_id in self._down:
            self._down.discard(cluster_id)
            self.upstreams.push(event_message("CLUSTER_RECOVERED", cluster_id=cluster_id))

    def query(self) -> dict[str, Any]:
        """Per cluster: the config and each backend's health (QUERY_HEALTH_CHECKS)."""
        out: dict[str, Any] = {}
        for cluster_id, config in sorted(self.configs.items()):
            backends = self.upstreams.backends.get(cluster_id)
            out[cluster_id] = {
                "config": {
                    "uri": config.uri, "interval": config.interval, "timeout": config.timeout,
                    "healthy_threshold": config.healthy_threshold,
                    "unhealthy_threshold": config.unhealthy_threshold,
                    "expected_status": config.expected_status,
                },
                "backends": {
                    b.backend_id: {"address": b.address, "healthy": b.healthy}
                    for b in (backends.backends if backends is not None else [])
                },
            }
        return out

    def close(self) -> None:
        for cluster_id in list(self.configs):
            self.remove(cluster_id)
        for probe in list(self.probes):
            self.server.kill_session(probe)
