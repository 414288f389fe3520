"""ConfigState: the proxy's configuration as plain data, changed only by requests.

Theory of operation
-------------------
Every configuration request a proxy accepts is first applied to a :class:`ConfigState` (as
Sōzu's ``command/src/state.rs`` does).  The state holds no sockets, so it is the single place
where a request is judged valid *against what already exists* (a backend needs its cluster, a
listener address is taken once, …):

* :meth:`ConfigState.check` raises :class:`StateError` and changes nothing;
  :meth:`ConfigState.apply` checks, then mutates, and says whether anything changed.  A
  worker checks a request here before touching a live listener, so a refused request leaves
  both the state and the sockets untouched.
* :meth:`ConfigState.generate_requests` rebuilds the state from empty (state files, a new
  worker); :meth:`ConfigState.diff` gives the requests that turn one state into another
  (configuration reload).  Both emit requests in an order in which every step passes
  :meth:`check`: removals before additions, listeners before clusters, clusters before their
  frontends and backends, activation last.
* :meth:`ConfigState.hash` and :meth:`ConfigState.cluster_hashes` digest a canonical JSON form
  (sorted keys, sorted collections), so two states with the same content have the same hash
  whatever order their requests came in; the main process compares workers with them.

State files are Sōzu's format: the JSON requests of :meth:`generate_requests` separated by
``"\\n\\0"``.

HTTP, as in Sōzu's ``state.rs``: an HTTP frontend is a routing *rule*, keyed by its address,
host name, path rule, method and position, so two clusters may share a host name with
different paths, and the same rule twice is refused; a frontend does not need its listener
to exist (the listener may come later, or from another process).  A cluster's health check is
part of its configuration (Sōzu's ``Cluster.health_check``): SET_HEALTH_CHECK and
REMOVE_HEALTH_CHECK edit it, ADD_CLUSTER (an upsert) replaces it with the request's, and a
diff re-sends ADD_CLUSTER.  The global ``max_connections_per_ip`` (0: unlimited) is kept here
too, so saved states and reloads carry it.

Decisions where Sōzu is silent or looser: ADD_BACKEND and ADD_TCP_FRONTEND need an existing
cluster, and so does an HTTP frontend that names one (a frontend without ``cluster_id`` is a
deny or redirect route); ADD_BACKEND is an upsert on ``(backend_id, address)`` (as in Sōzu)
but one backend id or one address is used once per cluster, so removal by id+address is never
ambiguous; REMOVE_CLUSTER also drops the cluster's backends and frontends; removing a frontend
names its cluster too (a removal aimed at the wrong cluster is refused); REMOVE_HEALTH_CHECK
on a cluster without one is refused (Sōzu answers OK), like every other removal of nothing;
one TCP frontend per ``(address, hostname)`` (pysozu's own ``hostname``, for SNI
passthrough: on one address, frontends with distinct host names and at most one without, the
default route); a listener address is used by one listener whatever its protocol.  The
position is part of an HTTP frontend's key (Sōzu's key leaves it out), since the same rule in
PRE and in the TREE are two different routes.  An UPDATE_HTTPS_LISTENER is judged with the
listener it patches: one that would leave ``disable_http11`` on without ``h2`` among its ALPN
protocols (nothing left to serve) is refused.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from pysozu.command import (
    H2_LISTENER_FIELDS,
    CommandError,
    Request,
    check_disable_http11,
    make_request,
    normalise_hostname,
    parse_request,
)
from pysozu.protocols.certificates import CertificateError, parse_certificate

__all__ = ["STATE_SEPARATOR", "ConfigState", "StateError"]

#: Separator between the JSON requests of a state file (Sōzu's ``write_requests_to_file``).
STATE_SEPARATOR: Final = "\n\0"

#: Request types that never change the state (answered by the worker, or by the main process).
_PASSIVE: Final = frozenset(
    {
        "STATUS",
        "SOFT_STOP",
        "HARD_STOP",
        "SAVE_STATE",
        "LOAD_STATE",
        "QUERY_CLUSTER_BY_ID",
        "QUERY_CLUSTERS_HASHES",
        "QUERY_CLUSTERS_BY_DOMAIN",
        "QUERY_CERTIFICATES_FROM_WORKERS",
        "QUERY_HEALTH_CHECKS",
        "QUERY_MAX_CONNECTIONS_PER_IP",
        "QUERY_METRICS",
        "LIST_LISTENERS",
        # Runtime settings of the worker's logger and metrics, not configuration (Sōzu keeps
        # them out of its state too).
        "CONFIGURE_METRICS",
        "LOGGING",
    }
)

#: Listener protocol (``ListenerType``) -> request type that adds such a listener.
_LISTENER_ADD: Final = {
    "HTTP": "ADD_HTTP_LISTENER",
    "HTTPS": "ADD_HTTPS_LISTENER",
    "TCP": "ADD_TCP_LISTENER",
}
#: Listener protocol -> request type that patches such a listener in place.
_LISTENER_UPDATE: Final = {
    "HTTP": "UPDATE_HTTP_LISTENER",
    "HTTPS": "UPDATE_HTTPS_LISTENER",
    "TCP": "UPDATE_TCP_LISTENER",
}
#: Listener protocol -> fields its UPDATE request can change (``address`` and ``active`` can't).
_LISTENER_UPDATABLE: Final = {
    "HTTP": (
        "public_address",
        "expect_proxy",
        "sticky_name",
        "front_timeout",
        "back_timeout",
        "connect_timeout",
        "request_timeout",
        "answers",
        "sozu_id_header",
        "elide_x_real_ip",
        "send_x_real_ip",
        "max_body_size",
        "h2c",
        *H2_LISTENER_FIELDS,
    ),
    "TCP": ("public_address", "expect_proxy", "front_timeout", "back_timeout", "connect_timeout"),
}
_LISTENER_UPDATABLE["HTTPS"] = (
    *_LISTENER_UPDATABLE["HTTP"],
    "versions",
    "cipher_list",
    "cipher_suites",
    "signature_algorithms",
    "groups_list",
    "certificate",
    "certificate_chain",
    "key",
    "send_tls13_tickets",
    "alpn_protocols",
    "strict_sni_binding",
    "disable_http11",
    "hsts",
)
#: Fields an UPDATE cannot unset (None means "keep"): a listener that drops one is re-added.
_UNSETTABLE: Final = ("public_address", "certificate", "key", "hsts")
#: Frontend kinds with a routing rule: request suffix -> the state's table attribute.
_RULE_FRONTENDS: Final = {"HTTP": "_http_frontends", "HTTPS": "_https_frontends"}

#: An HTTP frontend's identity: address, host name, path kind, path value, method ("" for
#: any) and position.  Every part is a string, so keys sort and hash canonically.
_HttpFrontendKey = tuple[str, str, str, str, str, str]


class StateError(ValueError):
    """A request does not fit the current state, or a state file is unreadable."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _backend_key(backend: dict[str, Any]) -> tuple[str, str]:
    return (backend["backend_id"], backend["address"])


def _tcp_frontend_key(front: dict[str, Any]) -> tuple[str, str]:
    """A TCP frontend's key: its address and host name ("" for the address's default)."""
    return (front["address"], front.get("hostname") or "")


def _http_frontend_key(front: dict[str, Any]) -> _HttpFrontendKey:
    path = front["path"]
    return (
        front["address"],
        front["hostname"],
        path["kind"],
        path["value"],
        front["method"] or "",
        front["position"],
    )


def _describe_http_frontend(front: dict[str, Any]) -> str:
    """A frontend rule in words, for error messages."""
    path = front["path"]
    text = f"{front['hostname']} {path['kind']} {path['value']!r} on {front['address']}"
    if front["method"]:
        text += f", method {front['method']}"
    if front["position"] != "TREE":
        text += f", position {front['position']}"
    return text


def _tcp_frontend_text(front: dict[str, Any]) -> str:
    """A TCP frontend in messages: its address, and ``for HOST`` when it has a host name."""
    address: str = front["address"]
    hostname = front.get("hostname")
    return address + (f" for {hostname}" if hostname else "")


def _owner(cluster_id: str | None) -> str:
    return "no cluster" if cluster_id is None else f"cluster {cluster_id!r}"


class ConfigState:
    """Clusters, backends, listeners and frontends, keyed as Sōzu keys them.

    Stored values are the normalised ``fields`` of the requests that created them:
    clusters by id (ADD_CLUSTER fields, ``health_check`` included), backends per cluster
    (ADD_BACKEND fields, sorted by ``(backend_id, address)``), listeners per protocol by
    address (ADD_*_LISTENER fields, including ``active``), TCP frontends by ``(address,
    hostname or "")`` (``cluster_id``, ``address``, ``hostname``, ``tags``), HTTP frontends
    by rule (ADD_HTTP_FRONTEND fields), and the global ``max_connections_per_ip``.
    """

    def __init__(self) -> None:
        self._clusters: dict[str, dict[str, Any]] = {}
        self._backends: dict[str, list[dict[str, Any]]] = {}
        self._listeners: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in _LISTENER_ADD}
        self._tcp_frontends: dict[tuple[str, str], dict[str, Any]] = {}
        self._http_frontends: dict[_HttpFrontendKey, dict[str, Any]] = {}
        self._https_frontends: dict[_HttpFrontendKey, dict[str, Any]] = {}
        #: HTTPS listener address -> fingerprint -> ADD_CERTIFICATE fields
        self._certificates: dict[str, dict[str, dict[str, Any]]] = {}
        self._max_connections_per_ip = 0
        self._handlers: dict[str, tuple[Callable[[Request], None], Callable[[Request], bool]]] = {
            "ADD_CLUSTER": (self._check_nothing, self._add_cluster),
            "REMOVE_CLUSTER": (self._check_remove_cluster, self._remove_cluster),
            "ADD_BACKEND": (self._check_add_backend, self._add_backend),
            "REMOVE_BACKEND": (self._check_remove_backend, self._remove_backend),
            "ADD_TCP_LISTENER": (self._check_add_listener, self._add_listener),
            "UPDATE_TCP_LISTENER": (self._check_update_listener, self._update_listener),
            "REMOVE_LISTENER": (self._check_listener_exists, self._remove_listener),
            "ACTIVATE_LISTENER": (self._check_listener_exists, self._activate_listener),
            "DEACTIVATE_LISTENER": (self._check_listener_exists, self._deactivate_listener),
            "ADD_TCP_FRONTEND": (self._check_add_tcp_frontend, self._add_tcp_frontend),
            "REMOVE_TCP_FRONTEND": (self._check_remove_tcp_frontend, self._remove_tcp_frontend),
            "ADD_HTTP_LISTENER": (self._check_add_listener, self._add_listener),
            "UPDATE_HTTP_LISTENER": (self._check_update_listener, self._update_listener),
            "ADD_HTTP_FRONTEND": (self._check_add_http_frontend, self._add_http_frontend),
            "REMOVE_HTTP_FRONTEND": (
                self._check_remove_http_frontend,
                self._remove_http_frontend,
            ),
            "ADD_HTTPS_LISTENER": (self._check_add_listener, self._add_listener),
            "UPDATE_HTTPS_LISTENER": (self._check_update_listener, self._update_listener),
            "ADD_HTTPS_FRONTEND": (self._check_add_http_frontend, self._add_http_frontend),
            "REMOVE_HTTPS_FRONTEND": (
                self._check_remove_http_frontend,
                self._remove_http_frontend,
            ),
            "ADD_CERTIFICATE": (self._check_add_certificate, self._add_certificate),
            "REPLACE_CERTIFICATE": (self._check_replace_certificate, self._replace_certificate),
            "REMOVE_CERTIFICATE": (self._check_remove_certificate, self._remove_certificate),
            "SET_HEALTH_CHECK": (self._check_set_health_check, self._set_health_check),
            "REMOVE_HEALTH_CHECK": (self._check_remove_health_check, self._remove_health_check),
            "SET_MAX_CONNECTIONS_PER_IP": (
                self._check_nothing,
                self._set_max_connections_per_ip,
            ),
        }

    @classmethod
    def from_requests(cls, requests: Iterable[Request]) -> ConfigState:
        """A state built by applying ``requests`` in order (raises on the first bad one)."""
        state = cls()
        for request in requests:
            state.apply(request)
        return state

    def copy(self) -> ConfigState:
        """An independent deep copy (e.g. to try a batch of requests before committing)."""
        other = ConfigState()
        other._clusters = copy.deepcopy(self._clusters)
        other._backends = copy.deepcopy(self._backends)
        other._listeners = copy.deepcopy(self._listeners)
        other._tcp_frontends = copy.deepcopy(self._tcp_frontends)
        other._http_frontends = copy.deepcopy(self._http_frontends)
        other._https_frontends = copy.deepcopy(self._https_frontends)
        other._certificates = copy.deepcopy(self._certificates)
        other._max_connections_per_ip = self._max_connections_per_ip
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigState):
            return NotImplemented
        return self._content() == other._content()

    __hash__ = None  # type: ignore[assignment]  # mutable: use .hash() for a digest

    def __repr__(self) -> str:
        listeners = sum(len(by_address) for by_address in self._listeners.values())
        backends = sum(len(v) for v in self._backends.values())
        return (
            f"<ConfigState clusters={len(self._clusters)} backends={backends} "
            f"listeners={listeners} tcp_frontends={len(self._tcp_frontends)} "
            f"http_frontends={len(self._http_frontends)} "
            f"https_frontends={len(self._https_frontends)} "
            f"certificates={sum(len(c) for c in self._certificates.values())}>"
        )

    # ----------------------------------------------------------------------------------------
    # check / apply
    # ----------------------------------------------------------------------------------------

    def check(self, request: Request) -> None:
        """Raise :class:`StateError` if ``request`` cannot be applied; never changes anything."""
        if request.type in _PASSIVE:
            return
        handlers = self._handlers.get(request.type)
        if handlers is None:
            raise StateError(f"request type {request.type!r} is not handled by ConfigState")
        handlers[0](request)

    def apply(self, request: Request) -> bool:
        """Check then apply ``request``; return True if the state changed."""
        self.check(request)
        if request.type in _PASSIVE:
            return False
        return self._handlers[request.type][1](request)

    @staticmethod
    def _check_nothing(request: Request) -> None:
        """Requests that fit any state: ADD_CLUSTER is an upsert, as in Sōzu (re-adding
        replaces the configuration), and the global per-IP limit always has a value."""

    def _need_cluster(self, cluster_id: str, what: str) -> None:
        if cluster_id not in self._clusters:
            raise StateError(f"cluster {cluster_id!r} not found ({what})")

    def _add_cluster(self, request: Request) -> bool:
        config = copy.deepcopy(request.fields)
        if self._clusters.get(config["cluster_id"]) == config:
            return False
        self._clusters[config["cluster_id"]] = config
        return True

    def _check_remove_cluster(self, request: Request) -> None:
        self._need_cluster(request["cluster_id"], "REMOVE_CLUSTER")

    def _remove_cluster(self, request: Request) -> bool:
        cluster_id = request["cluster_id"]
        del self._clusters[cluster_id]
        self._backends.pop(cluster_id, None)
        for tcp_key in [k for k, f in self._tcp_frontends.items() if f["cluster_id"] == cluster_id]:
            del self._tcp_frontends[tcp_key]
        for table in (self._http_frontends, self._https_frontends):
            for key in [k for k, f in table.items() if f["cluster_id"] == cluster_id]:
                del table[key]
        return True

    def _check_add_backend(self, request: Request) -> None:
        cluster_id, backend_id, address = (
            request["cluster_id"],
            request["backend_id"],
            request["address"],
        )
        self._need_cluster(cluster_id, f"ADD_BACKEND {backend_id!r}")
        for backend in self._backends.get(cluster_id, ()):
            if backend["backend_id"] == backend_id and backend["address"] != address:
                raise StateError(
                    f"backend {backend_id!r} already exists in cluster {cluster_id!r} "
                    f"with address {backend['address']}"
                )
            if backend["address"] == address and backend["backend_id"] != backend_id:
                raise StateError(
                    f"address {address} is already used by backend {backend['backend_id']!r} "
                    f"in cluster {cluster_id!r}"
                )

    def _add_backend(self, request: Request) -> bool:
        backend = copy.deepcopy(request.fields)
        backends = self._backends.setdefault(backend["cluster_id"], [])
        key = _backend_key(backend)
        for index, existing in enumerate(backends):
            if _backend_key(existing) == key:
                if existing == backend:
                    return False
                backends[index] = backend  # upsert: new sticky id, weight or backup flag
                return True
        backends.append(backend)
        backends.sort(key=_backend_key)
        return True

    def _check_remove_backend(self, request: Request) -> None:
        cluster_id, key = request["cluster_id"], _backend_key(request.fields)
        if not any(_backend_key(b) == key for b in self._backends.get(cluster_id, ())):
            raise StateError(
                f"backend {key[0]!r} with address {key[1]} not found in cluster {cluster_id!r}"
            )

    def _remove_backend(self, request: Request) -> bool:
        cluster_id, key = request["cluster_id"], _backend_key(request.fields)
        remaining = [b for b in self._backends[cluster_id] if _backend_key(b) != key]
        if remaining:
            self._backends[cluster_id] = remaining
        else:
            del self._backends[cluster_id]
        return True

    def _listener_owner(self, address: str) -> str | None:
        for proxy, by_address in self._listeners.items():
            if address in by_address:
                return proxy
        return None

    def _check_add_listener(self, request: Request) -> None:
        address = request["address"]
        owner = self._listener_owner(address)
        if owner is not None:
            raise StateError(f"a {owner} listener already exists on {address}")

    def _add_listener(self, request: Request) -> bool:
        proxy = request.type.removeprefix("ADD_").removesuffix("_LISTENER")
        self._listeners[proxy][request["address"]] = copy.deepcopy(request.fields)
        return True

    def _find_listener(self, proxy: str, address: str) -> dict[str, Any]:
        listener = self._listeners.get(proxy, {}).get(address)
        if listener is None:
            raise StateError(f"{proxy} listener {address} not found")
        return listener

    def _check_update_listener(self, request: Request) -> None:
        proxy = request.type.removeprefix("UPDATE_").removesuffix("_LISTENER")
        listener = self._find_listener(proxy, request["address"])
        if proxy == "HTTPS":
            # the listener as the patch leaves it: HTTP/1.1 off needs h2 offered
            merged = {**listener, **{k: v for k, v in request.fields.items() if v is not None}}
            try:
                check_disable_http11(merged)
            except CommandError as exc:
                raise StateError(f"HTTPS listener {request['address']}: {exc}") from None

    def _update_listener(self, request: Request) -> bool:
        proxy = request.type.removeprefix("UPDATE_").removesuffix("_LISTENER")
        listener = self._find_listener(proxy, request["address"])
        changed = False
        for name, value in request.fields.items():
            if name == "answers" and value is not None:
                # Merged per status code; an empty template keeps the current one (Sōzu).
                value = {**listener["answers"], **{k: v for k, v in value.items() if v}}
            if name != "address" and value is not None and listener[name] != value:
                listener[name] = copy.deepcopy(value)
                changed = True
        return changed

    def _check_listener_exists(self, request: Request) -> None:
        self._find_listener(request["proxy"], request["address"])

    def _remove_listener(self, request: Request) -> bool:
        del self._listeners[request["proxy"]][request["address"]]
        self._certificates.pop(request["address"], None)  # they belonged to the listener
        return True

    def _set_active(self, request: Request, active: bool) -> bool:
        listener = self._find_listener(request["proxy"], request["address"])
        if listener["active"] == active:
            return False
        listener["active"] = active
        return True

    def _activate_listener(self, request: Request) -> bool:
        return self._set_active(request, True)

    def _deactivate_listener(self, request: Request) -> bool:
        return self._set_active(request, False)

    def _check_add_tcp_frontend(self, request: Request) -> None:
        cluster_id, where = request["cluster_id"], _tcp_frontend_text(request.fields)
        self._need_cluster(cluster_id, f"ADD_TCP_FRONTEND {where}")
        existing = self._tcp_frontends.get(_tcp_frontend_key(request.fields))
        if existing is not None:
            raise StateError(
                f"a TCP frontend already exists on {where} (cluster {existing['cluster_id']!r})"
            )

    def _add_tcp_frontend(self, request: Request) -> bool:
        self._tcp_frontends[_tcp_frontend_key(request.fields)] = copy.deepcopy(request.fields)
        return True

    def _check_remove_tcp_frontend(self, request: Request) -> None:
        cluster_id = request["cluster_id"]
        existing = self._tcp_frontends.get(_tcp_frontend_key(request.fields))
        if existing is None or existing["cluster_id"] != cluster_id:
            raise StateError(
                f"TCP frontend {_tcp_frontend_text(request.fields)} not found for cluster "
                f"{cluster_id!r}"
            )

    def _remove_tcp_frontend(self, request: Request) -> bool:
        del self._tcp_frontends[_tcp_frontend_key(request.fields)]
        return True

    def _rule_table(self, request: Request) -> tuple[str, dict[_HttpFrontendKey, dict[str, Any]]]:
        """The frontend kind (HTTP or HTTPS) of an ADD/REMOVE_HTTP(S)_FRONTEND and its table."""
        kind = request.type.split("_", 1)[1].removesuffix("_FRONTEND")
        table: dict[_HttpFrontendKey, dict[str, Any]] = getattr(self, _RULE_FRONTENDS[kind])
        return kind, table

    def _check_add_http_frontend(self, request: Request) -> None:
        kind, table = self._rule_table(request)
        cluster_id = request["cluster_id"]
        if cluster_id is not None:
            self._need_cluster(
                cluster_id, f"ADD_{kind}_FRONTEND {_describe_http_frontend(request.fields)}"
            )
        existing = table.get(_http_frontend_key(request.fields))
        if existing is not None:
            raise StateError(
                f"{kind} frontend {_describe_http_frontend(request.fields)} already exists "
                f"({_owner(existing['cluster_id'])})"
            )

    def _add_http_frontend(self, request: Request) -> bool:
        _, table = self._rule_table(request)
        table[_http_frontend_key(request.fields)] = copy.deepcopy(request.fields)
        return True

    def _check_remove_http_frontend(self, request: Request) -> None:
        kind, table = self._rule_table(request)
        existing = table.get(_http_frontend_key(request.fields))
        if existing is None or existing["cluster_id"] != request["cluster_id"]:
            raise StateError(
                f"{kind} frontend {_describe_http_frontend(request.fields)} not found for "
                f"{_owner(request['cluster_id'])}"
            )

    def _remove_http_frontend(self, request: Request) -> bool:
        _, table = self._rule_table(request)
        del table[_http_frontend_key(request.fields)]
        return True

    # -- certificates -------------------------------------------------------------------------
    def _need_https_listener(self, address: str, what: str) -> None:
        if address not in self._listeners["HTTPS"]:
            raise StateError(f"HTTPS listener {address} not found ({what})")

    @staticmethod
    def _fingerprint(certificate: dict[str, Any], what: str) -> str:
        try:
            return _checked_fingerprint(
                certificate["certificate"], certificate["key"],
                tuple(certificate["certificate_chain"]), tuple(certificate["names"]),
            )
        except CertificateError as exc:
            raise StateError(f"{what}: {exc}") from None

    def _check_add_certificate(self, request: Request) -> None:
        address = request["address"]
        self._need_https_listener(address, "ADD_CERTIFICATE")
        fingerprint = self._fingerprint(request["certificate"], "ADD_CERTIFICATE")
        if fingerprint in self._certificates.get(address, {}):
            raise StateError(f"certificate {fingerprint} already exists on {address}")

    def _add_certificate(self, request: Request) -> bool:
        fingerprint = self._fingerprint(request["certificate"], "ADD_CERTIFICATE")
        by_fingerprint = self._certificates.setdefault(request["address"], {})
        by_fingerprint[fingerprint] = copy.deepcopy(request.fields)
        return True

    def _check_replace_certificate(self, request: Request) -> None:
        address, old = request["address"], request["old_fingerprint"]
        self._need_https_listener(address, "REPLACE_CERTIFICATE")
        known = self._certificates.get(address, {})
        if old not in known:
            raise StateError(f"no certificate with fingerprint {old} on {address}")
        new = self._fingerprint(request["new_certificate"], "REPLACE_CERTIFICATE")
        if new != old and new in known:
            raise StateError(f"the new certificate {new} already exists on {address}")

    def _replace_certificate(self, request: Request) -> bool:
        address = request["address"]
        new = self._fingerprint(request["new_certificate"], "REPLACE_CERTIFICATE")
        by_fingerprint = self._certificates[address]
        del by_fingerprint[request["old_fingerprint"]]
        by_fingerprint[new] = {
            "address": address,
            "certificate": copy.deepcopy(request["new_certificate"]),
            "expired_at": request["new_expired_at"],
        }
        return True

    def _check_remove_certificate(self, request: Request) -> None:
        address, fingerprint = request["address"], request["fingerprint"]
        if fingerprint not in self._certificates.get(address, {}):
            raise StateError(f"no certificate with fingerprint {fingerprint} on {address}")

    def _remove_certificate(self, request: Request) -> bool:
        by_fingerprint = self._certificates[request["address"]]
        del by_fingerprint[request["fingerprint"]]
        if not by_fingerprint:
            del self._certificates[request["address"]]
        return True

    def _check_set_health_check(self, request: Request) -> None:
        self._need_cluster(request["cluster_id"], "SET_HEALTH_CHECK")

    def _set_health_check(self, request: Request) -> bool:
        cluster = self._clusters[request["cluster_id"]]
        if cluster["health_check"] == request["config"]:
            return False
        cluster["health_check"] = copy.deepcopy(request["config"])
        return True

    def _check_remove_health_check(self, request: Request) -> None:
        cluster_id = request["cluster_id"]
        self._need_cluster(cluster_id, "REMOVE_HEALTH_CHECK")
        if self._clusters[cluster_id]["health_check"] is None:
            raise StateError(f"cluster {cluster_id!r} has no health check")

    def _remove_health_check(self, request: Request) -> bool:
        self._clusters[request["cluster_id"]]["health_check"] = None
        return True

    def _set_max_connections_per_ip(self, request: Request) -> bool:
        if self._max_connections_per_ip == request["limit"]:
            return False
        self._max_connections_per_ip = request["limit"]
        return True

    # ----------------------------------------------------------------------------------------
    # Rebuilding and diffing
    # ----------------------------------------------------------------------------------------

    def generate_requests(self, id_prefix: str = "SAVE") -> list[Request]:
        """Requests that rebuild this state from empty, with ids ``SAVE-0``, ``SAVE-1``, …

        Order: listeners (inactive), the global per-IP limit (when set), clusters, frontends
        (TCP, then HTTP), backends, then ACTIVATE_LISTENER for active listeners, so a worker
        binds sockets only once routing is in place.
        """
        listeners = [
            (proxy, address, by_address[address])
            for proxy, by_address in self._listeners.items()
            for address in sorted(by_address)
        ]
        items: list[tuple[str, dict[str, Any]]] = [
            (_LISTENER_ADD[proxy], {**config, "active": False}) for proxy, _, config in listeners
        ]
        if self._max_connections_per_ip:
            items.append(("SET_MAX_CONNECTIONS_PER_IP", {"limit": self._max_connections_per_ip}))
        items.extend(("ADD_CLUSTER", self._clusters[c]) for c in sorted(self._clusters))
        items.extend(("ADD_TCP_FRONTEND", f) for _, f in sorted(self._tcp_frontends.items()))
        items.extend(
            ("ADD_CERTIFICATE", self._certificates[address][fingerprint])
            for address in sorted(self._certificates)
            for fingerprint in sorted(self._certificates[address])
        )
        items.extend(("ADD_HTTP_FRONTEND", f) for _, f in sorted(self._http_frontends.items()))
        items.extend(("ADD_HTTPS_FRONTEND", f) for _, f in sorted(self._https_frontends.items()))
        for cluster_id in sorted(self._backends):
            items.extend(("ADD_BACKEND", backend) for backend in self._backends[cluster_id])
        items.extend(
            ("ACTIVATE_LISTENER", {"address": address, "proxy": proxy})
            for proxy, address, config in listeners
            if config["active"]
        )
        return _number(items, id_prefix)

    def diff(self, other: ConfigState, id_prefix: str = "DIFF") -> list[Request]:
        """Requests that turn ``self`` into ``other``, each valid when applied in order.

        Removals come first (frontends, backends, clusters, then listeners, deactivated
        before removal), then additions (listeners, the per-IP limit, clusters, frontends,
        backends) and activations.  A changed listener becomes UPDATE_*_LISTENER unless a
        change the update cannot express happened (``public_address`` unset, an answer
        template dropped): then it is removed and re-added.  A changed cluster (its health
        check included) is re-sent as ADD_CLUSTER (an upsert); a changed backend with the
        same id and address is re-sent as ADD_BACKEND; a changed frontend, and anything
        else, is remove + add.
        """
        removals: list[tuple[str, dict[str, Any]]] = []
        additions: list[tuple[str, dict[str, Any]]] = []
        activations: list[tuple[str, dict[str, Any]]] = []

        for tcp_key, front in sorted(self._tcp_frontends.items()):
            if other._tcp_frontends.get(tcp_key) != front:
                removals.append(("REMOVE_TCP_FRONTEND", front))
        for key, http_front in sorted(self._http_frontends.items()):
            if other._http_frontends.get(key) != http_front:
                removals.append(("REMOVE_HTTP_FRONTEND", http_front))
        for key, http_front in sorted(self._https_frontends.items()):
            if other._https_frontends.get(key) != http_front:
                removals.append(("REMOVE_HTTPS_FRONTEND", http_front))
        # certificates of listeners that stay; those of a removed listener go with it
        replaced_listeners = {
            address
            for address, old in self._listeners["HTTPS"].items()
            if (new := other._listeners["HTTPS"].get(address)) is None
            or _update_cannot_express(old, new)
        }
        for address, mine_certs in sorted(self._certificates.items()):
            if address in replaced_listeners:
                continue
            theirs_certs = other._certificates.get(address, {})
            removals.extend(
                ("REMOVE_CERTIFICATE", {"address": address, "fingerprint": fingerprint})
                for fingerprint in sorted(mine_certs)
                if theirs_certs.get(fingerprint) != mine_certs[fingerprint]
            )
        for cluster_id, backends in sorted(self._backends.items()):
            theirs = {_backend_key(b) for b in other._backends.get(cluster_id, ())}
            removals.extend(
                ("REMOVE_BACKEND", _pick(b, "cluster_id", "backend_id", "address"))
                for b in backends
                if _backend_key(b) not in theirs
            )
        removals.extend(
            ("REMOVE_CLUSTER", {"cluster_id": cluster_id})
            for cluster_id in sorted(self._clusters)
            if cluster_id not in other._clusters
        )

        for proxy, mine in self._listeners.items():
            theirs_by_address = other._listeners.get(proxy, {})
            for address in sorted(mine.keys() | theirs_by_address.keys()):
                old, new = mine.get(address), theirs_by_address.get(address)
                ref = {"address": address, "proxy": proxy}
                replace = old is not None and new is not None and _update_cannot_express(old, new)
                if old is not None and (new is None or replace):
                    if old["active"]:
                        removals.append(("DEACTIVATE_LISTENER", ref))
                    removals.append(("REMOVE_LISTENER", ref))
                    old = None
                if new is None:
                    continue
                if old is None:
                    additions.append((_LISTENER_ADD[proxy], {**new, "active": False}))
                    if new["active"]:
                        activations.append(("ACTIVATE_LISTENER", ref))
                    continue
                patch = {
                    name: new[name] for name in _LISTENER_UPDATABLE[proxy] if new[name] != old[name]
                }
                if "answers" in patch:  # only what changed: the update merges per code
                    patch["answers"] = {
                        code: template
                        for code, template in new["answers"].items()
                        if old["answers"].get(code) != template
                    }
                if patch:
                    additions.append((_LISTENER_UPDATE[proxy], {"address": address, **patch}))
                if old["active"] and not new["active"]:
                    removals.append(("DEACTIVATE_LISTENER", ref))
                elif new["active"] and not old["active"]:
                    activations.append(("ACTIVATE_LISTENER", ref))

        if other._max_connections_per_ip != self._max_connections_per_ip:
            additions.append(
                ("SET_MAX_CONNECTIONS_PER_IP", {"limit": other._max_connections_per_ip})
            )
        for cluster_id, config in sorted(other._clusters.items()):
            if self._clusters.get(cluster_id) != config:
                additions.append(("ADD_CLUSTER", config))
        for tcp_key, front in sorted(other._tcp_frontends.items()):
            if self._tcp_frontends.get(tcp_key) != front:
                additions.append(("ADD_TCP_FRONTEND", front))
        for address, theirs_certs in sorted(other._certificates.items()):
            mine_certs = (
                {} if address in replaced_listeners else self._certificates.get(address, {})
            )
            additions.extend(
                ("ADD_CERTIFICATE", theirs_certs[fingerprint])
                for fingerprint in sorted(theirs_certs)
                if mine_certs.get(fingerprint) != theirs_certs[fingerprint]
            )
        for key, http_front in sorted(other._http_frontends.items()):
            if self._http_frontends.get(key) != http_front:
                additions.append(("ADD_HTTP_FRONTEND", http_front))
        for key, http_front in sorted(other._https_frontends.items()):
            if self._https_frontends.get(key) != http_front:
                additions.append(("ADD_HTTPS_FRONTEND", http_front))
        for cluster_id, backends in sorted(other._backends.items()):
            mine_by_key = {_backend_key(b): b for b in self._backends.get(cluster_id, ())}
            additions.extend(
                ("ADD_BACKEND", b) for b in backends if mine_by_key.get(_backend_key(b)) != b
            )

        return _number(removals + additions + activations, id_prefix)

    # ----------------------------------------------------------------------------------------
    # Files
    # ----------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write :meth:`generate_requests` to ``path`` (atomically); return the request count."""
        requests = self.generate_requests()
        data = "".join(
            json.dumps(r.to_dict(), ensure_ascii=False) + STATE_SEPARATOR for r in requests
        )
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return len(requests)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> list[Request]:
        """Read and validate the requests of a state file (entries are numbered from 1)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"cannot read state file {os.fspath(path)!r}: {exc}") from None
        requests: list[Request] = []
        # JSON text never holds a raw NUL, so NUL alone delimits entries; the "\n" before it
        # and any trailing separators are whitespace.
        entries = [chunk for chunk in text.split("\0") if chunk.strip()]
        for number, chunk in enumerate(entries, start=1):
            where = f"state file {os.fspath(path)!r}, entry {number}"
            try:
                obj = json.loads(chunk)
            except json.JSONDecodeError as exc:
                raise StateError(f"{where}: invalid JSON: {exc}") from None
            try:
                requests.append(parse_request(obj))
            except CommandError as exc:
                raise StateError(f"{where}: {exc}") from None
        return requests

    # ----------------------------------------------------------------------------------------
    # Digests and queries
    # ----------------------------------------------------------------------------------------

    def _content(self) -> dict[str, Any]:
        return {
            "clusters": self._clusters,
            "backends": {k: sorted(v, key=_backend_key) for k, v in self._backends.items() if v},
            "listeners": self._listeners,
            "tcp_frontends": [f for _, f in sorted(self._tcp_frontends.items())],
            "http_frontends": [f for _, f in sorted(self._http_frontends.items())],
            "https_frontends": [f for _, f in sorted(self._https_frontends.items())],
            "certificates": self._certificates,
            "max_connections_per_ip": self._max_connections_per_ip,
        }

    def hash(self) -> str:
        """SHA-256 hex digest of the whole state in canonical JSON."""
        return hashlib.sha256(_canonical(self._content())).hexdigest()

    def cluster_hashes(self) -> dict[str, int]:
        """Per cluster, a 64-bit digest of its configuration (health check included),
        frontends and backends."""
        return {
            cluster_id: int.from_bytes(
                hashlib.sha256(_canonical(self._cluster_info(cluster_id))).digest()[:8], "big"
            )
            for cluster_id in sorted(self._clusters)
        }

    def _cluster_info(self, cluster_id: str) -> dict[str, Any]:
        return {
            "configuration": self._clusters[cluster_id],
            "http_frontends": [
                f for _, f in sorted(self._http_frontends.items()) if f["cluster_id"] == cluster_id
            ],
            "https_frontends": [
                f for _, f in sorted(self._https_frontends.items()) if f["cluster_id"] == cluster_id
            ],
            "tcp_frontends": [
                f for _, f in sorted(self._tcp_frontends.items()) if f["cluster_id"] == cluster_id
            ],
            "backends": sorted(self._backends.get(cluster_id, ()), key=_backend_key),
        }

    def query_cluster(self, cluster_id: str) -> dict[str, Any]:
        """Sōzu's ``ClusterInformation``: configuration, HTTP and TCP frontends, backends."""
        if cluster_id not in self._clusters:
            raise StateError(f"cluster {cluster_id!r} not found")
        return copy.deepcopy(self._cluster_info(cluster_id))

    def query_clusters_by_domain(
        self, hostname: str, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Sōzu's QueryClustersByDomain: the :meth:`query_cluster` answers, by cluster id, of
        the clusters with an HTTP frontend on exactly ``hostname`` and, when ``path`` is
        given, whose path rule's value is exactly ``path`` (Sōzu's ``domain_check``: the rule
        is compared, not matched against a request path; a wildcard or regex frontend is
        found by its own spelling).  Routes without a cluster are not clusters' and are
        skipped."""
        try:
            host = normalise_hostname(hostname)
        except CommandError as exc:
            raise StateError(f"hostname: {exc}") from None
        cluster_ids = {
            f["cluster_id"]
            for f in (*self._http_frontends.values(), *self._https_frontends.values())
            if f["cluster_id"] is not None
            and f["hostname"] == host
            and (path is None or f["path"]["value"] == path)
        }
        return [self.query_cluster(cluster_id) for cluster_id in sorted(cluster_ids)]

    def health_checks(self, cluster_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Sōzu's ``HealthChecksList``: cluster id -> health check, for the clusters that have
        one (only ``cluster_id``'s when given)."""
        return {
            cid: copy.deepcopy(config["health_check"])
            for cid, config in sorted(self._clusters.items())
            if config["health_check"] is not None and cluster_id in (None, cid)
        }

    @property
    def max_connections_per_ip(self) -> int:
        """The global per-(cluster, source IP) connection limit; 0 is unlimited."""
        return self._max_connections_per_ip

    def list_listeners(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Sōzu's ``ListenersList``: ``{"http_listeners": {address: config},
        "tcp_listeners": {…}}``."""
        return {
            f"{proxy.lower()}_listeners": copy.deepcopy(dict(sorted(by_address.items())))
            for proxy, by_address in self._listeners.items()
        }

    @property
    def clusters(self) -> dict[str, dict[str, Any]]:
        """Cluster id -> ADD_CLUSTER fields (a copy)."""
        return copy.deepcopy(self._clusters)

    def backends(self, cluster_id: str) -> list[dict[str, Any]]:
        """ADD_BACKEND fields of a cluster's backends (a copy; empty if none)."""
        return copy.deepcopy(self._backends.get(cluster_id, []))

    @property
    def tcp_listeners(self) -> dict[str, dict[str, Any]]:
        """Address -> ADD_TCP_LISTENER fields, ``active`` included (a copy)."""
        return copy.deepcopy(self._listeners["TCP"])

    @property
    def tcp_frontends(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(address, hostname or "")`` -> ADD_TCP_FRONTEND fields (a copy)."""
        return copy.deepcopy(self._tcp_frontends)

    @property
    def http_listeners(self) -> dict[str, dict[str, Any]]:
        """Address -> ADD_HTTP_LISTENER fields, ``active`` included (a copy)."""
        return copy.deepcopy(self._listeners["HTTP"])

    @property
    def https_listeners(self) -> dict[str, dict[str, Any]]:
        """Address -> ADD_HTTPS_LISTENER fields, ``active`` included (a copy)."""
        return copy.deepcopy(self._listeners["HTTPS"])

    @property
    def https_frontends(self) -> list[dict[str, Any]]:
        """ADD_HTTPS_FRONTEND fields of every HTTPS frontend, sorted by rule (a copy)."""
        return [copy.deepcopy(f) for _, f in sorted(self._https_frontends.items())]

    def certificates(self, address: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """Listener address -> fingerprint -> ADD_CERTIFICATE fields (a copy; one listener's
        when ``address`` is given)."""
        return copy.deepcopy({
            a: certs for a, certs in sorted(self._certificates.items()) if address in (None, a)
        })

    @property
    def http_frontends(self) -> list[dict[str, Any]]:
        """ADD_HTTP_FRONTEND fields of every HTTP frontend, sorted by rule (a copy)."""
        return [copy.deepcopy(f) for _, f in sorted(self._http_frontends.items())]


@functools.lru_cache(maxsize=64)
def _checked_fingerprint(
    certificate: str, key: str, chain: tuple[str, ...], names: tuple[str, ...]
) -> str:
    """The fingerprint of a certificate that parses and matches its key. Remembered: a
    request is checked, then applied (which checks again), and parsing a key is not cheap."""
    return parse_certificate(certificate, key, chain, names).fingerprint


def _update_cannot_express(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether turning listener ``old`` into ``new`` needs remove + add: an UPDATE cannot
    unset ``public_address``, an HTTPS listener's default certificate or its ``hsts`` (None
    means "keep") nor drop an answer template (it merges)."""
    for name in _UNSETTABLE:
        if old.get(name) is not None and new.get(name) is None:
            return True
    old_answers = old.get("answers")
    return old_answers is not None and not old_answers.keys() <= new["answers"].keys()


def _pick(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: fields[name] for name in names}


def _number(items: list[tuple[str, dict[str, Any]]], id_prefix: str) -> list[Request]:
    return [
        make_request(f"{id_prefix}-{index}", request_type, **fields)
        for index, (request_type, fields) in enumerate(items)
    ]
