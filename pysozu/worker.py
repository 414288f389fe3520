"""The worker facade: a reactor wired to the proxies, steered by the command channel.

Theory of operation
-------------------
Every request, whatever channel it came on, goes through ``Worker.handle``:

1. ``parse_request`` checks its shape (FAILURE names the bad field);
2. ``ConfigState.check`` checks it against the current state (unknown cluster, duplicate
   id...) without changing anything;
3. the proxies and the reactor carry it out (bind a listener, add a backend...). This is
   the step that can fail for reasons outside the state (address in use): the state is
   only changed after it succeeded;
4. ``ConfigState.apply`` records it, and the answer goes back with the request's id.

So the state a worker reports (hashes, saves) is always the state it serves. Active
connections are never cut by a change unless it requires it: removing a backend, a
frontend, a cluster or deactivating a listener only affects new connections.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from pysozu.parser import Limits
from pysozu.protocols.access_log import AccessLogger
from pysozu.protocols.answers import AnswerError, Answers, Template, load_template_source
from pysozu.protocols.backends import Backend
from pysozu.protocols.certificates import (
    Certificate,
    CertificateError,
    covers,
    parse_certificate,
)
from pysozu.protocols.h2_connection import H2Limits
from pysozu.protocols.health_check import HealthCheckConfig, HealthChecker
from pysozu.protocols.http import HeaderEdit, HttpCluster, HttpListenerConfig, HttpProxy, HttpRoute
from pysozu.protocols.http_rules import REDIRECT_STATUS, Hsts
from pysozu.protocols.rewrite import Rewrites
from pysozu.protocols.router import Frontend, PathRule, PathRuleKind, RulePosition
from pysozu.protocols.tcp import TcpListenerConfig, TcpProxy
from pysozu.protocols.tls import ListenerTls, TlsSettings
from pysozu.protocols.tls_backend import BackendTls
from pysozu.protocols.upstream import Upstreams
from pysozu.reactor.metrics import StatsdDrain
from pysozu.reactor.server import Reply, Server
from pysozu.reactor.session import ProxySession, StateFactory, StateMachineSession

from .command import (
    H2_LISTENER_FIELDS,
    CommandError,
    Request,
    failure,
    ok,
    parse_address,
    processing,
    request_or_failure,
)
from .config import ServerConfig
from .state import ConfigState, StateError

log = logging.getLogger("pysozu.worker")

Handler = Callable[[Request, Reply], dict[str, Any] | None]


#: the young generation's threshold a serving process runs with (CPython's default: 700)
SERVING_GC_THRESHOLD = (10_000, 20, 50)


def tune_gc_for_serving() -> None:
    """Set the cyclic garbage collector up for a process that serves from here on: the
    objects made so far (modules, configuration, certificates) move to the permanent
    generation (``gc.freeze``), and collections come after 10,000 net allocations instead
    of 700.

    Why: a proxied request allocates a few dozen tracked objects (a stream and its machine,
    heads, events) that mostly die by reference counting within the request. With the
    default thresholds the collector ran every few requests and walked every long-lived
    object at each full collection; it took 10-14 % of an HTTP/2 request's CPU. A larger
    young generation lets most of those objects die before a collection sees them, and a
    frozen startup heap is never walked again. Memory is still bounded: cycles are still
    collected, only later. Called by the worker processes and the single-process
    ``pysozu start``, not by ``Worker`` itself: a program that embeds a worker in a thread
    keeps its own collector settings.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLD)


class RequestFailed(Exception):
    """A request was refused while building a worker from a configuration."""


class Worker:
    """One proxy worker: a ``Server`` loop, the TCP proxy and the configuration state."""

    def __init__(self, config: ServerConfig | None = None, *, poller: str = "epoll",
                 worker_id: int | None = None) -> None:
        self.config = config = config or ServerConfig()
        #: this worker's number under a main process (None: a worker on its own)
        self.worker_id = worker_id
        self.server = Server(
            max_connections=config.max_connections,
            buffer_size=config.buffer_size,
            max_buffers=config.max_buffers,
            min_buffers=config.min_buffers,
            zombie_check_interval=config.zombie_check_interval,
            max_frame_size=config.max_command_buffer_size,
            poller=poller,
            command_handler=self._on_command,
        )
        self.state = ConfigState()
        self.upstreams = Upstreams(self.server)
        self.tcp = TcpProxy(self.server, self.upstreams)
        self.http = HttpProxy(self.server, self.upstreams)
        self.health = HealthChecker(self.server, self.upstreams)
        if config.access_logs_target:
            self.http.access_log = AccessLogger(config.access_logs_target,
                                                config.access_logs_format)
            self.http.access_log.worker_id = worker_id
        if config.metrics_address:
            drain = StatsdDrain(parse_address(config.metrics_address), config.metrics_prefix,
                                config.metrics_tagged)
            drain.worker = worker_id
            self.server.metrics.set_drain(drain)
        #: answer templates of each cluster, applied to every HTTP listener
        self._cluster_answers: dict[str, dict[str, str]] = {}
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, Handler] = {
            "STATUS": self._status,
            "ADD_CLUSTER": self._add_cluster,
            "REMOVE_CLUSTER": self._remove_cluster,
            "ADD_BACKEND": self._add_backend,
            "REMOVE_BACKEND": self._remove_backend,
            "ADD_TCP_LISTENER": self._add_tcp_listener,
            "UPDATE_TCP_LISTENER": self._update_tcp_listener,
            "REMOVE_LISTENER": self._remove_listener,
            "ACTIVATE_LISTENER": self._activate_listener,
            "DEACTIVATE_LISTENER": self._deactivate_listener,
            "ADD_TCP_FRONTEND": self._add_tcp_frontend,
            "REMOVE_TCP_FRONTEND": self._remove_tcp_frontend,
            "SOFT_STOP": self._soft_stop,
            "HARD_STOP": self._hard_stop,
            "SAVE_STATE": self._save_state,
            "LOAD_STATE": self._load_state,
            "QUERY_CLUSTER_BY_ID": self._query_cluster,
            "QUERY_CLUSTERS_HASHES": self._query_hashes,
            "LIST_LISTENERS": self._list_listeners,
            "ADD_HTTP_LISTENER": self._add_http_listener,
            "UPDATE_HTTP_LISTENER": self._update_http_listener,
            "ADD_HTTP_FRONTEND": self._add_http_frontend,
            "REMOVE_HTTP_FRONTEND": self._remove_http_frontend,
            "ADD_HTTPS_LISTENER": self._add_https_listener,
            "UPDATE_HTTPS_LISTENER": self._update_https_listener,
            "ADD_HTTPS_FRONTEND": self._add_http_frontend,
            "REMOVE_HTTPS_FRONTEND": self._remove_http_frontend,
            "ADD_CERTIFICATE": self._add_certificate,
            "REPLACE_CERTIFICATE": self._replace_certificate,
            "REMOVE_CERTIFICATE": self._remove_certificate,
            "QUERY_CERTIFICATES_FROM_WORKERS": self._query_certificates,
            "QUERY_CLUSTERS_BY_DOMAIN": self._query_by_domain,
            "QUERY_METRICS": self._query_metrics,
            "CONFIGURE_METRICS": self._configure_metrics,
            "LOGGING": self._logging,
            "SET_HEALTH_CHECK": self._set_health_check,
            "REMOVE_HEALTH_CHECK": self._remove_health_check,
            "QUERY_HEALTH_CHECKS": self._query_health_checks,
            "SET_MAX_CONNECTIONS_PER_IP": self._set_max_connections_per_ip,
            "QUERY_MAX_CONNECTIONS_PER_IP": self._query_max_connections_per_ip,
        }

    # -- public API ---------------------------------------------------------------------------
    def add_channel(self, sock: socket.socket) -> None:
        """Serve the channel on ``sock`` (the worker's end of a ``socket.socketpair()``)."""
        self.server.add_channel(sock)

    def channel_pair(self) -> socket.socket:
        """Make a socketpair, serve one end, return the other for a ``Channel``."""
        ours, theirs = socket.socketpair()
        self.add_channel(ours)
        return theirs

    def listen_command_socket(self, path: str) -> None:
        self.server.listen_command_socket(path)

    def set_listener_handler(self, address: str, factory: StateFactory) -> None:
        """Serve the TCP listener at ``address`` with a custom protocol state.

        Every client accepted there gets a ``StateMachineSession`` whose first state is
        ``factory(session)``; no cluster or frontend is needed. Add and activate the
        listener as usual (``ADD_TCP_LISTENER``, ``ACTIVATE_LISTENER``).
        """
        host, port = parse_address(address)
        self.tcp.handlers[_normalise(host, port)] = factory

    def offer_listen_socket(self, address: str, sock: socket.socket) -> None:
        """Hand over a bound, listening socket for ``ACTIVATE_LISTENER`` with ``from_scm``.

        In-process users (tests, examples) bind port 0 themselves and pass the socket, so
        there is no window where another process could take the port.
        """
        self.server.scm_sockets[address] = sock

    def apply(self, requests: list[Request]) -> None:
        """Apply requests synchronously (configuration bootstrap); raises on the first
        refusal."""
        for request in requests:
            answers: list[dict[str, Any]] = []
            self.execute(request, answers.append)
            if answers and answers[-1]["status"] == "FAILURE":
                raise RequestFailed(f"{request.type} {request.id}: {answers[-1]['message']}")

    def run(self) -> None:
        """Run the loop in this thread until a stop request."""
        self.server.run()

    def start_thread(self) -> threading.Thread:
        """Run the loop in a daemon thread (tests, examples)."""
        thread = threading.Thread(target=self.run, name="pysozu-worker", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Hard-stop a loop started by ``start_thread`` and release its resources."""
        if self._thread is not None:
            self.server.call_soon(self.server.hard_stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the worker thread did not stop")
            self._thread = None
        self.close()

    def close(self) -> None:
        """Release everything once the loop has ended (probes, sessions, sockets)."""
        self.health.close()
        if self.http.access_log is not None:
            self.http.access_log.close()
        self.server.metrics.set_drain(None)
        self.server.close()

    # -- dispatch -----------------------------------------------------------------------------
    def _on_command(self, server: Server, message: dict[str, Any], reply: Reply) -> None:
        request = request_or_failure(message)
        if isinstance(request, dict):
            reply(request)
            return
        self.execute(request, reply)

    def execute(self, request: Request, reply: Reply) -> None:
        """Carry out a validated request; every outcome is answered through ``reply``."""
        handler = self._handlers.get(request.type)
        if handler is None:
            reply(failure(request.id, f"request type {request.type} is not handled by workers"))
            return
        try:
            answer = handler(request, reply)
        except (StateError, CommandError, KeyError, ValueError, AnswerError,
                CertificateError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            reply(failure(request.id, str(message)))
            return
        except OSError as e:
            reply(failure(request.id, f"{request.type} failed: {e.strerror or e}"))
            return
        if answer is not None:
            reply(answer)

    def _checked(self, request: Request) -> None:
        self.state.check(request)

    # -- handlers -----------------------------------------------------------------------------
    def _status(self, request: Request, reply: Reply) -> dict[str, Any]:
        server = self.server
        return ok(
            request.id,
            "worker running",
            {
                "worker_id": self.worker_id,
                "pid": os.getpid(),
                "sessions": len(server.sessions),
                "listeners": {a: listener.active for a, listener in server.listeners.items()},
                "buffers_in_use": server.pool.in_use,
                "state_hash": self.state.hash(),
                "metrics": server.metrics.snapshot(),
            },
        )

    def _add_cluster(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        cluster_tls = self.upstreams.backend_tls
        # built first: a bad CA file or bundle refuses the request before anything changed
        backend_tls = (BackendTls.build(f["backend_tls"], cluster_tls.get(f["cluster_id"]))
                       if f.get("backend_tls") else None)
        self.upstreams.set_load_balancing(
            f["cluster_id"], f["load_balancing"], f.get("load_metric")
        )
        answers = dict(f.get("answers") or {})
        if f.get("answer_503"):
            answers.setdefault("503", f["answer_503"])
        answers = {k: load_template_source(v) for k, v in answers.items() if v}
        for listener in self._http_listeners():
            listener.answers.set_cluster(f["cluster_id"], answers)  # AnswerError: FAILURE
        self._cluster_answers[f["cluster_id"]] = answers
        self.tcp.add_cluster(f["cluster_id"], f.get("proxy_protocol"))
        self.http.clusters[f["cluster_id"]] = HttpCluster(
            f["cluster_id"],
            sticky_session=bool(f.get("sticky_session")),
            https_redirect=bool(f.get("https_redirect")),
            https_redirect_port=f.get("https_redirect_port"),
            authorized_hashes=list(f.get("authorized_hashes") or []),
            www_authenticate=f.get("www_authenticate"),
            retry_after=f.get("retry_after"),
            max_body_size=f.get("max_body_size"),
            backend_tls=backend_tls,
        )
        if backend_tls is not None:
            cluster_tls[f["cluster_id"]] = backend_tls
        else:
            cluster_tls.pop(f["cluster_id"], None)
        if f.get("http2"):  # the backends speak h2c (prior knowledge)
            self.upstreams.backend_h2.add(f["cluster_id"])
        else:
            self.upstreams.backend_h2.discard(f["cluster_id"])
        limit = f.get("max_connections_per_ip")
        if limit:
            self.http.ip_limiter.cluster_limits[f["cluster_id"]] = limit
        else:
            self.http.ip_limiter.cluster_limits.pop(f["cluster_id"], None)
        if f.get("health_check"):
            self.health.set(f["cluster_id"], _health_config(f["health_check"]))
        else:
            self.health.remove(f["cluster_id"])
        self.state.apply(request)
        return ok(request.id)

    def _remove_cluster(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        cluster_id = request["cluster_id"]
        self.tcp.remove_cluster(cluster_id)
        self.http.clusters.pop(cluster_id, None)
        self.http.ip_limiter.cluster_limits.pop(cluster_id, None)
        self._cluster_answers.pop(cluster_id, None)
        for listener in self._http_listeners():
            listener.answers.remove_cluster(cluster_id)
            for frontend in [fe for fe in listener.router if fe.route.cluster_id == cluster_id]:
                listener.router.remove(frontend)
        self.health.remove(cluster_id)
        self.upstreams.remove_cluster(cluster_id)
        self.state.apply(request)
        return ok(request.id)

    def _add_backend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        params = f.get("load_balancing_parameters") or {}
        backend = Backend(
            f["backend_id"],
            f["address"],
            sticky_id=f.get("sticky_id"),
            weight=params.get("weight"),
            backup=f.get("backup"),
        )
        self.upstreams.add_backend(f["cluster_id"], backend)
        self.state.apply(request)
        return ok(request.id)

    def _remove_backend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        self.upstreams.remove_backend(f["cluster_id"], f["address"], f["backend_id"])
        self.state.apply(request)
        return ok(request.id)

    def _add_tcp_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        address = f["address"]
        config = TcpListenerConfig(
            address=address,
            public_address=f.get("public_address"),
            expect_proxy=f["expect_proxy"],
            front_timeout=f["front_timeout"],
            back_timeout=f["back_timeout"],
            connect_timeout=f["connect_timeout"],
        )
        return self._add_listener(request, self.tcp, config)

    def _add_listener(self, request: Request, factory: Any, config: Any) -> dict[str, Any]:
        """Register a checked listener; bind it at once when ``active`` (a bind failure
        leaves neither the listener nor the state behind)."""
        address = request["address"]
        self.server.add_listener(address, parse_address(address), factory, config)
        content = None
        if request.fields.get("active"):
            try:
                listener = self.server.activate_listener(address)
            except BaseException:
                self.server.remove_listener(address)
                raise
            content = {"bound_address": listener.bound_address}
        self.state.apply(request)
        return ok(request.id, "", content)

    def _update_tcp_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        listener = self.server.listeners[request["address"]]
        config: TcpListenerConfig = listener.config
        _patch(config, request.fields, ("public_address", "expect_proxy", "front_timeout",
                                        "back_timeout", "connect_timeout"))
        self.state.apply(request)
        return ok(request.id)

    def _remove_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.server.remove_listener(request["address"])
        self.state.apply(request)
        return ok(request.id)

    def _activate_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        address = request["address"]
        try:
            listener = self.server.activate_listener(address, request.fields.get("from_scm", False))
        except OSError as e:
            return failure(request.id, f"cannot listen on {address}: {e.strerror or e}")
        self.state.apply(request)
        return ok(request.id, "", {"bound_address": listener.bound_address})

    def _deactivate_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.server.deactivate_listener(request["address"])
        self.state.apply(request)
        return ok(request.id)

    def _add_tcp_frontend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        self.tcp.add_frontend(f["address"], f["cluster_id"], f.get("hostname"))
        self.state.apply(request)
        return ok(request.id)

    def _remove_tcp_frontend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.tcp.remove_frontend(request["address"], request.fields.get("hostname"))
        self.state.apply(request)
        return ok(request.id)

    # -- HTTP ---------------------------------------------------------------------------------
    def _http_listeners(self) -> list[HttpListenerConfig]:
        return [
            listener.config
            for listener in self.server.listeners.values()
            if isinstance(listener.config, HttpListenerConfig)
        ]

    def _http_listener(self, address: str, kind: str = "HTTP") -> HttpListenerConfig:
        """The listener at ``address``, which must be ``kind`` (HTTP or HTTPS)."""
        listener = self.server.listeners.get(address)
        config = listener.config if listener is not None else None
        if not isinstance(config, HttpListenerConfig) or config.scheme != kind.lower():
            raise KeyError(f"no {kind} listener on {address}")
        return config

    def _add_http_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        return self._add_listener(request, self.http, self._http_config(request.fields))

    def _http_config(self, f: dict[str, Any]) -> HttpListenerConfig:
        """The listener configuration of an ADD_HTTP(S)_LISTENER's HTTP fields."""
        address = f["address"]
        sources = {k: load_template_source(v) for k, v in f["answers"].items() if v}
        answers = Answers(sources)
        for cluster_id, templates in self._cluster_answers.items():
            answers.set_cluster(cluster_id, templates)
        buffer_size = self.config.buffer_size
        return HttpListenerConfig(
            address=address,
            public_address=f.get("public_address"),
            expect_proxy=f["expect_proxy"],
            sticky_name=f["sticky_name"],
            front_timeout=f["front_timeout"],
            back_timeout=f["back_timeout"],
            connect_timeout=f["connect_timeout"],
            request_timeout=f["request_timeout"],
            sozu_id_header=f["sozu_id_header"],
            elide_x_real_ip=f["elide_x_real_ip"],
            send_x_real_ip=f["send_x_real_ip"],
            answers=answers,
            answer_sources=sources,
            # a head must fit in one pooled buffer
            limits=Limits(max_head=min(buffer_size - 1, 16384)),
            max_body_size=f["max_body_size"],
            h2c=f["h2c"],
            h2_limits=_h2_limits(H2Limits(), f),
            h2_graceful_shutdown_deadline=f["h2_graceful_shutdown_deadline_seconds"],
        )

    # -- HTTPS --------------------------------------------------------------------------------
    def _add_https_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        config = self._http_config(f)
        config.tls = tls = ListenerTls(_tls_settings(f))
        config.strict_sni_binding = f["strict_sni_binding"]
        config.hsts = Hsts.from_fields(f["hsts"]) if f["hsts"] else None
        if f["certificate"] or f["key"]:
            _set_default_certificate(tls, f["certificate"], f["key"], f["certificate_chain"])
        return self._add_listener(request, self.http, config)

    def _update_https_listener(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        address = request["address"]
        config = self._http_listener(address, "HTTPS")
        tls = config.tls
        assert tls is not None
        f = request.fields
        # what the listener has now, with the patch over it: everything that can refuse is
        # checked before anything changes
        merged = {**self.state.https_listeners[address],
                  **{k: v for k, v in f.items() if v is not None}}
        tls_changed = any(f[name] is not None for name in _TLS_SETTING_FIELDS)
        settings = _tls_settings(merged) if tls_changed else None
        certificate_changed = any(
            f[name] is not None for name in ("certificate", "key", "certificate_chain"))
        default = None
        if certificate_changed:
            default = _parse_certificate(merged["certificate"], merged["key"],
                                         merged["certificate_chain"], None)
            tls.check(default, settings)
        hsts = Hsts.from_fields(f["hsts"]) if f["hsts"] is not None else None
        self._update_http_listener(request, reply, config)  # HTTP fields; applies the state
        if settings is not None:
            tls.set_settings(settings)
        if default is not None:
            tls.set_default(default)
        if f["strict_sni_binding"] is not None:
            config.strict_sni_binding = f["strict_sni_binding"]
        if hsts is not None:
            config.hsts = hsts
        return ok(request.id)

    def _certificates_of(self, address: str) -> ListenerTls:
        tls = self._http_listener(address, "HTTPS").tls
        assert tls is not None
        return tls

    def _add_certificate(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        tls = self._certificates_of(f["address"])
        certificate = _certificate_from(f["certificate"], f["expired_at"])
        tls.check(certificate)  # refused by OpenSSL: FAILURE, nothing changed
        tls.add(certificate)
        self.state.apply(request)
        return ok(request.id, "", {"fingerprint": certificate.fingerprint})

    def _replace_certificate(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        tls = self._certificates_of(f["address"])
        certificate = _certificate_from(f["new_certificate"], f["new_expired_at"])
        tls.check(certificate)
        tls.replace(f["old_fingerprint"], certificate)
        self.state.apply(request)
        return ok(request.id, "", {"fingerprint": certificate.fingerprint})

    def _remove_certificate(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        f = request.fields
        self._certificates_of(f["address"]).remove(f["fingerprint"])
        self.state.apply(request)
        return ok(request.id)

    def _query_certificates(self, request: Request, reply: Reply) -> dict[str, Any]:
        """Sōzu's QueryCertificatesFromWorkers: per HTTPS listener, the certificates (all,
        those serving ``domain``, or the one with ``fingerprint``, PEM included)."""
        filters = request["filters"]
        domain, fingerprint = filters["domain"], filters["fingerprint"]
        content: dict[str, list[dict[str, Any]]] = {}
        for address, listener in sorted(self.server.listeners.items()):
            config = listener.config
            if not isinstance(config, HttpListenerConfig) or config.tls is None:
                continue
            resolver = config.tls.resolver
            found = []
            for certificate in resolver:
                if fingerprint is not None and certificate.fingerprint != fingerprint:
                    continue
                if domain is not None and not covers(certificate, domain):
                    continue
                entry: dict[str, Any] = {
                    "fingerprint": certificate.fingerprint,
                    "names": list(certificate.names),
                    "subject_names": list(certificate.subject_names),
                    "expired_at": int(certificate.not_after.timestamp()),
                    "default": certificate.fingerprint == resolver.default,
                }
                if fingerprint is not None:
                    entry["certificate"] = certificate.certificate_pem
                    entry["certificate_chain"] = list(certificate.chain_pem)
                found.append(entry)
            if found:
                content[address] = sorted(found, key=lambda e: e["fingerprint"])
        if fingerprint is not None and not content:
            return failure(request.id, f"no certificate with fingerprint {fingerprint}")
        return ok(request.id, "", {"certificates": content})

    def _update_http_listener(
        self, request: Request, reply: Reply, config: HttpListenerConfig | None = None
    ) -> dict[str, Any]:
        if config is None:
            self._checked(request)
            config = self._http_listener(request["address"])
        f = request.fields
        # everything that can refuse the request runs before anything changes, so a FAILURE
        # leaves the listener exactly as the state describes it
        if f.get("answers"):
            merged = dict(config.answer_sources)
            merged.update({k: load_template_source(v) for k, v in f["answers"].items() if v})
            config.answers.set_listener(merged)  # AnswerError leaves the old ones in place
            config.answer_sources = merged
        _patch(config, f, ("public_address", "expect_proxy", "sticky_name", "front_timeout",
                           "back_timeout",
                           "connect_timeout", "request_timeout", "sozu_id_header",
                           "elide_x_real_ip", "send_x_real_ip", "max_body_size", "h2c"))
        # HTTP/2 settings are read when a connection starts: new connections get them
        config.h2_limits = _h2_limits(config.h2_limits, f)
        deadline = f.get("h2_graceful_shutdown_deadline_seconds")
        if deadline is not None:
            config.h2_graceful_shutdown_deadline = deadline
        config.constants = None  # the bytes made from the old fields
        self.state.apply(request)
        return ok(request.id)

    def _http_frontend(self, request: Request, compile_rules: bool = True) -> Frontend[HttpRoute]:
        """The router entry of an HTTP frontend request; ``compile_rules=False`` (removal) skips
        the rewrites and redirect template, which only matter to a frontend being added."""
        f = request.fields
        path = f.get("path") or {"kind": "PREFIX", "value": ""}
        route = HttpRoute(
            cluster_id=f.get("cluster_id"),
            headers=[
                HeaderEdit(h["position"], h["key"].encode(), h["val"].encode())
                for h in f.get("headers") or []
            ],
            tags=dict(f["tags"]) if f.get("tags") else None,
            redirect=f.get("redirect") or "FORWARD",
            redirect_scheme=f.get("redirect_scheme") or "USE_SAME",
            required_auth=bool(f.get("required_auth")),
        )
        frontend = Frontend(
            hostname=f["hostname"],
            route=route,
            path=PathRule(PathRuleKind[path["kind"]], path["value"]),
            method=f.get("method"),
            position=RulePosition[f["position"]],
        )
        if not compile_rules:
            return frontend
        if f.get("rewrite_host") or f.get("rewrite_path") or f.get("rewrite_port") is not None:
            route.rewrites = Rewrites(frontend, f.get("rewrite_host"), f.get("rewrite_path"),
                                      f.get("rewrite_port"))
        if f.get("redirect_template"):
            status = REDIRECT_STATUS.get(route.redirect)
            if status is None:
                raise ValueError(
                    "redirect_template needs redirect PERMANENT, FOUND or PERMANENT_REDIRECT, "
                    f"not {route.redirect}"
                )
            route.redirect_template = Template.parse(
                load_template_source(f["redirect_template"]), status
            )
        return frontend

    def _add_http_frontend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        config = self._http_listener(request["address"], _frontend_kind(request))
        frontend = self._http_frontend(request)
        if request.fields.get("hsts"):
            frontend.route.hsts = Hsts.from_fields(request["hsts"])
        config.router.add(frontend)
        self.state.apply(request)
        return ok(request.id)

    def _remove_http_frontend(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        config = self._http_listener(request["address"], _frontend_kind(request))
        config.router.remove(self._http_frontend(request, compile_rules=False))
        self.state.apply(request)
        return ok(request.id)

    def _query_by_domain(self, request: Request, reply: Reply) -> dict[str, Any]:
        f = request.fields
        return ok(request.id, "", self.state.query_clusters_by_domain(f["hostname"], f.get("path")))

    def _query_metrics(self, request: Request, reply: Reply) -> dict[str, Any]:
        f = request.fields
        metrics = self.server.metrics
        if f.get("list"):
            names = sorted({*metrics.counters, *metrics.gauges,
                            *(key[0] for key in metrics.histograms)})
            return ok(request.id, "", {"metric_names": names})
        return ok(request.id, "", metrics.snapshot(
            cluster_ids=f.get("cluster_ids") or None,
            backend_ids=f.get("backend_ids") or None,
            names=f.get("metric_names") or None,
        ))

    def _configure_metrics(self, request: Request, reply: Reply) -> dict[str, Any]:
        configuration = request["configuration"]
        metrics = self.server.metrics
        if configuration == "CLEAR":
            metrics.clear()
        else:
            metrics.enabled = configuration == "ENABLED"
        return ok(request.id, f"metrics {configuration.lower()}")

    def _logging(self, request: Request, reply: Reply) -> dict[str, Any]:
        apply_log_filter(request["filter"])
        return ok(request.id, f"logging set to {request['filter']}")

    def _set_max_connections_per_ip(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.http.ip_limiter.global_limit = request["limit"]
        self.state.apply(request)
        return ok(request.id)

    def _query_max_connections_per_ip(self, request: Request, reply: Reply) -> dict[str, Any]:
        return ok(request.id, "", {"limit": self.http.ip_limiter.global_limit})

    def _set_health_check(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.health.set(request["cluster_id"], _health_config(request["config"]))
        self.state.apply(request)
        return ok(request.id)

    def _remove_health_check(self, request: Request, reply: Reply) -> dict[str, Any]:
        self._checked(request)
        self.health.remove(request["cluster_id"])
        self.state.apply(request)
        return ok(request.id)

    def _query_health_checks(self, request: Request, reply: Reply) -> dict[str, Any]:
        content = self.health.query()
        cluster_id = request.fields.get("cluster_id")
        if cluster_id is not None:
            content = {k: v for k, v in content.items() if k == cluster_id}
        return ok(request.id, "", {"health_checks": content})

    def _soft_stop(self, request: Request, reply: Reply) -> None:
        # Close the listeners first: a client that hears PROCESSING knows none accepts.
        self.server.soft_stop(request.id, reply)
        reply(processing(request.id, "soft stop: draining connections"))

    def _hard_stop(self, request: Request, reply: Reply) -> None:
        reply(processing(request.id, "hard stop"))
        self.server.hard_stop()
        reply(ok(request.id, "worker stopped"))

    def _save_state(self, request: Request, reply: Reply) -> dict[str, Any]:
        count = self.state.save(request["path"])
        return ok(request.id, f"saved {count} requests to {request['path']}")

    def _load_state(self, request: Request, reply: Reply) -> dict[str, Any]:
        requests = ConfigState.load(request["path"])
        errors: list[str] = []
        for sub in requests:
            answers: list[dict[str, Any]] = []
            self.execute(sub, answers.append)
            if answers and answers[-1]["status"] == "FAILURE":
                errors.append(f"{sub.type} {sub.id}: {answers[-1]['message']}")
        if errors:
            return failure(
                request.id,
                f"{len(errors)} of {len(requests)} requests failed: " + "; ".join(errors),
            )
        return ok(request.id, f"loaded {len(requests)} requests from {request['path']}")

    def _query_cluster(self, request: Request, reply: Reply) -> dict[str, Any]:
        return ok(request.id, "", self.state.query_cluster(request["cluster_id"]))

    def _query_hashes(self, request: Request, reply: Reply) -> dict[str, Any]:
        return ok(request.id, "", {"cluster_hashes": self.state.cluster_hashes()})

    def _list_listeners(self, request: Request, reply: Reply) -> dict[str, Any]:
        content = self.state.list_listeners()
        for kind in ("tcp_listeners", "http_listeners", "https_listeners"):
            for address, listener_config in content.get(kind, {}).items():
                listener = self.server.listeners.get(address)
                if listener is not None and listener.bound_address is not None:
                    content[kind][address] = dict(
                        listener_config, bound_address=listener.bound_address
                    )
        return ok(request.id, "", content)


#: UPDATE_HTTPS_LISTENER fields that make new TLS settings
_TLS_SETTING_FIELDS = ("versions", "cipher_list", "cipher_suites", "signature_algorithms",
                       "groups_list", "send_tls13_tickets", "alpn_protocols", "disable_http11")


def _frontend_kind(request: Request) -> str:
    return "HTTPS" if "HTTPS" in request.type else "HTTP"


def _tls_settings(fields: dict[str, Any]) -> TlsSettings:
    """An HTTPS listener's TLS settings; ``ValueError`` (a FAILURE) names what is refused."""
    return TlsSettings.from_fields(fields)


#: ``H2Limits`` attribute -> the listener field that sets it (Sōzu's name, ``h2_`` prefixed)
_H2_LIMIT_FIELDS = {
    field.name: f"h2_{field.name}" for field in dataclasses.fields(H2Limits)
    if f"h2_{field.name}" in H2_LISTENER_FIELDS
}


def _h2_limits(limits: H2Limits, fields: dict[str, Any]) -> H2Limits:
    """``limits`` with the HTTP/2 fields of a listener request (or patch: None keeps)."""
    changes = {name: fields[key] for name, key in _H2_LIMIT_FIELDS.items()
               if fields.get(key) is not None}
    return dataclasses.replace(limits, **changes) if changes else limits


def _parse_certificate(
    certificate: str | None, key: str | None, chain: list[str] | None, names: list[str] | None
) -> Certificate:
    if not certificate or not key:
        raise ValueError("a default certificate needs both 'certificate' and 'key'")
    return parse_certificate(certificate, key, chain or (), names or ())


def _certificate_from(fields: dict[str, Any], expired_at: int | None) -> Certificate:
    """A ``CertificateAndKey`` parsed and checked; ``expired_at`` (Unix time) replaces the
    certificate's own end of validity in the choice among certificates for a name."""
    certificate = _parse_certificate(fields["certificate"], fields["key"],
                                     fields["certificate_chain"], fields["names"])
    if expired_at is not None:
        certificate = dataclasses.replace(
            certificate, not_after=datetime.datetime.fromtimestamp(expired_at, datetime.UTC))
    return certificate


def _set_default_certificate(
    tls: ListenerTls, certificate: str | None, key: str | None, chain: list[str]
) -> None:
    default = _parse_certificate(certificate, key, chain, None)
    tls.check(default)  # OpenSSL refuses it now rather than at a handshake
    tls.set_default(default)


def _patch(config: Any, fields: dict[str, Any], names: tuple[str, ...]) -> None:
    """Apply the fields of an UPDATE_*_LISTENER patch that were given (None: keep)."""
    for name in names:
        value = fields.get(name)
        if value is not None:
            setattr(config, name, value)


def _health_config(fields: dict[str, Any]) -> HealthCheckConfig:
    return HealthCheckConfig(
        uri=fields["uri"],
        interval=fields["interval"],
        timeout=fields["timeout"],
        healthy_threshold=fields["healthy_threshold"],
        unhealthy_threshold=fields["unhealthy_threshold"],
        expected_status=fields["expected_status"],
    )


_LEVELS = {"off": logging.CRITICAL + 10, "error": logging.ERROR, "warn": logging.WARNING,
           "info": logging.INFO, "debug": logging.DEBUG, "trace": logging.DEBUG}


class _MessageFilter(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.regex = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(self.regex.search(record.getMessage()))


def apply_log_filter(spec: str) -> None:
    """Apply a Sōzu logging filter (``LEVEL``, ``MODULE=LEVEL``..., then ``/REGEX``) to the
    ``pysozu`` loggers; modules are ``pysozu.<module>`` logger names (``http``, ``tcp``...)."""
    root = logging.getLogger("pysozu")
    directives, _, pattern = spec.partition("/")
    for directive in filter(None, (d.strip() for d in directives.split(","))):
        module, sep, level = directive.partition("=")
        if not sep:
            module, level = "", directive
        name = "pysozu" if not module or module == "pysozu" else (
            module if module.startswith("pysozu.") else f"pysozu.{module}")
        logging.getLogger(name).setLevel(_LEVELS.get(level.strip().lower() or "trace",
                                                     logging.DEBUG))
    for old in [f for f in root.filters if isinstance(f, _MessageFilter)]:
        root.removeFilter(old)
    if pattern:
        root.addFilter(_MessageFilter(pattern))


def _normalise(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["ProxySession", "RequestFailed", "StateMachineSession", "Worker"]
