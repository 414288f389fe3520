"""Backends of every cluster: runtime state, selection, circuit breaking and removal.

Theory of operation
-------------------
The rules come from Sōzu's ``lib/src/backends.rs`` (``Backend``, ``BackendList``,
``BackendMap``), with the event rules of ``lib/src/tcp.rs`` (``fail_backend_connection`` and
the connected branch of ``back_readable``/``back_writable``; ``lib/src/protocol/mux/mod.rs``
does the same for HTTP). Nothing here opens a socket or pushes an event.

:class:`Backend`
    One upstream server of one cluster: configuration (``backend_id``, ``address``,
    ``sticky_id``, ``weight``, ``backup``) plus runtime state (``status``, ``retry_policy``
    — an :class:`~pysozu.protocols.retry.ExponentialBackoffPolicy` with 6 tries —,
    ``active_connections``, ``active_requests``, ``failures``, ``connection_time`` — a
    :class:`~pysozu.protocols.load_balancing.PeakEWMA` —, ``healthy``).
    ``can_open()`` is true when the backend is healthy, ``NORMAL`` and its retry policy says
    OKAY. Sessions hold a direct reference to the Backend they connected to, so removing it
    from its cluster never disturbs them.

:class:`BackendList` (one per cluster)
    ``next_available()`` picks among the non-backup backends that ``can_open()``; if there is
    none, among the backup backends that ``can_open()``; the cluster's algorithm
    (:mod:`~pysozu.protocols.load_balancing`, ``Random`` until one is set, as in Sōzu) chooses
    within that set. **Fail-open**: if neither set has a candidate, any backend (backup or
    not) that is ``NORMAL`` and whose retry policy says OKAY is used even though its health
    check failed; with no active health checks (``healthy`` always true) that set is empty
    too, so fail-open only matters once health checks mark backends unhealthy.
    ``find_sticky(sticky_id)`` returns the *first* backend with that sticky id, and only if
    it ``can_open()``.

:class:`BackendMap` (cluster id → BackendList)
    ``backend_from_cluster_id`` raises :class:`NoAvailableBackend` for an unknown cluster, an
    empty one, or one with no usable backend; ``backend_from_sticky_session`` tries the sticky
    backend and falls back to ``backend_from_cluster_id``.

Who emits the events
--------------------
The caller (the TCP/HTTP session, or the worker for configuration requests) pushes the
channel events; this module only tells it when:

* ``BACKEND_DOWN``: :meth:`Backend.failure` returned True — the failure that spent the retry
  budget (``is_down()`` was false before ``fail()`` and is true after). Sōzu emits it from the
  session when a started connection fails (connect error or connect timeout). A *synchronous*
  connect error only counts the failure in Sōzu (``Backend::try_connect``), without the event.
* ``BACKEND_UP``: :meth:`Backend.success` returned True — the first successful connect of a
  backend that was down. Call it when the non-blocking connect completes (first writable).
* ``REMOVED_BACKEND_HAS_NO_CONNECTIONS``: a removed backend has no connection left. Sōzu emits
  it when the last reference to the removed ``Backend`` is dropped. Here removal marks the
  backend ``CLOSING``, or ``CLOSED`` straight away when it has no connection:
  :meth:`BackendMap.remove_backend` returns the Backend and its :attr:`Backend.drained` is
  already true (emit at once); otherwise :meth:`Backend.dec_connections` returns True when
  the last connection closes (emit then).
* ``NO_AVAILABLE_BACKENDS`` / ``CLUSTER_RECOVERED``: :meth:`BackendMap.update_availability`
  returns the transition, latched per cluster. Sōzu re-evaluates after adding or removing a
  backend and after each ``backend_from_cluster_id`` (success or failure).

Connection accounting is the caller's too: Sōzu's ``backend_from_cluster_id`` opens the socket
and counts the connection; here the caller connects, then calls :meth:`Backend.inc_connections`
(or :meth:`Backend.failure` if the connect call itself raised), and
:meth:`Backend.dec_connections` when the backend socket is closed.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import time
from collections.abc import Callable, Iterator

from .load_balancing import (
    DEFAULT_WEIGHT,
    LoadBalancingAlgorithm,
    LoadBalancingAlgorithms,
    LoadMetric,
    PeakEWMA,
    Random,
    make_algorithm,
)
from .retry import DEFAULT_MAX_TRIES, ExponentialBackoffPolicy, RetryAction

__all__ = [
    "Address",
    "AvailabilityChange",
    "Backend",
    "BackendList",
    "BackendMap",
    "BackendStatus",
    "ClusterAvailability",
    "NoAvailableBackend",
    "format_address",
    "parse_address",
]

#: A backend address: ``"host:port"`` (``"[::1]:80"`` for IPv6) or a ``(host, port)`` tuple.
Address = str | tuple[str, int]


class BackendStatus(enum.StrEnum):
    """Lifecycle of a backend (Sōzu ``BackendStatus``)."""

    NORMAL = "NORMAL"
    """Configured: takes new connections."""
    CLOSING = "CLOSING"
    """Removed from its cluster, still has connections: takes no new ones."""
    CLOSED = "CLOSED"
    """Removed and drained."""


class ClusterAvailability(enum.StrEnum):
    """Latched availability of a cluster (Sōzu ``ClusterAvailability``)."""

    AVAILABLE = "AVAILABLE"
    ALL_DOWN = "ALL_DOWN"


class AvailabilityChange(enum.StrEnum):
    """A cluster availability transition, named after the event to push."""

    NO_AVAILABLE_BACKENDS = "NO_AVAILABLE_BACKENDS"
    CLUSTER_RECOVERED = "CLUSTER_RECOVERED"


class NoAvailableBackend(Exception):
    """No backend of the cluster can take a connection (unknown, empty or all unusable)."""

    def __init__(self, cluster_id: str) -> None:
        super().__init__(f"no available backend for cluster {cluster_id}")
        self.cluster_id: str = cluster_id


def _normalise_host(host: str) -> str:
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"invalid backend host: {host!r}")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        # not an IP literal: a host name, kept as written (lower-cased)
        if ":" in host or "[" in host or "]" in host:
            raise ValueError(f"invalid backend host: {host!r}") from None
        return host.lower()


def parse_address(address: Address) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` / ``(host, port)`` → normalised ``(host, port)``.

    IP literals are normalised (``"[::0001]:80"`` → ``("::1", 80)``); raises ``ValueError``.
    """
    if isinstance(address, tuple):
        if len(address) < 2:
            raise ValueError(f"invalid backend address: {address!r}")
        host, port = address[0], address[1]
        if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
            raise ValueError(f"invalid backend address: {address!r}")
    else:
        text = address.strip()
        if text.startswith("["):
            end = text.find("]")
            if end < 0 or text[end + 1 : end + 2] != ":":
                raise ValueError(f"invalid backend address: {address!r}")
            host, port_text = text[1:end], text[end + 2 :]
            if ":" not in host:
                raise ValueError(f"invalid backend address: {address!r}")
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or ":" in host:
                raise ValueError(f"invalid backend address: {address!r}")
        if not port_text.isascii() or not port_text.isdigit():
            raise ValueError(f"invalid backend address: {address!r}")
        port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid backend port: {port!r}")
    return _normalise_host(host), port


def format_address(host: str, port: int) -> str:
    """``(host, port)`` → ``"host:port"``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Backend:
    """One upstream server of a cluster, with its runtime state (Sōzu ``Backend``)."""

    __slots__ = (
        "active_connections",
        "active_requests",
        "address",
        "backend_id",
        "backup",
        "connection_time",
        "failures",
        "healthy",
        "retry_policy",
        "sockaddr",
        "status",
        "sticky_id",
        "weight",
    )

    def __init__(
        self,
        backend_id: str,
        address: Address,
        sticky_id: str | None = None,
        weight: int | None = None,
        backup: bool | None = False,
        *,
        retry_policy: ExponentialBackoffPolicy | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.backend_id: str = backend_id
        self.sockaddr: tuple[str, int] = parse_address(address)
        self.address: str = format_address(*self.sockaddr)
        self.sticky_id: str = sticky_id if sticky_id is not None else backend_id
        self.weight: int = weight if weight is not None else DEFAULT_WEIGHT
        self.backup: bool = bool(backup)
        self.status: BackendStatus = BackendStatus.NORMAL
        self.retry_policy: ExponentialBackoffPolicy = (
            retry_policy
            if retry_policy is not None
            else ExponentialBackoffPolicy(max_tries, rng=rng, clock=clock)
        )
        self.active_connections: int = 0
        self.active_requests: int = 0
        self.failures: int = 0
        self.connection_time: PeakEWMA = PeakEWMA(clock=clock)
        self.healthy: bool = True

    # -- availability --------------------------------------------------------------------

    def can_open(self) -> bool:
        """Whether a new connection may be opened now: healthy, NORMAL, retry policy OKAY."""
        return (
            self.healthy
            and self.status is BackendStatus.NORMAL
            and self.retry_policy.can_try() is RetryAction.OKAY
        )

    def is_available(self) -> bool:
        """Healthy, NORMAL and not down (a running back-off window still counts as available).

        This is Sōzu's predicate for the ``available`` gauges and the cluster availability;
        it is looser than :meth:`can_open`.
        """
        return (
            self.healthy and self.status is BackendStatus.NORMAL and not self.retry_policy.is_down()
        )

    def is_down(self) -> bool:
        """Whether the retry policy has spent its failure budget."""
        return self.retry_policy.is_down()

    @property
    def drained(self) -> bool:
        """Removed from its cluster and without connections (status CLOSED)."""
        return self.status is BackendStatus.CLOSED

    # -- connection accounting -----------------------------------------------------------

    def inc_connections(self) -> bool:
        """Count a new connection; refused (False, count unchanged) unless NORMAL."""
        if self.status is BackendStatus.NORMAL:
            self.active_connections += 1
            return True
        return False

    def dec_connections(self) -> bool:
        """Count a closed connection (never below 0).

        Returns True when a CLOSING backend just lost its last connection (it becomes CLOSED):
        the caller then pushes ``REMOVED_BACKEND_HAS_NO_CONNECTIONS``. A CLOSED backend is
        left untouched.
        """
        status = self.status
        if status is BackendStatus.CLOSED:
            return False
        if self.active_connections > 0:
            self.active_connections -= 1
        if status is BackendStatus.CLOSING and self.active_connections == 0:
            self.status = BackendStatus.CLOSED
            return True
        return False

    def set_closing(self) -> None:
        """Mark the backend removed: it takes no new connection."""
        self.status = BackendStatus.CLOSING

    def retire(self) -> bool:
        """Mark the backend removed: CLOSED at once when it has no connection, else CLOSING.

        Returns :attr:`drained`.
        """
        if self.status is BackendStatus.NORMAL:
            self.status = (
                BackendStatus.CLOSED if self.active_connections == 0 else BackendStatus.CLOSING
            )
        return self.drained

    # -- connect outcome -----------------------------------------------------------------

    def set_connection_time(self, seconds: float) -> None:
        """Feed the connect time (seconds) to the peak EWMA."""
        self.connection_time.observe(seconds)

    def peak_ewma_connection(self) -> float:
        """Connect-time cost used by the CONNECTION_TIME metric (decays the estimate first)."""
        return self.connection_time.get(self.active_connections)

    def failure(self) -> bool:
        """Record a failed connect. Returns True if the backend just went down (BACKEND_DOWN)."""
        self.failures += 1
        policy = self.retry_policy
        already_down = policy.is_down()
        policy.fail()
        return not already_down and policy.is_down()

    def success(self, connection_time: float | None = None) -> bool:
        """Record a successful connect (and its duration in seconds, if given).

        Resets the failure count and the retry policy. Returns True if the backend was down
        (BACKEND_UP).
        """
        was_down = self.retry_policy.is_down()
        if connection_time is not None:
            self.connection_time.observe(connection_time)
        self.failures = 0
        self.retry_policy.succeed()
        return was_down

    # -- configuration -------------------------------------------------------------------

    def update_from(self, other: Backend) -> None:
        """Take the configuration of ``other`` (sticky id, weight, backup), keep runtime state."""
        self.sticky_id = other.sticky_id
        self.weight = other.weight
        self.backup = other.backup

    def __repr__(self) -> str:
        return (
            f"Backend({self.backend_id!r}, {self.address!r}, status={self.status.value}, "
            f"connections={self.active_connections}, failures={self.failures})"
        )


class BackendList:
    """The backends of one cluster and its load-balancing algorithm (Sōzu ``BackendList``)."""

    __slots__ = ("algorithm", "availability", "backends", "fail_open", "rng")

    def __init__(
        self,
        algorithm: LoadBalancingAlgorithm | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rng: random.Random | None = rng
        self.backends: list[Backend] = []
        # Sōzu's BackendList::new() starts with Random until the cluster sets its policy
        self.algorithm: LoadBalancingAlgorithm = algorithm if algorithm is not None else Random(rng)
        #: True while picks go through fail-open (every backend unhealthy)
        self.fail_open: bool = False
        self.availability: ClusterAvailability = ClusterAvailability.AVAILABLE

    def __len__(self) -> int:
        return len(self.backends)

    def __iter__(self) -> Iterator[Backend]:
        return iter(self.backends)

    def set_load_balancing(
        self,
        algorithm: str | int | LoadBalancingAlgorithms,
        metric: str | int | LoadMetric | None = None,
    ) -> None:
        """Replace the algorithm (a fresh one: a round-robin cursor restarts at 0)."""
        self.algorithm = make_algorithm(algorithm, metric, self.rng)

    def add(self, backend: Backend) -> Backend:
        """Add a backend, or update the one with the same address and id in place.

        An update keeps the runtime state (retry policy, counters) and takes the new sticky id,
        weight and backup flag. Returns the backend now in the list.
        """
        for existing in self.backends:
            if existing.sockaddr == backend.sockaddr and existing.backend_id == backend.backend_id:
                existing.update_from(backend)
                return existing
        self.backends.append(backend)
        return backend

    def remove(self, address: Address, backend_id: str | None = None) -> list[Backend]:
        """Take every backend at ``address`` (only ``backend_id``'s if given) out of the list.

        Each removed backend is retired (:meth:`Backend.retire`): CLOSED if it has no
        connection, CLOSING otherwise. Returns them in list order.
        """
        sockaddr = parse_address(address)
        kept: list[Backend] = []
        removed: list[Backend] = []
        for backend in self.backends:
            if backend.sockaddr == sockaddr and (
                backend_id is None or backend.backend_id == backend_id
            ):
                removed.append(backend)
            else:
                kept.append(backend)
        if removed:
            self.backends = kept
            for backend in removed:
                backend.retire()
        return removed

    def has_backend(self, address: Address) -> bool:
        """Whether some backend of the list has this address."""
        sockaddr = parse_address(address)
        return any(backend.sockaddr == sockaddr for backend in self.backends)

    def find_backend(self, address: Address) -> Backend | None:
        """The first backend with this address."""
        sockaddr = parse_address(address)
        for backend in self.backends:
            if backend.sockaddr == sockaddr:
                return backend
        return None

    def find_sticky(self, sticky_id: str) -> Backend | None:
        """The first backend with this sticky id, if it can open a connection now."""
        for backend in self.backends:
            if backend.sticky_id == sticky_id:
                return backend if backend.can_open() else None
        return None

    def available(self, backup: bool) -> list[Backend]:
        """The backends with this backup flag that can open a connection now."""
        return [b for b in self.backends if b.backup is backup and b.can_open()]

    def next_available(self) -> Backend | None:
        """Pick a backend: primaries that can open, else backups that can, else fail-open."""
        candidates = self.available(False)
        if not candidates:
            candidates = self.available(True)
        if candidates:
            self.fail_open = False
            return self.algorithm.next(candidates)
        candidates = [
            b
            for b in self.backends
            if b.status is BackendStatus.NORMAL and b.retry_policy.can_try() is RetryAction.OKAY
        ]
        if not candidates:
            return None
        self.fail_open = True
        return self.algorithm.next(candidates)

    def evaluate_availability(self) -> tuple[int, int]:
        """``(available, total)`` with :meth:`Backend.is_available`."""
        total = len(self.backends)
        available = sum(1 for b in self.backends if b.is_available())
        return available, total

    def __repr__(self) -> str:
        return f"BackendList({self.backends!r}, algorithm={self.algorithm!r})"


class BackendMap:
    """Cluster id → :class:`BackendList` (Sōzu ``BackendMap``)."""

    __slots__ = ("clusters", "rng")

    def __init__(self, rng: random.Random | None = None) -> None:
        #: generator handed to the algorithms of the lists this map creates
        self.rng: random.Random | None = rng
        self.clusters: dict[str, BackendList] = {}

    def __contains__(self, cluster_id: object) -> bool:
        return cluster_id in self.clusters

    def get(self, cluster_id: str) -> BackendList | None:
        """The cluster's list, if any."""
        return self.clusters.get(cluster_id)

    def get_or_create(self, cluster_id: str) -> BackendList:
        """The cluster's list, created (with the default algorithm) if missing."""
        backends = self.clusters.get(cluster_id)
        if backends is None:
            backends = self.clusters[cluster_id] = BackendList(rng=self.rng)
        return backends

    def add_backend(self, cluster_id: str, backend: Backend) -> Backend:
        """Add (or update in place) a backend; returns the backend now in the cluster."""
        return self.get_or_create(cluster_id).add(backend)

    def remove_backends(
        self, cluster_id: str, address: Address, backend_id: str | None = None
    ) -> list[Backend]:
        """Remove every backend at ``address`` (only ``backend_id``'s if given), retired.

        Check :attr:`Backend.drained` on each: if true, push
        ``REMOVED_BACKEND_HAS_NO_CONNECTIONS`` now; else when ``dec_connections()`` says so.
        """
        backends = self.clusters.get(cluster_id)
        if backends is None:
            return []
        return backends.remove(address, backend_id)

    def remove_backend(
        self, cluster_id: str, address: Address, backend_id: str | None = None
    ) -> Backend | None:
        """Like :meth:`remove_backends`, returning the first removed backend (or None).

        Pass ``backend_id`` (RemoveBackend carries it) so that only that backend goes when
        several share an address; without it every backend at the address is removed, as in
        Sōzu's worker, and only the first is returned.
        """
        removed = self.remove_backends(cluster_id, address, backend_id)
        return removed[0] if removed else None

    def remove_cluster(self, cluster_id: str) -> list[Backend]:
        """Drop the cluster's list; its backends are retired and returned."""
        backends = self.clusters.pop(cluster_id, None)
        if backends is None:
            return []
        for backend in backends.backends:
            backend.retire()
        return backends.backends

    def set_load_balancing(
        self,
        cluster_id: str,
        algorithm: str | int | LoadBalancingAlgorithms,
        metric: str | int | LoadMetric | None = None,
    ) -> None:
        """Set the cluster's algorithm, creating the list if the backends are not there yet."""
        self.get_or_create(cluster_id).set_load_balancing(algorithm, metric)

    def has_backend(self, cluster_id: str, backend: Backend) -> bool:
        """Whether the cluster has a backend at ``backend``'s address (twice per proxied
        request: compares the stored, already normalised addresses, nothing is parsed)."""
        backends = self.clusters.get(cluster_id)
        if backends is None:
            return False
        sockaddr = backend.sockaddr
        return any(other is backend or other.sockaddr == sockaddr for other in backends.backends)

    def find_backend(self, cluster_id: str, address: Address) -> Backend | None:
        """The first backend of the cluster at ``address``."""
        backends = self.clusters.get(cluster_id)
        return None if backends is None else backends.find_backend(address)

    def backend_from_cluster_id(self, cluster_id: str) -> Backend:
        """Pick the backend for a new connection; raises :class:`NoAvailableBackend`."""
        backends = self.clusters.get(cluster_id)
        if backends is None or not backends.backends:
            raise NoAvailableBackend(cluster_id)
        backend = backends.next_available()
        if backend is None:
            raise NoAvailableBackend(cluster_id)
        return backend

    def backend_from_sticky_session(self, cluster_id: str, sticky_id: str) -> Backend:
        """The backend with this sticky id if it can open, else :meth:`backend_from_cluster_id`.

        When the result's ``sticky_id`` differs from the request's, the HTTP layer sends a new
        sticky cookie.
        """
        backends = self.clusters.get(cluster_id)
        if backends is not None:
            backend = backends.find_sticky(sticky_id)
            if backend is not None:
                return backend
        return self.backend_from_cluster_id(cluster_id)

    def available_backends(self, cluster_id: str) -> int:
        """How many backends of the cluster are available (:meth:`Backend.is_available`)."""
        backends = self.clusters.get(cluster_id)
        return 0 if backends is None else backends.evaluate_availability()[0]

    def update_availability(self, cluster_id: str) -> AvailabilityChange | None:
        """Re-evaluate the cluster and return its transition, if it just changed.

        A non-empty cluster with no available backend is ALL_DOWN; an empty one never is.
        Returns ``NO_AVAILABLE_BACKENDS`` on AVAILABLE → ALL_DOWN, ``CLUSTER_RECOVERED`` on the
        way back, None otherwise (and for an unknown cluster).
        """
        backends = self.clusters.get(cluster_id)
        if backends is None:
            return None
        available, total = backends.evaluate_availability()
        state = (
            ClusterAvailability.ALL_DOWN
            if total > 0 and available == 0
            else ClusterAvailability.AVAILABLE
        )
        previous = backends.availability
        backends.availability = state
        if previous is state:
            return None
        if state is ClusterAvailability.ALL_DOWN:
            return AvailabilityChange.NO_AVAILABLE_BACKENDS
        return AvailabilityChange.CLUSTER_RECOVERED

    def __repr__(self) -> str:
        return f"BackendMap({self.clusters!r})"
