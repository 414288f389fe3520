"""SNI passthrough: route a TCP connection on its TLS server name without terminating TLS.

Theory of operation
-------------------
This goes beyond Sōzu, whose TCP listeners serve one cluster each. A TCP frontend may name a
``hostname``; a listener address with at least one such frontend routes each connection on
the server name of the client's ClientHello, so two backends that each terminate TLS with
their own certificates can share one port. The proxy never decrypts anything: it peeks at
the cleartext first flight, picks a cluster, then pipes the bytes unchanged, so the client
sees the backend's certificate and the TLS session is end to end.

``SniRoutes`` holds one address's host name routes: exact names, and one-label wildcards
``*.example.com`` (stored by suffix, so ``a.example.com`` matches and neither
``example.com`` nor ``a.b.example.com`` do). ``TcpProxy.route_sni`` tries the exact name,
then the wildcard, then the address's frontend without host name (the default route, also
taken by clients that send no SNI). Routes are looked up when the hello is complete, so a
frontend added or removed meanwhile changes where that connection goes; a connection
already routed keeps its cluster.

``SniPeek`` is the session state that waits for the hello. It reads the client into the
session's frontend→backend buffer (the very buffer the pipe later sends from, so nothing is
copied or re-sent) and re-parses the bytes after each read with
:func:`pysozu.parser.tls_hello.parse_client_hello`:

* incomplete: wait for the next event. ``front_timeout`` is *not* touched on reads: the
  whole hello must arrive within one ``front_timeout`` of the accept (or of the PROXY
  header), so a client that trickles bytes cannot hold a session open for long;
* complete: pick the cluster, set ``TcpSession.cluster_id``, and upgrade into the ordinary
  chain (connect, [SendProxyProtocol], Pipe), the hello being the first bytes sent;
* not TLS, malformed, larger than the buffer, or no route: close the client and count it
  (``tcp.sni.errors``, ``tcp.sni.no_route``); a front timeout while peeking counts as an
  error too. A client that closes before its first byte is closed silently (a TCP health
  check), as ``ExpectProxyProtocol`` does.

With ``expect_proxy`` on the listener, ``ExpectProxyProtocol`` runs first and keeps the
header in the buffer; ``SniPeek`` parses what follows it. Once the cluster is known the
header is dropped, or kept when the cluster relays it (``RELAY_HEADER``). The chain stays
forward only: Expect (rank 10) → SniPeek (15) → SendProxyProtocol (20) → Pipe (100).
Listeners whose frontends have no host name never enter this state and pay nothing for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pysozu.parser.tls_hello import ClientHelloError, parse_client_hello
from pysozu.reactor import metrics as m
from pysozu.reactor.readiness import ERROR, HUP, READABLE
from pysozu.reactor.session import (
    MAX_LOOP_ITERATIONS,
    SessionResult,
    SessionState,
    SocketResult,
    StateMachineSession,
)

if TYPE_CHECKING:
    from .tcp import TcpSession

__all__ = ["SNI_ERRORS", "SNI_NO_ROUTE", "SniPeek", "SniRoutes"]

#: Counter: a connection closed because its first bytes were not a usable ClientHello (not
#: TLS, malformed, over the buffer) or did not complete within ``front_timeout``.
SNI_ERRORS: Final = "tcp.sni.errors"
#: Counter: a connection closed because no frontend serves its server name (and the address
#: has no default frontend).
SNI_NO_ROUTE: Final = "tcp.sni.no_route"


class SniRoutes:
    """One listener address's host name routes: exact names and ``*.suffix`` wildcards."""

    __slots__ = ("exact", "wildcards")

    def __init__(self) -> None:
        #: server name -> cluster id
        self.exact: dict[str, str] = {}
        #: suffix after ``*.`` -> cluster id
        self.wildcards: dict[str, str] = {}

    def _table(self, hostname: str) -> tuple[dict[str, str], str]:
        if hostname.startswith("*."):
            return self.wildcards, hostname[2:]
        return self.exact, hostname

    def add(self, hostname: str, cluster_id: str) -> None:
        """Route ``hostname`` (normalised: ``normalise_sni_hostname``) to ``cluster_id``."""
        table, key = self._table(hostname)
        table[key] = cluster_id

    def remove(self, hostname: str) -> None:
        table, key = self._table(hostname)
        table.pop(key, None)

    def remove_cluster(self, cluster_id: str) -> None:
        for table in (self.exact, self.wildcards):
            for key in [k for k, c in table.items() if c == cluster_id]:
                del table[key]

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards)

    def match(self, server_name: str) -> str | None:
        """The cluster for ``server_name``: exact name first, then a one-label wildcard."""
        cluster_id = self.exact.get(server_name)
        if cluster_id is not None:
            return cluster_id
        dot = server_name.find(".")
        if dot > 0:
            return self.wildcards.get(server_name[dot + 1 :])
        return None


def _tcp(session: StateMachineSession) -> TcpSession:
    return session  # type: ignore[return-value]


class SniPeek(SessionState):
    """Read the ClientHello, route on its server name, then hand over to the backend chain."""

    RANK = 15
    NAME = "tcp.sni"

    def __init__(self, session: TcpSession, start: int) -> None:
        self.session = session
        #: where the hello starts in the buffer (after a PROXY header kept there)
        self.start = start
        self.server_name: str | None = None
        self.error = ""
        self._buffered_checked = False
        session.front_readiness.interest = READABLE | HUP | ERROR

    def update_readiness(self, token: int, events: int) -> None:
        self.session.update_front_back_readiness(token, events)

    def interest(self, token: int) -> int:
        return self.session.readiness_interest(token)

    def ready(self, session: StateMachineSession) -> SessionResult:
        tcp = _tcp(session)
        if not self._buffered_checked:
            # bytes that came with the PROXY header may already hold the whole hello
            self._buffered_checked = True
            if tcp.to_back_end > self.start:
                result = self._parse(tcp)
                if result is not None:
                    return result
        readiness = tcp.front_readiness
        if not readiness.event & (READABLE | HUP | ERROR):
            return SessionResult.CONTINUE
        read = tcp.front.socket_read
        size = len(tcp.to_back)
        for _ in range(MAX_LOOP_ITERATIONS):
            end = tcp.to_back_end
            if end >= size:
                return self._fail(tcp, f"no complete ClientHello in {size - self.start} bytes")
            n, status = read(tcp.to_back_mv[end:])
            if status is SocketResult.WOULD_BLOCK:
                readiness.event &= ~READABLE
                return SessionResult.CONTINUE
            if status is SocketResult.CLOSED:
                if end == self.start:
                    return SessionResult.CLOSE  # gone before a byte: a health check
                return self._fail(tcp, "client closed in the middle of the ClientHello")
            if status is SocketResult.ERROR:
                return SessionResult.CLOSE
            if n:
                tcp.to_back_end = end + n
                result = self._parse(tcp)
                if result is not None:
                    return result
        tcp.server.metrics.incr(m.INFINITE_LOOP)
        return SessionResult.CLOSE

    def _parse(self, tcp: TcpSession) -> SessionResult | None:
        """Parse the buffered bytes: None to read on, else what the session must do."""
        try:
            hello = parse_client_hello(tcp.to_back_mv[self.start : tcp.to_back_end])
        except ClientHelloError as e:
            return self._fail(tcp, str(e))
        if hello is None:
            return None
        self.server_name = hello.server_name
        cluster_id = tcp.proxy.route_sni(tcp.config.address, hello.server_name)
        if cluster_id is None:
            self.error = f"no route for server name {hello.server_name!r}"
            tcp.server.metrics.incr(SNI_NO_ROUTE)
            tcp.log_debug("SNI passthrough: %s", self.error)
            return SessionResult.CLOSE
        tcp.route(cluster_id)
        tcp.log_debug("SNI passthrough: %r -> cluster %s", hello.server_name, cluster_id)
        return SessionResult.UPGRADE

    def _fail(self, tcp: TcpSession, message: str) -> SessionResult:
        self.error = message
        tcp.server.metrics.incr(SNI_ERRORS)
        tcp.log_debug("SNI passthrough: %s", message)
        return SessionResult.CLOSE

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        return _tcp(session).next_state(self)

    def shutting_down(self, session: StateMachineSession) -> bool:
        return False  # the hello may be on its way (bounded by front_timeout)

    def print_state(self) -> str:
        read = self.session.to_back_end - self.start
        return f"SniPeek(read={read}, server_name={self.server_name!r})"
