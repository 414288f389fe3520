"""Upstreams: the backends of every cluster, shared by the TCP and HTTP proxies of a worker.

``BackendMap`` (``backends.py``) only decides; this module acts: it opens the non-blocking
backend sockets and pushes the channel events the decisions call for:

* ``BACKEND_DOWN`` when a connect failure spends a backend's retry budget,
  ``BACKEND_UP`` when a backend that was down accepts a connection again;
* ``NO_AVAILABLE_BACKENDS`` the first time a client of a cluster finds no backend to try,
  and again only after a connection to that cluster succeeded or a backend was added
  (a flood of clients must not flood the channel);
* ``REMOVED_BACKEND_HAS_NO_CONNECTIONS`` when a removed backend has no connection left,
  at once or when its last connection closes (``connection_closed``).
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from pysozu.reactor import metrics as m
from pysozu.reactor.channel import event_message
from pysozu.reactor.server import Server

from .backends import Backend, BackendMap
from .tls_backend import BackendTls

#: errno values that mean "this process is out of resources", not "the backend failed"
NO_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def backend_event(kind: str, cluster_id: str, backend: Backend) -> dict[str, Any]:
    return event_message(
        kind, cluster_id=cluster_id, backend_id=backend.backend_id, address=backend.address
    )


class Upstreams:
    """Backends of every cluster, their events, and backend socket creation."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.backends = BackendMap()
        self._no_backend_reported: set[str] = set()
        #: clusters reached over TLS (``ADD_CLUSTER``'s ``backend_tls``), read by the HTTP
        #: proxy at connect time and by the health checks; empty in a plain-only worker
        self.backend_tls: dict[str, BackendTls] = {}
        #: clusters whose backends speak HTTP/2 with prior knowledge (``ADD_CLUSTER``'s
        #: ``http2``)
        self.backend_h2: set[str] = set()

    # -- events -------------------------------------------------------------------------------
    def push(self, event: dict[str, Any]) -> None:
        self.server.push_event(event)

    def no_backend(self, cluster_id: str) -> None:
        """No backend can be tried for a client: report it once until one serves again."""
        if cluster_id not in self._no_backend_reported:
            self._no_backend_reported.add(cluster_id)
            self.push(event_message("NO_AVAILABLE_BACKENDS", cluster_id=cluster_id))

    def can_open_any(self, cluster_id: str) -> bool:
        """Whether some backend of the cluster could take a connection now."""
        backends = self.backends.get(cluster_id)
        return backends is not None and bool(backends.available(False) or backends.available(True))

    def connected(self, cluster_id: str, backend: Backend, elapsed: float) -> None:
        """A connect succeeded after ``elapsed`` seconds."""
        metrics = self.server.metrics
        metrics.record_time(m.BACKEND_CONNECT_TIME, elapsed, cluster_id, backend.backend_id)
        if backend.success(elapsed):
            self.push(backend_event("BACKEND_UP", cluster_id, backend))
            metrics.incr(m.BACKEND_UP)
        self._no_backend_reported.discard(cluster_id)

    def backend_failed(self, cluster_id: str, backend: Backend) -> None:
        self.server.metrics.incr(m.BACKEND_CONNECT_ERROR)
        if backend.failure():
            self.server.metrics.incr(m.BACKEND_DOWN)
            self.push(backend_event("BACKEND_DOWN", cluster_id, backend))

    def connection_closed(self, cluster_id: str, backend: Backend) -> None:
        """A backend socket opened by ``open_socket`` was closed."""
        self.server.metrics.gauge_add(m.BACKEND_CONNECTIONS, -1)
        if backend.dec_connections():
            self.push(backend_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", cluster_id, backend))

    # -- sockets ------------------------------------------------------------------------------
    def open_socket(self, cluster_id: str, backend: Backend) -> socket.socket | None:
        """Start a non-blocking connect to ``backend``.

        Returns the socket (the connect completes or fails later: first WRITABLE, then
        ``SO_ERROR``), or None when the connect failed at once (counted against the
        backend). Raises OSError with an errno in ``NO_RESOURCES`` when the process is out
        of descriptors: that is not the backend's fault, and the caller should retry later.
        """
        family = socket.AF_INET6 if ":" in backend.sockaddr[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(backend.sockaddr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            self.backend_failed(cluster_id, backend)
            return None
        backend.inc_connections()
        self.server.metrics.gauge_add(m.BACKEND_CONNECTIONS, 1)
        return sock

    # -- configuration ------------------------------------------------------------------------
    def set_load_balancing(self, cluster_id: str, algorithm: str, metric: str | None) -> None:
        self.backends.set_load_balancing(cluster_id, algorithm, metric)

    def remove_cluster(self, cluster_id: str) -> None:
        for backend in self.backends.remove_cluster(cluster_id):
            if backend.drained:
                self.push(backend_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", cluster_id, backend))
        self._no_backend_reported.discard(cluster_id)
        self.backend_tls.pop(cluster_id, None)
        self.backend_h2.discard(cluster_id)

    def add_backend(self, cluster_id: str, backend: Backend) -> None:
        self.backends.add_backend(cluster_id, backend)
        self._no_backend_reported.discard(cluster_id)

    def remove_backend(self, cluster_id: str, address: str, backend_id: str | None) -> None:
        for backend in self.backends.remove_backends(cluster_id, address, backend_id):
            if backend.drained:
                self.push(backend_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", cluster_id, backend))
