"""TCP proxying: listeners bound to one cluster each, sessions that pipe bytes to a backend.

Theory of operation
-------------------
``TcpProxy`` is the session factory of every TCP listener. It knows which cluster each
listener serves (the TCP frontend), each cluster's PROXY protocol mode, and the backends
(``BackendMap``). An accepted client gets a ``TcpSession`` holding two pooled buffers;
without a frontend or a buffer the client is closed at once.

A ``TcpSession`` walks forward through its states::

    [ExpectProxyProtocol | RelayProxyProtocol] -> [SniPeek] -> [SendProxyProtocol] -> Pipe

``SniPeek`` (see ``protocols/sni.py``) runs only on a listener address that has frontends
with a ``hostname`` (SNI passthrough, beyond Sōzu): the cluster is then chosen from the
ClientHello's server name, before any backend is contacted. A listener whose frontends
have no host name starts exactly as in Sōzu, with its one cluster known at accept.

and, beside them, owns the backend connection, which states only use:

* connect: non-blocking ``connect`` to a backend picked by the cluster's algorithm; the
  first WRITABLE/HUP/ERROR on the backend token ends the attempt, and ``SO_ERROR`` says
  how. Success resets the backend's circuit breaker (``BACKEND_UP`` if it was down).
  Failure or ``connect_timeout`` counts against the backend (``BACKEND_DOWN`` when its
  retry budget is spent) and tries again, at most ``CONNECT_ATTEMPTS`` times in all;
  with nothing left to try the client is closed and ``NO_AVAILABLE_BACKENDS`` is pushed
  (once, until the cluster serves a connection again).
* timeouts: ``front_timeout`` and ``back_timeout`` close an idle session;
  ``connect_timeout`` bounds each connect attempt.
* removal: a session keeps the ``Backend`` it connected to even after ``REMOVE_BACKEND``;
  the last one to close pushes ``REMOVED_BACKEND_HAS_NO_CONNECTIONS``.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from pysozu.reactor import metrics as m
from pysozu.reactor.readiness import ERROR, HUP, NONE, READABLE, WRITABLE, Readiness
from pysozu.reactor.server import Listener, Server
from pysozu.reactor.session import (
    ProxySession,
    SessionState,
    SocketHandler,
    StateFactory,
    StateMachineSession,
)
from pysozu.reactor.timer import Timeout, TimerEntry

from .backends import Backend, NoAvailableBackend
from .pipe import Pipe
from .proxy_protocol import build_v2
from .proxy_protocol_states import ExpectProxyProtocol, RelayProxyProtocol, SendProxyProtocol
from .sni import SNI_ERRORS, SniPeek, SniRoutes
from .upstream import NO_RESOURCES, Upstreams

log = logging.getLogger("pysozu.tcp")

#: Connect attempts per client before giving up (Sōzu's ``CONN_RETRIES``).
CONNECT_ATTEMPTS = 3
#: Wait before creating a backend socket again after the process ran out of descriptors.
EMFILE_RETRY = 0.1

_CONNECTING, _CONNECTED, _NOT_CONNECTED = 0, 1, 2


@dataclass
class TcpListenerConfig:
    """What a TCP listener changes in its sessions (Sōzu ``TcpListenerConfig``)."""

    address: str
    public_address: str | None = None
    expect_proxy: bool = False
    front_timeout: float = 60
    back_timeout: float = 30
    connect_timeout: float = 3


@dataclass
class TcpCluster:
    cluster_id: str
    proxy_protocol: str | None = None  # None | EXPECT_HEADER | SEND_HEADER | RELAY_HEADER


def _sockaddr(addr: Any) -> tuple[str, int]:
    return (addr[0], addr[1])


class TcpSession(StateMachineSession):
    """One client connection through a TCP listener (see module docstring)."""

    protocol = "tcp"

    def __init__(
        self,
        proxy: TcpProxy,
        server: Server,
        sock: socket.socket,
        peer: Any,
        listener: Listener,
        cluster_id: str,
        to_back: bytearray,
        to_front: bytearray,
        routed: bool = True,
    ) -> None:
        super().__init__(server, sock, peer, listener)
        config: TcpListenerConfig = listener.config
        self.proxy = proxy
        self.config = config
        #: "" until ``SniPeek`` routes a session of an SNI listener (``routed`` is False)
        self.cluster_id = cluster_id
        self.routed = routed
        self.client_address: Any = peer
        self.proxy_header: Any = None
        self.to_back = to_back
        self.to_back_mv = memoryview(to_back)
        self.to_front = to_front
        self.to_back_start = 0
        self.to_back_end = 0
        self.front_readiness = Readiness(READABLE | HUP | ERROR)
        self.back_readiness = Readiness(NONE)
        self.back: SocketHandler | None = None
        self.back_socket: socket.socket | None = None
        self.back_token = -1
        self.back_status = _NOT_CONNECTED
        self.backend: Backend | None = None
        self.connect_attempts = 0
        self.connect_started = 0.0
        self._retry_timer: TimerEntry | None = None
        timers = server.timers
        self.front_timeout = Timeout(timers, config.front_timeout, self._front_timed_out)
        self.back_timeout = Timeout(timers, config.back_timeout, self._back_timed_out)
        self.connect_timeout = Timeout(timers, config.connect_timeout, self._connect_timed_out)
        self.front_timeout.set()
        self.closed = False

    # -- readiness shared by the states -------------------------------------------------------
    @property
    def back_connected(self) -> bool:
        return self.back_status == _CONNECTED

    def update_front_back_readiness(self, token: int, events: int) -> None:
        if token == self.frontend_token:
            self.front_readiness.event |= events
        elif token == self.back_token:
            self.back_readiness.event |= events

    def readiness_interest(self, token: int) -> int:
        if token == self.frontend_token:
            return self.front_readiness.interest
        if token == self.back_token:
            return self.back_readiness.interest
        return NONE

    def log_debug(self, msg: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s " + msg, self.print_session(), *args)

    # -- state chain --------------------------------------------------------------------------
    def first_state(self) -> SessionState | None:
        if not self.routed:
            # SNI passthrough: the cluster (hence its PROXY mode) is not known yet. Keep an
            # expected header in the buffer; ``route`` drops it unless the cluster relays it.
            if self.config.expect_proxy:
                return ExpectProxyProtocol(self, keep_header=True)
            return self.next_state(None)
        cluster = self.proxy.clusters.get(self.cluster_id)
        mode = cluster.proxy_protocol if cluster is not None else None
        if self.config.expect_proxy:
            if mode == "RELAY_HEADER":
                return RelayProxyProtocol(self)
            return ExpectProxyProtocol(self)
        if mode == "RELAY_HEADER":
            return RelayProxyProtocol(self)
        return self.next_state(None)

    def next_state(self, current: SessionState | None) -> SessionState | None:
        """The state after ``current`` (None: the session just started without a header)."""
        if not self.routed:
            header = self.proxy_header
            return SniPeek(self, header.length if header is not None else 0)
        cluster = self.proxy.clusters.get(self.cluster_id)
        mode = cluster.proxy_protocol if cluster is not None else None
        if not isinstance(current, SendProxyProtocol):
            if self.back_status == _NOT_CONNECTED and not self.connect_backend():
                return None
            if mode == "SEND_HEADER":
                state: SessionState = SendProxyProtocol(self, self._proxy_header_v2())
                if self.back_connected:
                    state.backend_connected()  # type: ignore[attr-defined]
                return state
        pipe = Pipe(
            self.front,
            self.frontend_token,
            self.front_readiness,
            self.back,
            self.back_token,
            self.back_readiness,
            self.to_back,
            self.to_front,
            to_back_start=self.to_back_start,
            to_back_end=self.to_back_end,
            back_connected=self.back_connected,
            front_timeout=self.front_timeout,
            back_timeout=self.back_timeout,
        )
        self.to_back_mv.release()
        return pipe

    def route(self, cluster_id: str) -> None:
        """SNI passthrough chose ``cluster_id``: the buffered bytes (hello, and the PROXY
        header if the cluster relays it) are the first ones the backend will get."""
        self.cluster_id = cluster_id
        self.routed = True
        header = self.proxy_header
        if header is not None:
            cluster = self.proxy.clusters.get(cluster_id)
            relay = cluster is not None and cluster.proxy_protocol == "RELAY_HEADER"
            self.to_back_start = 0 if relay else header.length

    def _proxy_header_v2(self) -> bytes:
        header = self.proxy_header
        if header is not None and header.command == "LOCAL":
            return build_v2(None, None, command="LOCAL")
        source = self.client_address
        destination = header.destination if header is not None else None
        if destination is None:
            destination = _sockaddr(self.front_socket.getsockname())
        return build_v2(_sockaddr(source), _sockaddr(destination))

    # -- backend connection -------------------------------------------------------------------
    def connect_backend(self) -> bool:
        """Start a connect to a backend of the cluster; False if none can be tried."""
        upstreams = self.proxy.upstreams
        server = self.server
        while self.connect_attempts < CONNECT_ATTEMPTS:
            self.connect_attempts += 1
            try:
                backend = upstreams.backends.backend_from_cluster_id(self.cluster_id)
            except NoAvailableBackend:
                upstreams.no_backend(self.cluster_id)
                return False
            try:
                sock = upstreams.open_socket(self.cluster_id, backend)
            except OSError as e:
                if e.errno not in NO_RESOURCES:
                    raise
                # Out of descriptors: not the backend's fault. Keep the client, stop
                # accepting for a while, and try again when descriptors may be free.
                # The retry is scheduled before the accept pause so that, at the same
                # instant, this client gets the next free descriptor before a new client.
                self.connect_attempts -= 1
                self._retry_timer = server.timers.schedule(EMFILE_RETRY, self._retry_connect)
                server.pause_accepts(EMFILE_RETRY)
                return True
            if sock is None:
                continue
            self.backend = backend
            self.back_socket = sock
            self.back = SocketHandler(sock)
            self.back_token = sock.fileno()
            self.back_status = _CONNECTING
            self.back_readiness.event = NONE
            self.back_readiness.interest |= WRITABLE | HUP | ERROR
            self.connect_started = server.now
            server.register(self.back_token, self, self.back_readiness.interest)
            self.connect_timeout.set()
            state = self.state
            if isinstance(state, Pipe | SendProxyProtocol):
                state.set_back(self.back, self.back_token)
            return True
        server.metrics.incr(m.NO_BACKEND)
        if not upstreams.can_open_any(self.cluster_id):
            # every attempt failed and nothing is left to try: the same outcome as finding
            # no backend on the first pick (more dead backends than CONNECT_ATTEMPTS)
            upstreams.no_backend(self.cluster_id)
        return False

    def _retry_connect(self) -> None:
        self._retry_timer = None
        if not self.alive or self.back_status != _NOT_CONNECTED:
            return
        if not self.connect_backend():
            self.server.kill_session(self)

    def _check_connect(self) -> bool:
        """The connect attempt ended; False when the session must close."""
        sock = self.back_socket
        assert sock is not None and self.backend is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.log_debug("connect to %s failed: %s", self.backend.address, os.strerror(err))
            return self._connect_failed()
        self.connect_timeout.cancel()
        self.back_status = _CONNECTED
        self.proxy.upstreams.connected(
            self.cluster_id, self.backend, self.server.now - self.connect_started
        )
        self.back_timeout.set()
        state = self.state
        if isinstance(state, Pipe | SendProxyProtocol):
            state.backend_connected()
        return True

    def _connect_failed(self) -> bool:
        backend = self.backend
        self._close_back()
        if backend is not None:
            self.proxy.upstreams.backend_failed(self.cluster_id, backend)
        return self.connect_backend()

    def _close_back(self) -> None:
        self.connect_timeout.cancel()
        self.back_timeout.cancel()
        sock = self.back_socket
        if sock is not None:
            self.server.unregister(self.back_token)
            sock.close()
            self.back_socket = None
            self.back = None
            self.back_token = -1
            if self.backend is not None:
                self.proxy.upstreams.connection_closed(self.cluster_id, self.backend)
        self.back_status = _NOT_CONNECTED
        self.back_readiness.reset()

    # -- reactor side -------------------------------------------------------------------------
    def update_readiness(self, token: int, events: int) -> None:
        if events & (HUP | ERROR):
            events |= READABLE
        if token == self.frontend_token:
            self.front_readiness.event |= events
        elif token == self.back_token:
            self.back_readiness.event |= events

    def ready(self) -> bool:
        if (
            self.back_status == _CONNECTING
            and self.back_readiness.event & (WRITABLE | HUP | ERROR)
            and not self._check_connect()
        ):
            return True
        return super().ready()

    def tokens(self) -> list[int]:
        if self.back_token >= 0:
            return [self.frontend_token, self.back_token]
        return [self.frontend_token]

    def interest(self, token: int) -> int:
        return self.readiness_interest(token)

    def _front_timed_out(self) -> None:
        if self.alive:
            self.server.metrics.incr(m.FRONT_TIMEOUT)
            if isinstance(self.state, SniPeek):
                self.server.metrics.incr(SNI_ERRORS)  # no complete ClientHello in time
            self.server.kill_session(self)

    def _back_timed_out(self) -> None:
        if self.alive:
            self.server.metrics.incr(m.BACK_TIMEOUT)
            self.server.kill_session(self)

    def _connect_timed_out(self) -> None:
        if not self.alive or self.back_status != _CONNECTING:
            return
        self.server.metrics.incr(m.CONNECT_TIMEOUT)
        if not self._connect_failed():
            self.server.kill_session(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.front_timeout.close()
        self.back_timeout.close()
        self.connect_timeout.close()
        self.server.timers.cancel(self._retry_timer)
        self._close_back()
        super().close()
        pool = self.server.pool
        self.to_back_mv.release()
        pool.checkin(self.to_back)
        pool.checkin(self.to_front)
        self.server.metrics.gauge(m.BUFFER_IN_USE, pool.in_use)

    def print_session(self) -> str:
        backend = self.backend.address if self.backend is not None else "-"
        state = self.state.print_state() if self.state is not None else "closed"
        return f"TcpSession({self.peer_address} -> {self.cluster_id}/{backend}, {state})"


class TcpProxy:
    """Session factory and configuration of every TCP listener of a worker."""

    def __init__(self, server: Server, upstreams: Upstreams | None = None) -> None:
        self.server = server
        self.upstreams = upstreams if upstreams is not None else Upstreams(server)
        #: the backends of every cluster (shared with the HTTP proxy through ``upstreams``)
        self.backends = self.upstreams.backends
        self.clusters: dict[str, TcpCluster] = {}
        #: listener address -> cluster id of its frontend without host name (one cluster per
        #: TCP listener, as in Sōzu; with SNI routes, the default route)
        self.frontends: dict[str, str] = {}
        #: listener address -> its host name routes (SNI passthrough); only addresses with
        #: at least one frontend with a host name are here
        self.sni_routes: dict[str, SniRoutes] = {}
        #: listener address -> first state of a custom protocol (``Worker.set_listener_handler``)
        self.handlers: dict[str, StateFactory] = {}

    # -- factory ------------------------------------------------------------------------------
    def create_session(
        self, server: Server, sock: socket.socket, peer: Any, listener: Listener
    ) -> ProxySession | None:
        handler = self.handlers.get(listener.address)
        if handler is not None:
            custom = StateMachineSession(server, sock, peer, listener, handler)
            if custom.state is not None:
                server.metrics.gauge_add(f"protocol.{custom.state.NAME}", 1)
            return custom
        routed = listener.address not in self.sni_routes
        if routed:
            cluster_id = self.frontends.get(listener.address)
            if cluster_id is None:
                return None
        else:
            cluster_id = ""  # SniPeek picks it from the ClientHello
        pool = server.pool
        to_back = pool.checkout()
        to_front = pool.checkout() if to_back is not None else None
        if to_back is None or to_front is None:
            pool.checkin(to_back)
            server.metrics.incr(m.BUFFER_EXHAUSTED)
            return None
        server.metrics.gauge(m.BUFFER_IN_USE, pool.in_use)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        session = TcpSession(
            self, server, sock, peer, listener, cluster_id, to_back, to_front, routed
        )
        state = session.first_state()
        if state is None:
            session.alive = False
            session.close()
            return None
        session.state = state
        server.metrics.gauge_add(f"protocol.{state.NAME}", 1)
        return session

    # -- configuration ------------------------------------------------------------------------
    def add_cluster(self, cluster_id: str, proxy_protocol: str | None) -> None:
        self.clusters[cluster_id] = TcpCluster(cluster_id, proxy_protocol)

    def remove_cluster(self, cluster_id: str) -> None:
        self.clusters.pop(cluster_id, None)
        for address in [a for a, c in self.frontends.items() if c == cluster_id]:
            del self.frontends[address]
        for address, routes in list(self.sni_routes.items()):
            routes.remove_cluster(cluster_id)
            if not routes:
                del self.sni_routes[address]

    def add_frontend(self, address: str, cluster_id: str, hostname: str | None = None) -> None:
        """Serve ``address`` with ``cluster_id``; with a ``hostname``, only connections whose
        TLS server name matches it (SNI passthrough). Applies to new connections."""
        if hostname:
            self.sni_routes.setdefault(address, SniRoutes()).add(hostname, cluster_id)
        else:
            self.frontends[address] = cluster_id

    def remove_frontend(self, address: str, hostname: str | None = None) -> None:
        """Undo ``add_frontend``; sessions already routed keep their cluster."""
        if not hostname:
            self.frontends.pop(address, None)
            return
        routes = self.sni_routes.get(address)
        if routes is not None:
            routes.remove(hostname)
            if not routes:  # back to a plain listener: no peeking
                del self.sni_routes[address]

    def route_sni(self, address: str, server_name: str | None) -> str | None:
        """The cluster for a ClientHello's ``server_name`` on ``address``: exact name, then
        one-label wildcard, then the address's frontend without host name."""
        routes = self.sni_routes.get(address)
        if routes is not None and server_name is not None:
            cluster_id = routes.match(server_name)
            if cluster_id is not None:
                return cluster_id
        return self.frontends.get(address)
