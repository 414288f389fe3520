"""HTTP/1.1 reverse proxying: one state drives a client connection and its backend.

Theory of operation
-------------------
An ``HttpSession`` holds the client socket; its state ``Http`` serves one request at a time
(pipelined requests wait in the client buffer, in order) through these phases::

    HEAD ──parse, route──▶ FORWARD ──response done──▶ HEAD (keep-alive) or close
      │                       │
      └──error──▶ ANSWER ◀────┘ (no backend, backend failed before the response, timeout)

* **HEAD**: read the client into a pooled buffer and parse the head in place (spans, no
  copy; ``last_len`` resumes the search for the end of the head). An invalid head gets
  the status its ``ParseError`` names. The head is routed (``Router``), rewritten (the
  header rules below) into one ``bytes`` built from slices of the received head, and the
  body framing (Content-Length, chunked) gets a decoder.
* **FORWARD**: connect to a backend of the cluster (or reuse the session's keep-alive
  connection to it), write the rewritten head, then stream the body exactly as received,
  only as far as its decoder validates (so a second request hidden in a body is never
  sent as part of this one). The response head is parsed from the backend buffer (1xx heads
  are relayed; ``101`` after an ``Upgrade`` request turns the session into a ``Pipe``),
  rewritten, and its body streamed by its own decoder, or until the backend closes.
* **ANSWER**: write a default answer (``answers.py`` templates), then close or go on.

Memory stays bounded: each direction has one pooled buffer, reading stops when it is full
(back-pressure), and an idle keep-alive client holds no buffer at all.

Failures: a connect failure tries another backend (3 attempts in all, while nothing of the
request was sent); a backend that closes before any response byte, with the request body
not yet started, is retried the same way (a stale keep-alive connection); otherwise 503 (no
backend), 502 (backend failed or answered garbage before the response head), 504 (backend
timeout before the response head). Once the response head went out, a failure can only
close the client connection. A client that ends its side inside a request body closes the
session (and so releases the backend connection). A response that comes before the whole
request body arrived (an early 401, a refused ``Expect: 100-continue``) carries
``Connection: close`` and ends the connection: the bytes that follow belong to that body and
must never be parsed as a new request.

Access log lines are queued per request and written once per loop pass (``call_soon``).

Header rules (Sōzu's ``kawa_h1/editor.rs``): requests get ``X-Forwarded-For`` (appended),
``X-Forwarded-Proto`` and ``X-Forwarded-Port`` (kept if the client sent them), ``Forwarded``
(appended, RFC 7239), ``X-Request-Id`` (kept or set), the ``Sozu-Id`` header, optional
``X-Real-IP``, and lose the sticky cookie crumb; responses get ``Sozu-Id``, the sticky
``Set-Cookie`` when the backend changed, and ``Connection: close`` when the client
connection ends with them. Per-frontend header edits apply to both. A frontend's rewrites
(``rewrite.py``) replace the target and ``Host`` (the client's goes to ``X-Forwarded-Host``).

Connection persistence is decided here for the client side: the backend's ``Connection`` and
``Keep-Alive`` fields, and the fields its ``Connection`` names, are hop-by-hop and dropped;
an HTTP/1.0 keep-alive client is told ``Connection: keep-alive``. A default answer to a
routing decision (404, 401, redirects, 503) keeps the connection when its template does
(no ``Connection: close``, a ``Content-Length``) and no request body is left unread; an
answer to HEAD goes without its body.

Listeners with ``expect_proxy`` start sessions in ``HttpExpectProxy``, which reads the PROXY
header and hands the connection (and what followed the header) to ``Http``.

The pump (``Http.ready``) runs each step whose readiness is set, and goes round again only
while readiness is left or a step made another possible without one (an answer or a
response fully sent, unparsed pipelined bytes). The hot path is measured by
``benchmarks/http_bytecodes.py``; see ``docs/architecture.md``, "HTTP hot path".

Two shortcuts serve the usual exchange with the same bytes as the general path, and step
aside (changing nothing) for anything else: ``_fast_response`` takes a simple response
(``parser.simple_response_head``: one Content-Length, keep-alive, final status) that sits
whole in the buffer, and ``_rewrite_request`` copies a head none of whose headers it
rewrites in one slice. ``Http.FAST_RESPONSES`` and ``FAST_REQUESTS`` switch them off.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

from mypy_extensions import mypyc_attr
from OpenSSL import SSL

from pysozu.parser import (
    BodyKind,
    ChunkedDecoder,
    LengthBody,
    Limits,
    ParseError,
    RequestHead,
    ResponseHead,
    TargetForm,
    parse_request_head,
    parse_response_head,
    simple_response_head,
)
from pysozu.reactor import metrics as m
from pysozu.reactor.readiness import ERROR, HUP, NONE, READ_HUP, READABLE, WRITABLE, Readiness
from pysozu.reactor.server import Listener, Server
from pysozu.reactor.session import (
    MAX_LOOP_ITERATIONS,
    FrontReadinessState,
    ProxySession,
    SessionResult,
    SessionState,
    SocketHandler,
    SocketResult,
    StateMachineSession,
)
from pysozu.reactor.timer import UNARMED, Timeout

from .access_log import AccessLogger, AccessRecord
from .answers import ANSWER_STATUSES, Answers, Template
from .backends import Backend, BackendStatus, NoAvailableBackend
from .certificates import covers
from .h2_backend import H2BackendHandler
from .h2_connection import H2Limits
from .http_rules import (
    REDIRECT_STATUS,
    Hsts,
    IpLimiter,
    check_basic_auth,
    redirect_location,
    www_authenticate,
)
from .pipe import Pipe
from .proxy_protocol_states import EXPECT_WINDOW, read_proxy_header
from .rewrite import Rewrites, valid_host
from .router import Router, split_host_port
from .tls import ListenerTls, TlsHandshake, TlsSocketHandler, connection_info, served_certificate
from .tls_backend import BACKEND_TLS_ERRORS, BackendTls, BackendTlsError, handshake_step
from .upstream import NO_RESOURCES, Upstreams

log = logging.getLogger("pysozu.http")

CONNECT_ATTEMPTS: Final = 3
_CONTINUE: Final = SocketResult.CONTINUE
_WOULD_BLOCK: Final = SocketResult.WOULD_BLOCK
_CLOSED: Final = SocketResult.CLOSED

# phases
HEAD: Final = 0
FORWARD: Final = 1
ANSWER: Final = 2
# backend connection status; the odd ones (bit ``_OPENING``) are before the connection can
# carry a request, so the pump tells them from _CONNECTED with a single bit test
_NONE: Final = 0
_CONNECTING: Final = 1
_CONNECTED: Final = 2
_TLS_HANDSHAKE: Final = 3
_OPENING: Final = 1

# header ids from the scanner (parser/SCANNER.md)
_H_CONNECTION: Final = 3
_H_HOST: Final = 4
_H_COOKIE: Final = 7
_H_KEEP_ALIVE: Final = 10
_H_XFF: Final = 12
_H_FORWARDED: Final = 13
_H_XFP: Final = 14
_H_XFPORT: Final = 15
_H_XREALIP: Final = 16
_H_XREQID: Final = 17
_IN_SERVICE: Final = BackendStatus.NORMAL
#: id-mask bits of Connection and Keep-Alive, and of a second Connection line (SCANNER.md)
_HOP_BITS: Final = 1 << _H_CONNECTION | 1 << _H_KEEP_ALIVE | 1 << (18 + _H_CONNECTION)
_CONNECTION_ONCE: Final = 1 << _H_CONNECTION
_HSTS_NAME: Final = frozenset((b"strict-transport-security",))
_STATUS_CLASSES: Final = tuple(f"http.status.{n}xx" for n in range(10))
#: id-mask bits of the request headers every request may see rewritten
_TOUCHED_IDS: Final = (1 << _H_XFF | 1 << _H_FORWARDED | 1 << _H_XFP | 1 << _H_XFPORT
                | 1 << _H_XREQID)


def _simple_response() -> ResponseHead:
    head = ResponseHead()
    head.status = 200
    head.is_informational = False
    head.tunnel = False
    head.keep_alive = True
    head.body = BodyKind.LENGTH
    head.upgrade = None
    head.connection_tokens = ()
    return head


#: ``resp`` of a response taken by ``_fast_response``: final, keep-alive, its body already
#: framed (``resp_status`` has the real status); the general path reads no more than that
_SIMPLE_RESPONSE: Final = _simple_response()

#: the request line of HTTP/2's connection preface (RFC 9113 §3.4)
_H2_PREFACE_LINE: Final[bytes] = b"PRI * HTTP/2.0\r\n"

_ids = itertools.count(1)
_ID_PREFIX: Final = os.urandom(4).hex()


_ID_PAD: Final = 1 << 40  # hex(n + _ID_PAD) is "0x1" then n in 10 hex digits, for n < _ID_PAD


def new_request_id() -> str:
    """Unique in this process and across restarts (random prefix), cheap to make: the
    random prefix and the request number in at least 10 hex digits (``hex`` and a slice:
    a ``:010x`` format spec costs several times more, once per request)."""
    n = next(_ids)
    if n < _ID_PAD:
        return _ID_PREFIX + hex(n + _ID_PAD)[3:]
    return f"{_ID_PREFIX}{n:010x}"


@dataclass
class HeaderEdit:
    """A per-frontend header rule: add ``key: value``, or delete ``key`` when value is empty."""

    position: str  # REQUEST | RESPONSE | BOTH
    key: bytes
    value: bytes


@dataclass
class HttpRoute:
    """What a frontend routes to: a cluster, or an answer (deny) with its edits and tags."""

    cluster_id: str | None
    headers: list[HeaderEdit] = field(default_factory=list)
    tags: dict[str, str] | None = None
    #: FORWARD (proxy), PERMANENT / FOUND / PERMANENT_REDIRECT (301/302/308), UNAUTHORIZED
    redirect: str = "FORWARD"
    redirect_scheme: str = "USE_SAME"
    required_auth: bool = False
    #: ``rewrite_host`` / ``rewrite_path`` / ``rewrite_port`` of the frontend, compiled
    rewrites: Rewrites | None = None
    #: the frontend's own template for its 301/302/308 (``redirect_template``)
    redirect_template: Template | None = None
    #: an HTTPS frontend's ``hsts`` (None: the listener's applies)
    hsts: Hsts | None = None
    # ``headers`` sorted once for the hot path: names to delete (lowercase), lines to add
    request_deletes: frozenset[bytes] = field(init=False)
    request_adds: bytes = field(init=False)
    response_deletes: frozenset[bytes] = field(init=False)
    response_adds: bytes = field(init=False)

    def __post_init__(self) -> None:
        def sides(position: str) -> tuple[frozenset[bytes], bytes]:
            edits = [e for e in self.headers if e.position in (position, "BOTH")]
            deletes = frozenset(e.key.lower() for e in edits if not e.value)
            adds = b"".join(e.key + b": " + e.value + b"\r\n" for e in edits if e.value)
            return deletes, adds

        self.request_deletes, self.request_adds = sides("REQUEST")
        self.response_deletes, self.response_adds = sides("RESPONSE")


class _ListenerConstants:
    """Bytes every request of a listener adds the same way, made once per listener (and
    again after UPDATE_HTTP_LISTENER, which drops them): not per connection, so that an idle
    keep-alive connection stays small."""

    __slots__ = ("proto", "send_real_ip", "sozu_id", "sozu_id_lower", "sozu_id_search",
                 "sticky_name", "xfport")

    def __init__(self, config: HttpListenerConfig, local_port: int) -> None:
        self.sticky_name = config.sticky_name.encode()
        self.sozu_id = config.sozu_id_header.encode()
        self.sozu_id_lower = self.sozu_id.lower()
        self.sozu_id_search = re.compile(
            b"\r\n" + re.escape(self.sozu_id) + b":", re.IGNORECASE
        ).search
        self.xfport = b"X-Forwarded-Port: %d\r\n" % config.public_port(local_port)
        self.send_real_ip = config.send_x_real_ip
        self.proto = b"https" if config.tls is not None else b"http"


@dataclass
class HttpListenerConfig:
    """An HTTP listener (Sōzu ``HttpListenerConfig``)."""

    address: str
    public_address: str | None = None
    expect_proxy: bool = False
    sticky_name: str = "SOZUBALANCEID"
    front_timeout: float = 60
    back_timeout: float = 30
    connect_timeout: float = 3
    request_timeout: float = 10
    sozu_id_header: str = "Sozu-Id"
    elide_x_real_ip: bool = False
    send_x_real_ip: bool = False
    answers: Answers = field(default_factory=Answers)
    #: the listener's own templates as configured (UPDATE_HTTP_LISTENER merges into them)
    answer_sources: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    router: Router[HttpRoute] = field(default_factory=Router)
    #: made on first use from the fields above; set to None when they change
    constants: _ListenerConstants | None = field(default=None, compare=False, repr=False)
    #: the largest request body in bytes (413 beyond); 0: unlimited
    max_body_size: int = 0
    #: an HTTPS listener's TLS side (certificates, settings); None: cleartext HTTP
    tls: ListenerTls | None = None
    #: HTTPS: a request whose host the served certificate does not name gets 421
    strict_sni_binding: bool = True
    #: HTTPS: the Strict-Transport-Security of answers, unless the frontend has its own
    hsts: Hsts | None = None
    #: cleartext: serve HTTP/2 to clients that open with its preface (prior knowledge)
    h2c: bool = True
    #: HTTP/2 settings and flood limits (Sōzu's ``h2_*`` listener fields)
    h2_limits: H2Limits = field(default_factory=H2Limits)
    #: soft stop: how long HTTP/2 clients get to finish after the first GOAWAY
    h2_graceful_shutdown_deadline: float = 5.0

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def public_port(self, local_port: int) -> int:
        if self.public_address:
            return int(self.public_address.rsplit(":", 1)[1])
        return local_port


@dataclass
class HttpCluster:
    cluster_id: str
    sticky_session: bool = False
    https_redirect: bool = False
    https_redirect_port: int | None = None
    authorized_hashes: list[str] = field(default_factory=list)
    www_authenticate: str | None = None
    retry_after: int | None = None
    #: overrides the listener's ``max_body_size`` for requests routed here (0: unlimited)
    max_body_size: int | None = None
    #: TLS to the backends (``backend_tls``; the connect path reads ``Upstreams.backend_tls``)
    backend_tls: BackendTls | None = None


class HttpProxy:
    """Session factory and configuration of every HTTP listener of a worker."""

    def __init__(self, server: Server, upstreams: Upstreams) -> None:
        self.server = server
        self.upstreams = upstreams
        self.clusters: dict[str, HttpCluster] = {}
        self.access_log: AccessLogger | None = None
        self._flush_pending = False
        #: client connections per (cluster, IP) against SET_MAX_CONNECTIONS_PER_IP
        self.ip_limiter = IpLimiter()
        #: Retry-After of 429 answers when the cluster sets none (Sōzu's ``retry_after``)
        self.retry_after = 60

    def log_access(self, record: AccessRecord) -> None:
        """Queue an access log line; the lines of one loop pass are written together at
        its end (``call_soon`` runs after the pass's events)."""
        logger = self.access_log
        if logger is None:
            return
        logger.log(record)
        if not self._flush_pending:
            self._flush_pending = True
            self.server.call_soon(self._flush_access_log)

    def _flush_access_log(self) -> None:
        self._flush_pending = False
        if self.access_log is not None:
            self.access_log.flush()

    def create_session(
        self, server: Server, sock: socket.socket, peer: Any, listener: Listener
    ) -> ProxySession | None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        session = HttpSession(self, server, sock, peer, listener)
        assert session.state is not None
        server.metrics.gauge_add(f"protocol.{session.state.NAME}", 1)
        return session


class HttpSession(StateMachineSession):
    """A client connection on an HTTP listener; its state does the work."""

    protocol = "http"
    __slots__ = ()

    def __init__(
        self, proxy: HttpProxy, server: Server, sock: socket.socket, peer: Any, listener: Listener
    ) -> None:
        super().__init__(server, sock, peer, listener)
        config = listener.config
        if config.expect_proxy:
            self.state = HttpExpectProxy(self, proxy, config)
        elif config.tls is not None:
            self.state = tls_handshake(self, proxy, config)
        else:
            self.state = Http(self, proxy, config)

    def tokens(self) -> list[int]:
        state = self.state
        if isinstance(state, (Http, Pipe)):
            back = state.back_token
            return [self.frontend_token, back] if back >= 0 else [self.frontend_token]
        tokens = getattr(state, "tokens", None)  # HTTP/2: the streams' backend sockets
        if tokens is not None:
            return tokens()  # type: ignore[no-any-return]
        return [self.frontend_token]


def tls_handshake(
    session: StateMachineSession, proxy: HttpProxy, config: HttpListenerConfig
) -> TlsHandshake:
    """The first TLS state of an HTTPS session: the handshake, bounded by the listener's
    request timeout, then :class:`Http` on the decrypted stream."""
    assert config.tls is not None
    return TlsHandshake(
        session, config.tls.context,
        lambda s: _after_handshake(s, proxy, config),
        timeout=config.request_timeout,
    )


def _after_handshake(
    session: StateMachineSession, proxy: HttpProxy, config: HttpListenerConfig
) -> SessionState:
    """ALPN ``h2`` gives HTTP/2, anything else HTTP/1.1, unless the listener disabled it
    (then HTTP/2 is spoken anyway: an HTTP/1.1 client fails the preface and is refused)."""
    front = session.front
    assert isinstance(front, TlsSocketHandler) and config.tls is not None
    if front.alpn == b"h2" or config.tls.settings.disable_http11:
        from .http2 import Http2  # http2 builds on this module

        return Http2(session, proxy, config)
    handoff = session.take_handoff_timeout()  # the handshake's timer: the request timer now
    return Http(session, proxy, config, handoff)


class HttpExpectProxy(FrontReadinessState):
    """``expect_proxy`` on an HTTP listener: the PROXY header (v1 or v2) before any HTTP.

    Reads at most ``EXPECT_WINDOW`` bytes into a small buffer of its own and parses them on
    every read (``None``: a valid prefix, wait). With a header, the client address becomes the
    header's source (so X-Forwarded-For, Forwarded, the per-IP limit and the access log name
    the real client), and the bytes read past the header go to the :class:`Http` state as the
    start of the first request. A bad header, a header longer than the window or the listener's
    request timeout closes the connection and counts ``proxy_protocol.errors``; a client that
    closes before sending a byte is closed silently (a TCP health check).

    On an HTTPS listener the header is *peeked* (``MSG_PEEK``) and then exactly its bytes
    are taken from the socket: what follows is the ClientHello, which OpenSSL must read from
    the socket itself, so none of it may land in this state's buffer.
    """

    RANK = 10
    NAME = "proxy.expect"
    __slots__ = ("buf", "config", "next", "proxy", "read", "session", "timer")

    def __init__(self, session: HttpSession, proxy: HttpProxy, config: HttpListenerConfig):
        super().__init__(session, READABLE | ERROR)
        self.session = session
        self.proxy = proxy
        self.config = config
        self.buf = bytearray(EXPECT_WINDOW)
        self.read = 0
        self.next: SessionState | None = None
        self.timer = Timeout(session.server.timers, config.request_timeout, self._timed_out)
        self.timer.set()

    def ready(self, session: StateMachineSession) -> SessionResult:
        front_r = self.front_readiness
        if not front_r.event & (READABLE | HUP | ERROR):
            return SessionResult.CONTINUE
        mv = memoryview(self.buf)
        tls = self.config.tls is not None
        reader = self._peek if tls else session.front.socket_read
        self.read, outcome = read_proxy_header(reader, mv, self.read)
        if outcome is None:
            front_r.event &= ~READABLE
            return SessionResult.CONTINUE
        if isinstance(outcome, str):
            if outcome:
                self._fail(outcome)
            return SessionResult.CLOSE
        if outcome.command == "PROXY" and isinstance(outcome.source, tuple):
            session.peer_address = outcome.source
        if tls:
            try:  # the peeked header is in the socket: take exactly it
                session.front_socket.recv_into(mv, outcome.length)
            except OSError:
                return SessionResult.CLOSE
            handshake = tls_handshake(session, self.proxy, self.config)
            handshake.update_readiness(session.frontend_token, READABLE)  # the ClientHello
            self.next = handshake
            self.timer.cancel()
            return SessionResult.UPGRADE
        state = Http(self.session, self.proxy, self.config)
        if not state.seed(mv[outcome.length : self.read]):
            state.close(session)
            return SessionResult.CLOSE
        self.next = state
        self.timer.cancel()
        return SessionResult.UPGRADE

    def _peek(self, buf: memoryview) -> tuple[int, SocketResult]:
        """``socket_read`` without consuming: the pending bytes past the ``read`` already
        seen (each peek starts at the socket's first byte)."""
        try:
            n = self.session.front_socket.recv_into(memoryview(self.buf), EXPECT_WINDOW,
                                                    socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return 0, _WOULD_BLOCK
        except OSError:
            return 0, SocketResult.ERROR
        if n == 0:
            return 0, _CLOSED
        if n <= self.read:
            return 0, _WOULD_BLOCK  # nothing new: wait for the next edge
        return n - self.read, _CONTINUE

    def _fail(self, message: str) -> None:
        self.session.server.metrics.incr(m.PROXY_PROTOCOL_ERRORS)
        log.debug("%s bad PROXY protocol header: %s", self.session.peer_address, message)

    def _timed_out(self) -> None:
        session = self.session
        if session.alive and session.state is self:
            self._fail("no complete PROXY header before the request timeout")
            session.server.kill_session(session)

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        state, self.next = self.next, None
        return state

    def shutting_down(self, session: StateMachineSession) -> bool:
        return False  # a new client's request may be on its way: bounded by the timer

    def close(self, session: StateMachineSession) -> None:
        self.timer.close()
        if self.next is not None:
            self.next.close(session)
            self.next = None

    def print_state(self) -> str:
        return f"HttpExpectProxy(read={self.read})"


@mypyc_attr(allow_interpreted_subclasses=True)
class Http(SessionState):
    """The HTTP/1.1 request/response machine (see the module docstring)."""

    RANK = 50
    NAME = "http"
    #: take the usual response by ``_fast_response``, and rewrite the usual request head
    #: without the header walk (tests compare both paths)
    FAST_RESPONSES: ClassVar[bool] = True
    FAST_REQUESTS: ClassVar[bool] = True
    # ~70 attributes per connection: slots keep an idle keep-alive connection small
    __slots__ = (
        "answer_close",
        "authority",
        "back",
        "back_buf",
        "back_cluster",
        "back_end",
        "back_eof",
        "back_mv",
        "back_out",
        "back_out_pos",
        "back_r",
        "back_sock",
        "back_start",
        "back_status",
        "back_timeout",
        "back_tls",
        "back_tls_conn",
        "back_token",
        "backend",
        "bytes_in",
        "bytes_out",
        "close_after",
        "close_back_after",
        "cluster_id",
        "config",
        "connect_attempts",
        "connect_started",
        "connect_timeout",
        "fatal",
        "forwarding",
        "forwarding_src",
        "front",
        "front_buf",
        "front_end",
        "front_eof",
        "front_mv",
        "front_out",
        "front_out_pos",
        "front_r",
        "front_start",
        "front_timeout",
        "front_token",
        "h2_preread",
        "head_last_len",
        "host",
        "host_port",
        "ip_clusters",
        "keep_alive",
        "local_port",
        "method",
        "metrics",
        "path",
        "phase",
        "pool",
        "proxy",
        "req_body",
        "req_body_sent",
        "req_done",
        "req_fwd_end",
        "req_head",
        "req_http10",
        "req_started",
        "request_id",
        "resp",
        "resp_body",
        "resp_close_delimited",
        "resp_done",
        "resp_fwd_end",
        "resp_last_len",
        "resp_started",
        "resp_status",
        "route",
        "server",
        "service_started",
        "session",
        "sticky_value",
        "timers",
        "upgrade_requested",
        "upgrade_to_pipe",
        "upstreams",
    )


    # Any, not HttpSession: http2's StreamHttp passes an H2Stream (duck-typed); mypyc checks
    def __init__(self, session: Any, proxy: HttpProxy, config: HttpListenerConfig,
                 front_timeout: Timeout | None = None):
        """``front_timeout``: an armed timeout to take over as the request timer (the TLS
        handshake's, see ``StateMachineSession.handoff_timeout``) instead of a new one."""
        server: Server = session.server
        self.session: Any = session
        self.server = server
        self.proxy = proxy
        self.upstreams = proxy.upstreams
        self.config = config
        self.pool = server.pool
        self.metrics = server.metrics
        self.front = session.front
        self.front_token = session.frontend_token
        self.front_r = Readiness(READABLE | HUP | ERROR)
        self.front_buf: bytearray | None = None
        self.front_mv: memoryview | None = None
        self.front_start = 0
        self.front_end = 0
        self.front_eof = False
        self.head_last_len = 0
        self.front_out: list[bytes] = []
        self.front_out_pos = 0
        # backend
        self.back: SocketHandler | None = None
        self.back_sock: socket.socket | None = None
        self.back_token = -1
        self.back_r = Readiness(NONE)
        self.back_status = _NONE
        #: the cluster's TLS settings when its backends speak TLS, and the connection while
        #: its handshake runs (see ``_start_backend_tls``)
        self.back_tls: BackendTls | None = None
        self.back_tls_conn: SSL.Connection | None = None
        self.back_cluster: str | None = None
        self.backend: Backend | None = None
        self.back_buf: bytearray | None = None
        self.back_mv: memoryview | None = None
        self.back_start = 0
        self.back_end = 0
        self.back_eof = False
        self.back_out = b""
        self.back_out_pos = 0
        self.connect_started = 0.0
        self.connect_attempts = 0
        # the request in flight
        self.phase = HEAD
        self.close_after = False
        self.request_id = ""
        self.cluster_id: str | None = None
        self.route: HttpRoute | None = None
        self.method = b""
        self.authority = b""
        self.path = b""
        self.keep_alive = True
        self.local_port = 0
        # X-Forwarded-* and Forwarded for this client, made from ``forwarding_src``
        self.forwarding = b""
        self.forwarding_src: _ListenerConstants | None = None
        self.host = ""  # ``authority`` split: the previous request's, reused when it repeats
        self.host_port: int | None = None
        self.timers = server.timers
        self.req_http10 = False
        self.upgrade_requested = False
        self.sticky_value: bytes | None = None
        self.req_head = b""
        self.req_body: LengthBody | ChunkedDecoder | None = None
        self.req_fwd_end = 0
        self.req_body_sent = 0
        self.req_done = False
        self.req_started = 0.0
        self.service_started = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        # the response in flight
        self.resp_last_len = 0
        self.resp: ResponseHead | None = None
        self.resp_status: int | None = None
        self.resp_body: LengthBody | ChunkedDecoder | None = None
        self.resp_close_delimited = False
        self.resp_fwd_end = 0
        self.resp_started = False  # a byte of the final response went to the client
        self.resp_done = False
        self.upgrade_to_pipe = False
        self.answer_close = False
        self.close_back_after = False  # the backend said it closes after this response
        self.fatal = False  # the request broke mid-body: only closing both ends is safe
        #: clusters this connection counts against in the per-IP limiter (released at close)
        self.ip_clusters: tuple[str, ...] = ()  # a tuple: 48 bytes for one, a set 216
        #: what the client sent, when it turned out to be HTTP/2's preface (h2c)
        self.h2_preread: bytes | None = None
        if front_timeout is None:
            front_timeout = self._new_timeout(config.request_timeout, self._front_timed_out)
        else:
            front_timeout.reuse(config.request_timeout, self._front_timed_out)
        self.front_timeout = front_timeout
        front_timeout.set()
        # made when a backend is first opened (``_backend_timeouts``)
        self.back_timeout: Timeout = UNARMED
        self.connect_timeout: Timeout = UNARMED

    # -- readiness ----------------------------------------------------------------------------
    def update_readiness(self, token: int, events: int) -> None:
        if events & (HUP | ERROR):
            events |= READABLE
        if token == self.front_token:
            self.front_r.event |= events
        elif token == self.back_token:
            self.back_r.event |= events

    def interest(self, token: int) -> int:
        if token == self.front_token:
            return self.front_r.interest
        if token == self.back_token:
            return self.back_r.interest
        return NONE

    # -- the pump -----------------------------------------------------------------------------
    def ready(self, session: Any) -> SessionResult:
        front_r = self.front_r
        back_r = self.back_r
        for _ in range(MAX_LOOP_ITERATIONS):
            if self.back_status & _OPENING:  # connecting, or the TLS handshake with the backend
                if self.back_status == _CONNECTING:
                    if back_r.event & (WRITABLE | HUP | ERROR) and not self._check_connect():
                        return SessionResult.CLOSE
                elif back_r.event & back_r.interest:
                    self._backend_handshake()
            progressed = False
            if front_r.event & front_r.interest & READABLE:
                if not self._read_front():
                    return SessionResult.CLOSE
                progressed = True
            if self.phase == HEAD and self.front_end > self.front_start:
                result = self._parse_request()
                if result is not None:
                    return result
            if self.back_status == _CONNECTED:
                if back_r.event & back_r.interest & WRITABLE:
                    if not self._write_back() and not self._backend_failed():
                        return SessionResult.CLOSE
                    progressed = True
                if back_r.event & back_r.interest & READABLE:
                    if not self._read_back() and not self._backend_failed():
                        return SessionResult.CLOSE
                    progressed = True
                    if self.upgrade_to_pipe and not self.front_out:
                        return SessionResult.UPGRADE
            if front_r.event & front_r.interest & WRITABLE:
                if not self._write_front():
                    return SessionResult.CLOSE
                progressed = True
                if self.upgrade_to_pipe and not self.front_out:
                    return SessionResult.UPGRADE
            if self.phase == ANSWER and not self.front_out:
                if self.answer_close:
                    return SessionResult.CLOSE
                self._next_request()
                progressed = True
            elif self.phase == FORWARD and self.resp_done and not self._front_pending():
                if not self._response_finished():
                    return SessionResult.CLOSE
                progressed = True
            if self.fatal:  # a body broke after part of it went out: cut both ends
                return SessionResult.CLOSE
            phase = self.phase
            if phase == HEAD and self.front_eof and self.front_end == self.front_start:
                return SessionResult.CLOSE
            if not (
                front_r.event & front_r.interest & (READABLE | WRITABLE)
                or back_r.event & back_r.interest & (READABLE | WRITABLE)
            ):
                # no readiness left to act on: go round again only for what this pass made
                # possible without one (an answer or response fully sent, unparsed bytes)
                if not progressed:
                    return SessionResult.CONTINUE
                if phase == ANSWER:
                    if self.front_out:
                        return SessionResult.CONTINUE
                elif phase == FORWARD:
                    if not self.resp_done or self._front_pending():
                        return SessionResult.CONTINUE
                elif self.front_end - self.front_start <= self.head_last_len:
                    return SessionResult.CONTINUE  # HEAD: nothing new to parse
        self.metrics.incr(m.INFINITE_LOOP)
        return SessionResult.CLOSE

    def _local_port(self) -> int:
        """The port the client connected to (asked of the kernel once per connection)."""
        port = self.local_port
        if not port:
            port = self.local_port = self.session.front_socket.getsockname()[1]
        return port

    def seed(self, data: memoryview) -> bool:
        """Start with ``data`` already read from the client (what followed a PROXY header);
        False when no buffer is left."""
        if data:
            if not self._front_buffer():
                return False
            assert self.front_mv is not None
            self.front_mv[: len(data)] = data
            self.front_end = len(data)
            self.bytes_in += len(data)
        self.front_r.event |= READABLE  # the socket may hold more than the window took
        return True

    # -- client side --------------------------------------------------------------------------
    def _front_buffer(self) -> bool:
        if self.front_buf is None:
            buf = self.pool.checkout()
            if buf is None:
                self.metrics.incr(m.BUFFER_EXHAUSTED)
                return False
            self.front_buf = buf
            self.front_mv = memoryview(buf)
            self.front_start = self.front_end = 0
        return True

    def _release_front_buffer(self) -> None:
        if self.front_buf is not None and self.front_start == self.front_end:
            assert self.front_mv is not None
            self.front_mv.release()
            self.pool.checkin(self.front_buf)
            self.front_buf = self.front_mv = None
            self.front_start = self.front_end = 0

    def _read_front_idle(self) -> bool:
        """A read between requests, with no buffer: into the pool's next free buffer, taken
        only when bytes came (a wake-up with nothing to read, or the client's EOF, costs
        no checkout and checkin); False as ``_read_front``."""
        pool = self.pool
        spare = pool.spare()
        if spare is None:
            self.metrics.incr(m.BUFFER_EXHAUSTED)
            return False
        mv = memoryview(spare)
        n, result = self.front.socket_read(mv)
        front_r = self.front_r
        if result is _CONTINUE:
            if not n:
                mv.release()
                return True  # interrupted: READABLE stays, the pump reads again
            taken = pool.checkout()
            assert taken is spare
            self.front_buf = spare
            self.front_mv = mv
            self.front_start = 0
            self.front_end = n
            self.bytes_in += n
            self.front_timeout.last = self.timers.now  # touch()
            if n < len(spare) and not front_r.event & READ_HUP:
                front_r.event &= ~READABLE  # a short read drained the socket
            return True
        mv.release()
        if result is _WOULD_BLOCK:
            front_r.event &= ~READABLE
            return True
        if result is _CLOSED:
            front_r.event &= ~READABLE
            front_r.interest &= ~READABLE
            self.front_eof = True
            return True
        return False

    def _read_front(self) -> bool:
        """Fill the client buffer; False on a socket error or when no buffer is left."""
        if self.front_buf is None:
            if self.phase == HEAD:
                return self._read_front_idle()
            if not self._front_buffer():
                return False
        buf = self.front_buf
        mv = self.front_mv
        assert buf is not None and mv is not None
        size = len(buf)
        if self.front_end == size and self.front_start:
            self._compact_front()
        end = self.front_end
        read = self.front.socket_read
        front_r = self.front_r
        while end < size:
            n, result = read(mv[end:])
            if result is _CONTINUE:
                end += n
                if end < size and not front_r.event & READ_HUP:
                    front_r.event &= ~READABLE  # a short read drained the socket
                    break
            elif result is _WOULD_BLOCK:
                front_r.event &= ~READABLE
                break
            elif result is _CLOSED:
                front_r.event &= ~READABLE
                front_r.interest &= ~READABLE
                self.front_eof = True
                break
            else:
                return False
        else:
            front_r.interest &= ~READABLE  # full: wait for the backend to take the bytes
        if end != self.front_end:
            self.bytes_in += end - self.front_end
            self.front_end = end
            self.front_timeout.last = self.timers.now  # touch()
            if self.phase == FORWARD and not self.req_done:
                self._feed_request_body()
        if self.front_eof and self.phase == FORWARD and self.req_body is not None \
                and not self.req_body.done:
            # the client ended its side inside the body: the request can never complete,
            # and the backend would hold its connection waiting for the rest
            self.metrics.incr("http.client_aborted")
            return False
        if self.phase == HEAD and self.front_end == self.front_start:
            self._release_front_buffer()
        return True

    def _compact_front(self) -> None:
        buf, mv = self.front_buf, self.front_mv
        assert buf is not None and mv is not None
        start, end = self.front_start, self.front_end
        buf[: end - start] = bytes(mv[start:end])
        self.req_fwd_end -= start
        self.front_start, self.front_end = 0, end - start

    def _front_pending(self) -> bool:
        return bool(self.front_out) or self.back_start < self.resp_fwd_end

    def _write_front(self) -> bool:
        front_r = self.front_r
        write = self.front.socket_write
        out = self.front_out
        if len(out) == 1 and self.back_start < self.resp_fwd_end:
            # a response head and the body bytes behind it: one system call for both
            head = memoryview(out[0])[self.front_out_pos :]
            assert self.back_mv is not None
            n, result = self.front.socket_write_vectored(
                (head, self.back_mv[self.back_start : self.resp_fwd_end])
            )
            if result is _CONTINUE:
                self.bytes_out += n
                head_len = len(head)
                if n >= head_len:
                    out.pop()
                    self.front_out_pos = 0
                    self.back_start += n - head_len
                    self.front_timeout.last = self.timers.now  # touch()
                else:
                    self.front_out_pos += n
            elif result is _WOULD_BLOCK:
                front_r.event &= ~WRITABLE
                return True
            else:
                return False
        while out:
            data = out[0]
            n, result = write(memoryview(data)[self.front_out_pos :])
            if result is _CONTINUE:
                self.bytes_out += n
                self.front_out_pos += n
                if self.front_out_pos >= len(data):
                    out.pop(0)
                    self.front_out_pos = 0
                continue
            if result is _WOULD_BLOCK:
                front_r.event &= ~WRITABLE
                return True
            return False
        mv = self.back_mv
        while self.back_start < self.resp_fwd_end:
            assert mv is not None
            n, result = write(mv[self.back_start : self.resp_fwd_end])
            if result is _CONTINUE:
                self.bytes_out += n
                self.back_start += n
                self.front_timeout.last = self.timers.now  # touch()
                continue
            if result is _WOULD_BLOCK:
                front_r.event &= ~WRITABLE
                return True
            return False
        front_r.interest &= ~WRITABLE
        resp = self.resp
        if (self.phase == FORWARD and not self.resp_done and resp is not None
                and not resp.is_informational):
            # only a final response has a body to go on with: after a relayed 1xx the
            # final head is still to come
            self._feed_response_body()
            if self.back_status == _CONNECTED and not self.back_eof:
                self.back_r.interest |= READABLE  # room again: resume reading the backend
        return True

    def _queue_front(self, data: bytes) -> None:
        self.front_out.append(data)
        self.front_r.interest |= WRITABLE  # arm_writable()
        self.front_r.event |= WRITABLE

    # -- requests -----------------------------------------------------------------------------
    def _parse_request(self) -> SessionResult | None:
        mv = self.front_mv
        assert mv is not None
        length = self.front_end - self.front_start
        view = mv[self.front_start : self.front_end]
        try:
            head = parse_request_head(view, length, self.head_last_len, self.config.limits)
        except ParseError as e:
            if e.status == 505 and self.config.h2c and not self.request_id \
                    and view[:16] == _H2_PREFACE_LINE:
                # HTTP/2 with prior knowledge (RFC 9113 §3.3) on a cleartext listener
                self.h2_preread = bytes(view)
                view.release()
                self.front_start = self.front_end
                return SessionResult.UPGRADE
            details = _parse_details(view, e.offset, "request head")
            view.release()
            self.head_last_len = 0
            self.metrics.incr("http.frontend_parse_errors")
            self._unparsed_request()
            details["CAPACITY"] = self.config.limits.max_head
            self._answer(e.status, message=e.reason, close=True, extra=details)
            self.phase = ANSWER
            self.front_start = self.front_end  # nothing more is read from this client
            self.front_r.interest &= ~READABLE
            return None
        if head is None:
            view.release()
            self.head_last_len = length
            return None
        self._request_parsed(head, view)
        return None

    def _request_parsed(self, head: RequestHead, view: memoryview) -> None:
        """A request head was read from ``view`` (released here): start its request."""
        self.head_last_len = 0
        self.req_started = self.timers.now
        self.request_id = new_request_id()
        self.metrics.incr("http.requests")
        try:
            self._start_request(head, view)
        finally:
            view.release()

    def _unparsed_request(self) -> None:
        """An answer to a head that never parsed (400, 408...) gets its own request id and
        no method or path: not those of the previous request on this connection."""
        self.request_id = new_request_id()
        self.req_started = self.timers.now
        self.method = self.path = self.authority = b""

    def _start_request(self, head: RequestHead, view: memoryview) -> None:
        config = self.config
        self.method = method = head.method
        target = head.target
        host_value = head.host or b""
        if host_value and host_value == self.authority:
            host, _port = self.host, self.host_port  # a client repeats its Host, mostly
        else:
            try:
                host, _port = split_host_port(host_value.decode("latin-1"))
            except ValueError:
                host, _port = "", None
            self.host, self.host_port = host, _port
        if target[:1] == b"/":
            path = target
        else:
            scheme_end = target.find(b"://")
            slash = target.find(b"/", scheme_end + 3) if scheme_end >= 0 else -1
            path = target[slash:] if slash >= 0 else b"/"
        self.authority = host_value
        self.path = path
        self.keep_alive = head.keep_alive and not self.server.shutting_down
        self.req_http10 = head.version_minor == 0
        self.upgrade_requested = head.upgrade is not None
        self.front_timeout.set(config.front_timeout)
        route = config.router.lookup(host, path.decode("latin-1"), method.decode("latin-1"))
        self.route = route
        self.front_start += head.length
        if head.body == BodyKind.CHUNKED:
            self.req_body = ChunkedDecoder(config.limits)
        elif head.body == BodyKind.LENGTH and head.content_length:
            self.req_body = LengthBody(head.content_length)
        else:
            self.req_body = None
        self.req_fwd_end = self.front_start
        self.req_body_sent = 0
        self.req_done = False
        if config.tls is not None and config.strict_sni_binding and host \
                and not self._certificate_names(host):
            self.cluster_id = None
            self.metrics.incr("http.421.errors")
            self._answer(421, message="the TLS certificate of this connection does not name "
                         "this host", close=False)
            return
        if route is None:
            self.cluster_id = None
            self.metrics.incr("http.404.errors")
            self._answer(404, message="no frontend matches this host and path", close=False)
            return
        if route.cluster_id is None:
            self.cluster_id = None
            self._answer(401, close=False)
            return
        self.cluster_id = route.cluster_id
        cluster = self.proxy.clusters.get(route.cluster_id)
        new_host = new_path = None
        rewrites = route.rewrites
        if rewrites is not None:
            new_host, new_path = rewrites.apply(host, path.decode("latin-1"))
            if new_host is not None and not valid_host(new_host):
                self._answer(400, message="the frontend's rewrite_host gives an invalid host",
                             close=False)
                return
        if not self._request_allowed(head, route, cluster, host, _port, path, new_host,
                                     new_path):
            return
        limit = config.max_body_size
        if cluster is not None and cluster.max_body_size is not None:
            limit = cluster.max_body_size
        if limit and self.req_body is not None:
            if head.body == BodyKind.LENGTH:
                if (head.content_length or 0) > limit:
                    self.metrics.incr("http.413.errors")
                    self._answer(413, message=f"the request body is over {limit} bytes",
                                 close=True)
                    return
            else:  # chunked: counted as it streams (a 413 while nothing was forwarded yet)
                self.req_body = ChunkedDecoder(replace(config.limits, max_body=limit))
        sticky = cluster is not None and cluster.sticky_session
        self.req_head = self._rewrite_request(head, view, route, sticky, new_host, new_path)
        self.phase = FORWARD
        self.resp = None
        self.resp_status = None
        self.resp_body = None
        self.resp_done = False
        self.resp_started = False
        self.resp_close_delimited = False
        self.connect_attempts = 0
        if self.req_body is not None:
            self._feed_request_body()
            if self.phase != FORWARD:
                return  # the body already in the buffer is invalid: answered, no backend
        else:
            self.req_done = True
        # read no further request until this one is answered (pipelining is served in order)
        if self.req_done:
            self.front_r.interest &= ~READABLE
        self._open_backend()

    def _request_allowed(
        self, head: RequestHead, route: HttpRoute, cluster: HttpCluster | None, host: str,
        port: int | None, path: bytes, new_host: str | None, new_path: str | None,
    ) -> bool:
        """Redirects, basic auth and the per-IP limit (``http_rules``); False: answered."""
        if route.redirect == "UNAUTHORIZED":
            self._answer(401, close=False)
            return False
        local_port = self.config.public_port(self._local_port())
        if port is None:
            port = local_port
        status = REDIRECT_STATUS.get(route.redirect)
        scheme = self.config.scheme
        if status is None and cluster is not None and cluster.https_redirect \
                and scheme == "http":
            status = 301
            location = redirect_location("USE_HTTPS", "http", host, port, path.decode("latin-1"),
                                         cluster.https_redirect_port)
        elif status is not None:
            https_port = cluster.https_redirect_port if cluster is not None else None
            rewrites = route.rewrites
            forced_port = rewrites.port if rewrites is not None else None
            if new_host is not None:
                # another host: the request's port is not its port; a port written in the
                # template is, unless rewrite_port says otherwise
                new_host, host_port = _split_authority(new_host)
                if forced_port is None:
                    forced_port = host_port
                port = None
            location = redirect_location(
                route.redirect_scheme, scheme, host if new_host is None else new_host,
                port, path.decode("latin-1") if new_path is None else new_path, https_port,
                forced_port=forced_port,
            )
        if status is not None:
            template = route.redirect_template if route.redirect != "FORWARD" else None
            self._answer(status, close=False, extra={"REDIRECT_LOCATION": location},
                         template=template)
            return False
        if route.required_auth:
            values = head.get(b"authorization")
            hashes = cluster.authorized_hashes if cluster is not None else []
            if len(values) != 1 or not check_basic_auth(values[0], hashes):
                realm = cluster.www_authenticate if cluster is not None else None
                self.metrics.incr("http.401.errors")
                self._answer(401, close=False,
                             extra={"WWW_AUTHENTICATE": www_authenticate(realm)})
                return False
        cluster_id = route.cluster_id
        assert cluster_id is not None
        return cluster_id in self.ip_clusters or self._acquire_ip_slot(cluster_id, cluster)

    def _acquire_ip_slot(self, cluster_id: str, cluster: HttpCluster | None) -> bool:
        """Count this connection against the cluster's per-IP limit; False: answered 429."""
        peer = self.session.peer_address
        ip = peer[0] if isinstance(peer, tuple) else ""
        if not self.proxy.ip_limiter.acquire(cluster_id, ip):
            self.metrics.incr("http.429.errors")
            retry = (cluster.retry_after if cluster is not None and cluster.retry_after
                     else self.proxy.retry_after)
            self._answer(429, close=True, extra={"RETRY_AFTER": retry})
            return False
        self.ip_clusters += (cluster_id,)
        return True

    def _feed_request_body(self) -> None:
        body = self.req_body
        if body is None:
            self.req_done = True
            return
        if self.req_fwd_end < self.front_end and not body.done:
            try:
                n = body.feed(self.front_mv, self.req_fwd_end, self.front_end)  # type: ignore[arg-type]
            except ParseError as e:
                self.metrics.incr("http.frontend_parse_errors")
                if self.req_body_sent or self.resp_started:
                    self.fatal = True  # part of this body reached the backend: cut both
                    return
                self._close_back(reusable=False)
                limits = body.limits if isinstance(body, ChunkedDecoder) else self.config.limits
                capacity = limits.max_body if e.status == 413 else limits.max_head
                self._answer(e.status, message=e.reason, close=True,
                             extra={"PHASE": "request body", "CAPACITY": capacity or ""})
                return
            self.req_fwd_end += n
        if body.done:
            self.req_done_reading()
        if self.back_status == _CONNECTED and self.req_fwd_end > self.front_start:
            self.back_r.interest |= WRITABLE  # arm_writable()
            self.back_r.event |= WRITABLE

    def req_done_reading(self) -> None:
        """The whole request body is in the buffer (maybe not sent yet)."""
        self.front_r.interest &= ~READABLE

    def _rewrite_request(
        self, head: RequestHead, buf: memoryview, route: HttpRoute, sticky: bool,
        new_host: str | None = None, new_path: str | None = None,
    ) -> bytes:
        config = self.config
        cache = config.constants
        mask = head.mask
        if (
            # the usual request: nothing of it is rewritten, only lines added (the general
            # path below gives the same bytes, after more tests)
            not mask & _TOUCHED_IDS
            and self.FAST_REQUESTS
            and route.rewrites is None
            and not route.request_deletes
            and not sticky
            and cache is not None
            and self.forwarding_src is cache
            and not config.elide_x_real_ip
            and not self.server.shutting_down
            and not (mask & 1 and cache.sozu_id_search(buf, head.head_start, head.length))
        ):
            request_id = self.request_id.encode()
            return b"".join((buf[head.head_start : head.length - 2], self.forwarding,
                             b"X-Request-Id: ", request_id, b"\r\n", cache.sozu_id, b": ",
                             request_id, b"\r\n", route.request_adds, b"\r\n"))
        spans = head.spans
        pieces: list[Any] = []
        cursor = head.head_start
        line_end_of_head = head.length - 2
        n = spans[6]
        deletes = route.request_deletes
        rewrites = route.rewrites
        host_line = b""
        if rewrites is not None:
            rewrite_port = rewrites.port
            if new_host is not None or rewrite_port is not None:
                # the backend sees the new authority; the client's goes to X-Forwarded-Host
                authority = new_host if new_host is not None else \
                    (head.host or b"").decode("latin-1")
                if rewrite_port is not None:
                    authority = _split_authority(authority)[0]
                    if ":" in authority:
                        authority = f"[{authority}]"
                    authority = f"{authority}:{rewrite_port}"
                host_line = b"Host: " + authority.encode("latin-1") + b"\r\n"
                deletes = deletes | {b"host", b"x-forwarded-host"}
                if head.host is not None:
                    host_line += b"X-Forwarded-Host: " + head.host + b"\r\n"
            if new_path is not None or (host_line and head.target_form == TargetForm.ABSOLUTE):
                # the request line carries the new path in origin form (an absolute-form
                # target would otherwise keep the old authority, which wins over Host)
                target = new_path if new_path is not None else self.path.decode("latin-1")
                pieces.append(buf[cursor : head.target_start])
                pieces.append(target.encode("latin-1"))
                cursor = head.target_end
        cache = config.constants
        if cache is None:
            cache = config.constants = _ListenerConstants(config, self._local_port())
        if self.forwarding_src is not cache:
            self.forwarding = self._forwarding_block(cache)
            self.forwarding_src = cache
        sticky_name = cache.sticky_name
        sozu_id = cache.sozu_id
        sozu_id_lower = cache.sozu_id_lower
        # which of the request's headers are rewritten: with none of them there (the common
        # case), the head is copied in one slice, no header walked
        touched = _TOUCHED_IDS
        if sticky:
            touched |= 1 << _H_COOKIE
        if config.elide_x_real_ip:
            touched |= 1 << _H_XREALIP
        shutting_down = self.server.shutting_down
        if shutting_down:
            touched |= 1 << _H_CONNECTION
        mask = head.mask
        walk = bool(
            deletes
            or mask & touched
            or (mask & 1 and cache.sozu_id_search(buf, head.head_start, head.length))
        )
        has_xfp = has_xfport = has_reqid = has_forwarded = False
        forwarded_added = False
        xff_added = False
        for i in range(n if walk else 0):
            base = 8 + 5 * i
            hid = spans[base]
            ns = spans[base + 1]
            line_end = spans[base + 6] if i + 1 < n else line_end_of_head
            if (
                hid == 0
                and not deletes
                and (
                    spans[base + 2] - ns != len(sozu_id)
                    or buf[ns : spans[base + 2]].tobytes().lower() != sozu_id_lower
                )
            ):
                continue  # a header the proxy does not touch
            name = buf[ns : spans[base + 2]].tobytes()
            lower = name.lower()
            value = buf[spans[base + 3] : spans[base + 4]].tobytes()
            replacement: bytes | None = None
            drop = False
            if lower in deletes or lower == sozu_id_lower:
                drop = True
            elif hid == _H_XFF:
                replacement = name + b": " + value + b", " + self._peer_ip() + b"\r\n"
                xff_added = True
            elif hid == _H_FORWARDED:
                has_forwarded = True
                replacement = name + b": " + value + b", " + self._forwarded_element() + b"\r\n"
                forwarded_added = True
            elif hid == _H_XFP:
                has_xfp = True
                continue
            elif hid == _H_XFPORT:
                has_xfport = True
                continue
            elif hid == _H_XREQID:
                has_reqid = True
                continue
            elif hid == _H_XREALIP and config.elide_x_real_ip:
                drop = True
            elif hid == _H_COOKIE and sticky:
                kept, found = _strip_cookie(value, sticky_name)
                if found is not None:
                    self.sticky_value = found
                if kept == value:
                    continue
                if kept:
                    replacement = name + b": " + kept + b"\r\n"
                else:
                    drop = True
            elif hid == _H_CONNECTION and shutting_down:
                replacement = name + b": close\r\n"
            else:
                continue
            pieces.append(buf[cursor:ns])
            if replacement is not None and not drop:
                pieces.append(replacement)
            cursor = line_end
        pieces.append(buf[cursor:line_end_of_head])
        if host_line:
            pieces.append(host_line)
        if not (xff_added or has_xfp or has_xfport or has_forwarded):
            pieces.append(self.forwarding)  # XFF, X-Forwarded-Proto/Port, Forwarded, X-Real-IP
        else:
            peer_ip = self._peer_ip()
            if not xff_added:
                pieces.append(b"X-Forwarded-For: " + peer_ip + b"\r\n")
            if not has_xfp:
                pieces.append(b"X-Forwarded-Proto: " + cache.proto + b"\r\n")
            if not has_xfport:
                pieces.append(cache.xfport)
            if not has_forwarded and not forwarded_added:
                pieces.append(b"Forwarded: " + self._forwarded_element() + b"\r\n")
            if cache.send_real_ip:
                pieces.append(b"X-Real-IP: " + peer_ip + b"\r\n")
        request_id = self.request_id.encode()
        if not has_reqid:
            pieces.append(b"X-Request-Id: " + request_id + b"\r\n")
        pieces.append(sozu_id + b": " + request_id + b"\r\n")
        if shutting_down and head.keep_alive:
            pieces.append(b"Connection: close\r\n")
        if route.request_adds:
            pieces.append(route.request_adds)
        pieces.append(b"\r\n")
        return b"".join(pieces)

    def _certificate_names(self, host: str) -> bool:
        """Strict SNI binding: whether the certificate served on this connection names
        ``host`` (RFC 9110 §7.4: otherwise 421, the client may retry elsewhere)."""
        front = self._tls_front()
        certificate = served_certificate(front.conn) if front is not None else None
        return certificate is not None and covers(certificate, host)

    def _tls_front(self) -> TlsSocketHandler | None:
        """The client's TLS connection, if it has one."""
        front = self.front
        return front if isinstance(front, TlsSocketHandler) else None

    def _hsts(self) -> Hsts | None:
        """The HSTS of the request in flight on an HTTPS listener: its frontend's, else the
        listener's; None when none applies."""
        route = self.route
        hsts = route.hsts if route is not None and route.hsts is not None else self.config.hsts
        return hsts if hsts is not None and hsts.line else None

    def _peer_ip(self) -> bytes:
        peer = self.session.peer_address
        return (peer[0] if isinstance(peer, tuple) else "unknown").encode()

    def _forwarding_block(self, cache: _ListenerConstants) -> bytes:
        """The forwarding headers of a request that carries none of its own (the common
        case), for this client: one bytes object per connection, no per-request work."""
        peer_ip = self._peer_ip()
        return (b"X-Forwarded-For: " + peer_ip + b"\r\nX-Forwarded-Proto: " + cache.proto + b"\r\n"
                + cache.xfport + b"Forwarded: " + self._forwarded_element() + b"\r\n"
                + (b"X-Real-IP: " + peer_ip + b"\r\n" if cache.send_real_ip else b""))

    def _forwarded_element(self) -> bytes:
        peer = self.session.peer_address
        peer_ip = peer[0] if isinstance(peer, tuple) else "unknown"
        peer_port = peer[1] if isinstance(peer, tuple) else 0
        config = self.config
        by = config.public_address or config.address
        by_host = by.rsplit(":", 1)[0]
        client = f"[{peer_ip}]:{peer_port}" if ":" in peer_ip else f"{peer_ip}:{peer_port}"
        return f'proto={config.scheme};for="{client}";by={by_host}'.encode()

    # -- backend connection -------------------------------------------------------------------
    def _open_backend(self) -> None:
        """Reuse the keep-alive backend connection of this cluster, or connect one."""
        if self._reusable_back():
            self.metrics.incr("backend.pool.hit")
            self._request_ready_for_backend()
            return
        self._close_back(reusable=False)
        if self._adopt_backend():
            if self._reusable_back():
                self.metrics.incr("backend.pool.hit")
                self._request_ready_for_backend()
                return
            self._close_back(reusable=False)
        self._connect()

    def _reusable_back(self) -> bool:
        backend = self.backend
        return (
            self.back_status == _CONNECTED
            and self.back_cluster == self.cluster_id
            and not self.back_eof
            and backend is not None
            # still in a cluster (every removal retires the backend object)
            and backend.status is _IN_SERVICE
            and (self.sticky_value is None or backend.sticky_id.encode() == self.sticky_value)
        )

    def _adopt_backend(self) -> bool:
        """Take an idle connection to the request's cluster from elsewhere (an HTTP/2
        stream takes one its connection parked); True when ``back_*`` now hold one."""
        return False

    def _connect(self) -> None:
        cluster_id = self.cluster_id
        assert cluster_id is not None
        upstreams = self.upstreams
        server = self.server
        while self.connect_attempts < CONNECT_ATTEMPTS:
            self.connect_attempts += 1
            try:
                if self.sticky_value is not None:
                    backend = upstreams.backends.backend_from_sticky_session(
                        cluster_id, self.sticky_value.decode("latin-1"))
                else:
                    backend = upstreams.backends.backend_from_cluster_id(cluster_id)
            except NoAvailableBackend:
                upstreams.no_backend(cluster_id)
                break
            try:
                sock = upstreams.open_socket(cluster_id, backend)
            except OSError as e:
                if e.errno not in NO_RESOURCES:
                    raise
                server.pause_accepts()
                break
            if sock is None:
                continue
            self.backend = backend
            self.back_sock = sock
            self.back = SocketHandler(sock)
            self.back_token = sock.fileno()
            self.back_cluster = cluster_id
            self.back_status = _CONNECTING
            tls_clusters = upstreams.backend_tls
            self.back_tls = tls_clusters.get(cluster_id) if tls_clusters else None
            self.back_eof = False
            self.back_r.event = NONE
            self.back_r.interest = WRITABLE | HUP | ERROR
            self.connect_started = server.now
            server.register(self.back_token, self.session, self.back_r.interest)
            self._backend_timeouts()
            self.connect_timeout.set()
            return
        self.metrics.incr(m.NO_BACKEND)
        if not upstreams.can_open_any(cluster_id):
            upstreams.no_backend(cluster_id)
        self._answer(503, message="no backend could take the request", close=False)

    def _backend_timeouts(self) -> None:
        """Give this session its own backend timers, on its first backend connection (a
        session that never opens one never pays for them); then nothing."""
        if self.back_timeout is not UNARMED:
            return
        config = self.config
        self.back_timeout = self._new_timeout(config.back_timeout, self._back_timed_out)
        self.connect_timeout = self._new_timeout(config.connect_timeout,
                                                 self._connect_timed_out)

    def _new_timeout(self, duration: float, callback: Callable[[], None]) -> Timeout:
        """One of this session's timers: a heap entry of the loop's (an HTTP/2 stream's
        machine makes polled ones instead, see ``StreamHttp``)."""
        return Timeout(self.timers, duration, callback)

    def _check_connect(self) -> bool:
        sock = self.back_sock
        backend = self.backend
        assert sock is not None and backend is not None and self.cluster_id is not None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._close_back(reusable=False)
            self.upstreams.backend_failed(self.cluster_id, backend)
            if self.phase == FORWARD:
                self._connect()
            return True
        if self.back_tls is not None:
            self._start_backend_tls(self.back_tls, sock)
            return True
        self.connect_timeout.cancel()
        self.back_status = _CONNECTED
        if self.cluster_id in self.upstreams.backend_h2:
            self.back = H2BackendHandler(sock)  # the backend speaks h2c: translated here
        self.upstreams.connected(self.cluster_id, backend, self.timers.now - self.connect_started)
        self.back_timeout.set(self.config.back_timeout)
        self._request_ready_for_backend()
        return True

    # -- TLS to the backend (protocols/tls_backend.py) ----------------------------------------
    def _start_backend_tls(self, tls: BackendTls, sock: socket.socket) -> None:
        """The TCP connect succeeded: start the client handshake, still bounded by the
        connect timeout; the request waits in ``req_head`` until it is done."""
        self.back_tls_conn = tls.connection(sock)
        self.back_status = _TLS_HANDSHAKE
        self.back_r.interest = READABLE | WRITABLE | HUP | ERROR
        self._backend_handshake()

    def _backend_handshake(self) -> None:
        """One step of the backend handshake: wait for the readiness OpenSSL wants, fail
        like a connect, or hand the connection to a ``TlsSocketHandler``."""
        conn = self.back_tls_conn
        tls = self.back_tls
        backend = self.backend
        sock = self.back_sock
        assert conn is not None and tls is not None and backend is not None and sock is not None
        back_r = self.back_r
        try:
            want = handshake_step(conn)
            if not want:
                tls.check_peer(conn, backend.sockaddr[0])
        except (SSL.Error, BackendTlsError) as exc:
            self._backend_tls_failed(exc)
            return
        if want:  # edge-triggered: wait for that edge only, so the pump does not spin
            back_r.event &= ~want
            back_r.interest = want | HUP | ERROR
            return
        self.back = TlsSocketHandler(conn, sock)
        self.back_tls_conn = None
        self.connect_timeout.cancel()
        self.back_status = _CONNECTED
        assert self.cluster_id is not None
        self.upstreams.connected(self.cluster_id, backend, self.timers.now - self.connect_started)
        self.back_timeout.set(self.config.back_timeout)
        self._request_ready_for_backend()
        # the request goes out now, and a record OpenSSL already holds gets read
        back_r.event |= READABLE | WRITABLE

    def _backend_tls_failed(self, exc: Exception) -> None:
        """A failed handshake or name check counts as a failed connect (circuit breaker,
        another backend while the request is untouched, 503 when none is left)."""
        self.metrics.incr(BACKEND_TLS_ERRORS)
        backend = self.backend
        log.info("TLS to backend %s failed: %s", backend.address if backend else "?",
                 exc if isinstance(exc, BackendTlsError) else repr(exc))
        self._close_back(reusable=False)
        if backend is not None and self.cluster_id is not None:
            self.upstreams.backend_failed(self.cluster_id, backend)
        if self.phase == FORWARD:
            self._connect()

    def _request_ready_for_backend(self) -> None:
        backend = self.backend
        assert backend is not None
        backend.active_requests += 1
        self.back_out = self.req_head
        self.back_out_pos = 0
        self.back_r.interest = READABLE | WRITABLE | HUP | ERROR
        self.back_r.interest |= WRITABLE  # arm_writable()
        self.back_r.event |= WRITABLE
        self.service_started = self.timers.now
        self.resp_last_len = 0

    def _close_back(self, *, reusable: bool) -> None:
        """Close the backend connection (``reusable``: keep it for the next request)."""
        if reusable:
            if self.backend is not None:
                self.backend.active_requests = max(0, self.backend.active_requests - 1)
            self.back_timeout.last = self.timers.now  # touch()
            self.back_r.interest = READABLE | HUP | ERROR  # notice if it closes while idle
            self._release_back_buffer()
            return
        self.connect_timeout.cancel()
        self.back_timeout.cancel()
        sock = self.back_sock
        if sock is not None:
            self.server.unregister(self.back_token)
            sock.close()
            backend = self.backend
            if backend is not None and self.back_cluster is not None:
                if self.back_status == _CONNECTED and self.phase == FORWARD:
                    backend.active_requests = max(0, backend.active_requests - 1)
                self.upstreams.connection_closed(self.back_cluster, backend)
        self.back_sock = None
        self.back = None
        self.back_tls_conn = None
        self.back_token = -1
        self.back_status = _NONE
        self.back_eof = False
        self.back_r.reset()
        self.back_start = self.back_end = self.resp_fwd_end = 0
        self._release_back_buffer(force=True)

    def _release_back_buffer(self, force: bool = False) -> None:
        if self.back_buf is not None and (force or self.back_start == self.back_end):
            assert self.back_mv is not None
            self.back_mv.release()
            self.pool.checkin(self.back_buf)
            self.back_buf = self.back_mv = None
            self.back_start = self.back_end = self.resp_fwd_end = 0

    def _backend_failed(self) -> bool:
        """The backend connection broke; False when the session must close."""
        if self.phase != FORWARD or self.cluster_id is None:
            self._close_back(reusable=False)
            return self.phase != FORWARD
        if self.resp_started:
            return False  # part of the response went out: only closing tells the client
        retry = self.req_body_sent == 0 and self.resp is None and self.back_end == self.back_start
        self._close_back(reusable=False)
        if retry and self.connect_attempts < CONNECT_ATTEMPTS:
            self._connect()
            return True
        self.metrics.incr("http.502.errors")
        self._answer(502, message="the backend closed the connection", close=True)
        return True

    # -- backend side -------------------------------------------------------------------------
    def _write_back(self) -> bool:
        back = self.back
        assert back is not None
        back_r = self.back_r
        out = self.back_out
        while self.back_out_pos < len(out):
            pos = self.back_out_pos
            # called on ``back`` (a SocketHandler): compiled, a native method call
            n, result = back.socket_write(memoryview(out)[pos:] if pos else out)
            if result is _CONTINUE:
                self.back_out_pos += n
                continue
            if result is _WOULD_BLOCK:
                back_r.event &= ~WRITABLE
                return True
            return False
        mv = self.front_mv
        while self.front_start < self.req_fwd_end:
            assert mv is not None
            n, result = back.socket_write(mv[self.front_start : self.req_fwd_end])
            if result is _CONTINUE:
                self.front_start += n
                self.req_body_sent += n
                self.back_timeout.last = self.timers.now  # touch()
                continue
            if result is _WOULD_BLOCK:
                back_r.event &= ~WRITABLE
                return True
            return False
        back_r.interest &= ~WRITABLE
        body = self.req_body
        if body is None or body.done:
            self.req_done = True
        elif not self.front_eof:
            self.front_r.interest |= READABLE  # the buffer drained: read more of the body
        if (
            self.phase == FORWARD
            and self.req_fwd_end == self.front_end == self.front_start
            and not self.req_done
        ):
            # everything read was forwarded: reuse the buffer from its start
            self.front_start = self.front_end = self.req_fwd_end = 0
        return True

    def _read_back(self) -> bool:
        """Read the backend; False when it failed or closed before the response ended."""
        if self.back_buf is None:
            buf = self.pool.checkout()
            if buf is None:
                self.metrics.incr(m.BUFFER_EXHAUSTED)
                return False
            self.back_buf = buf
            self.back_mv = memoryview(buf)
            self.back_start = self.back_end = 0
        buf, mv = self.back_buf, self.back_mv
        assert mv is not None
        size = len(buf)
        if self.back_end == size and self.back_start:
            start, end = self.back_start, self.back_end
            buf[: end - start] = bytes(mv[start:end])
            self.resp_fwd_end -= start
            self.back_start, self.back_end = 0, end - start
        end = self.back_end
        read = self.back.socket_read  # type: ignore[union-attr]
        back_r = self.back_r
        while end < size:
            n, result = read(mv[end:])
            if result is _CONTINUE:
                end += n
                if end < size and not back_r.event & READ_HUP:
                    back_r.event &= ~READABLE  # a short read drained the socket
                    break
            elif result is _WOULD_BLOCK:
                back_r.event &= ~READABLE
                break
            elif result is _CLOSED:
                back_r.event &= ~READABLE
                back_r.interest &= ~READABLE
                self.back_eof = True
                break
            else:
                back_r.interest &= ~READABLE
                self.back_eof = True
                break
        else:
            back_r.interest &= ~READABLE  # full: wait for the client to take the bytes
        if end != self.back_end:
            self.back_end = end
            self.back_timeout.last = self.timers.now  # touch()
        if self.phase != FORWARD:
            # an idle keep-alive connection: any byte or EOF ends it
            if self.back_eof or self.back_end != self.back_start:
                self._close_back(reusable=False)
            return True
        if self.resp is None and not self.resp_last_len and self.FAST_RESPONSES \
                and self._fast_response():
            return True
        while self.resp is None or self.resp.is_informational:
            if not self._parse_response():
                break
            if self.upgrade_to_pipe:
                return True
        if self.resp is not None and not self.resp.is_informational:
            self._feed_response_body()
        if self.back_eof:
            if self.resp is None:
                return False
            if self.resp_close_delimited:
                self.resp_done = True
            elif not self.resp_done:
                self.close_after = True  # truncated response: only closing can tell the client
                self.resp_done = True
        return True

    def _fast_response(self) -> bool:
        """The usual response, whole in the buffer (``h1.simple_response_head``: one
        Content-Length, keep-alive, final status) to a request with nothing special about
        its answer: rewritten and queued as ``_parse_response`` and ``_rewrite_response``
        would, without building a head, walking its headers or a body decoder. False, with
        nothing changed, for anything else: the general path takes it."""
        if self.req_http10 or not self.req_done or self.back_eof or self._response_closes():
            return False
        method = self.method
        route = self.route
        if method == b"HEAD" or method == b"CONNECT" or route is None \
                or route.response_deletes:
            return False
        config = self.config
        if config.tls is not None and self._hsts() is not None:
            return False
        cluster = self.proxy.clusters.get(self.cluster_id or "")
        if cluster is not None and cluster.sticky_session:
            return False
        mv = self.back_mv
        assert mv is not None
        start, end = self.back_start, self.back_end
        view = mv[start:end]
        try:
            simple = simple_response_head(view, end - start, config.limits)
            if simple is None:
                return False
            length, status, content_length, cut, cut_end = simple
            if length + content_length != end - start:
                return False  # more to read, or bytes after the body: the general path
            head = b"".join((view[:cut], view[cut_end : length - 2], self._id_line(),
                             b"\r\n", route.response_adds, b"\r\n"))
        finally:
            view.release()
        self._final_response(_SIMPLE_RESPONSE, status)
        self.resp_body = None
        self._queue_front(head)
        self.back_start = start + length
        self.resp_fwd_end = end
        self.resp_done = True
        return True

    def _final_response(self, head: ResponseHead, status: int) -> None:
        """The final response's head arrived: the response has started (from here a
        failure can only close the client connection)."""
        self.resp = head
        self.resp_status = status
        self.metrics.record_time("backend_response_time",
                                 self.timers.now - self.service_started, self.cluster_id)
        self.resp_started = True

    def _parse_response(self) -> bool:
        """Parse a response head if complete; True when one was consumed."""
        mv = self.back_mv
        assert mv is not None
        length = self.back_end - self.back_start
        if not length:
            return False
        view = mv[self.back_start : self.back_end]
        try:
            head = parse_response_head(
                view, length, self.resp_last_len, self.method, self.config.limits
            )
        except ParseError as e:
            details = _parse_details(view, e.offset, "response head")
            view.release()
            self.metrics.incr("http.backend_parse_errors")
            self._close_back(reusable=False)
            self._answer(502, message=f"invalid response from the backend: {e.reason}",
                         extra=details,
                         close=True)
            return False
        if head is None:
            view.release()
            self.resp_last_len = length
            return False
        self.resp_last_len = 0
        try:
            if head.is_informational:
                raw = view[: head.length].tobytes()
                self.back_start += head.length
                if head.status == 101 and self.upgrade_requested and head.upgrade is not None:
                    self.resp = head
                    self.resp_status = 101
                    self.back_start -= head.length  # the pipe relays the 101 itself
                    self.upgrade_to_pipe = True
                    self.front_r.interest |= WRITABLE  # arm_writable()
                    self.front_r.event |= WRITABLE
                    return True
                self._queue_front(raw)
                self.resp = None
                return True
            self._final_response(head, head.status)
            if head.body == BodyKind.CHUNKED:
                self.resp_body = ChunkedDecoder(self.config.limits, response=True)
            elif head.body == BodyKind.LENGTH and head.content_length:
                self.resp_body = LengthBody(head.content_length)
            elif head.body == BodyKind.CLOSE_DELIMITED:
                self.resp_body = None
                self.resp_close_delimited = True
                self.close_after = True
            else:
                self.resp_body = None
            if not head.keep_alive:
                self.close_back_after = True
            self._queue_front(self._rewrite_response(head, view))
            self.back_start += head.length
            self.resp_fwd_end = self.back_start
            if self.resp_body is None and not self.resp_close_delimited:
                self.resp_done = True
            return True
        finally:
            view.release()

    def _feed_response_body(self) -> None:
        if self.resp_close_delimited:
            self.resp_fwd_end = self.back_end
        else:
            body = self.resp_body
            if body is not None and not body.done and self.resp_fwd_end < self.back_end:
                try:
                    n = body.feed(self.back_mv, self.resp_fwd_end, self.back_end)  # type: ignore[arg-type]
                except ParseError:
                    self.metrics.incr("http.backend_parse_errors")
                    self.close_after = True
                    self.resp_done = True
                    self.back_eof = True
                    return
                self.resp_fwd_end += n
            if body is None or body.done:
                self.resp_done = True
        if self.resp_fwd_end > self.back_start:
            self.front_r.interest |= WRITABLE  # arm_writable()
            self.front_r.event |= WRITABLE

    def _response_closes(self) -> bool:
        """Whether the client connection ends with the response in flight (it then says
        ``Connection: close``)."""
        req_body = self.req_body
        return bool(
            self.close_after or not self.keep_alive or self.server.shutting_down
            # an early response (401, 417...) before the whole request body arrived: what
            # the client sends next is the rest of that body, never a new request
            or (req_body is not None and not req_body.done)
        )

    def _sozu_id_name(self) -> bytes:
        """The name of the request-id header the proxy adds (``Sozu-Id`` by default)."""
        cache = self.config.constants
        return cache.sozu_id if cache is not None else self.config.sozu_id_header.encode()

    def _id_line(self) -> bytes:
        """The line (without CRLF) that gives the client this request's id
        (``Sozu-Id: ...``)."""
        return self._sozu_id_name() + b": " + self.request_id.encode()

    def _rewrite_response(self, head: ResponseHead, buf: memoryview) -> bytes:
        config = self.config
        spans = head.spans
        n = spans[6]
        route = self.route
        closing = self._response_closes()
        deletes: frozenset[bytes] = route.response_deletes if route is not None else frozenset()
        hsts = self._hsts() if config.tls is not None else None
        if hsts is not None:
            if hsts.force_replace:
                deletes = deletes | _HSTS_NAME
            elif head.get(b"strict-transport-security"):
                hsts = None  # the backend's own wins
        # Connection is hop-by-hop (RFC 9110 §7.6.1): the backend's, and the fields it names,
        # describe the backend connection; the proxy says its own word on the client's below
        named = [t for t in head.connection_tokens if t != b"close" and t != b"keep-alive"]
        if named:
            deletes = deletes.union(named)
        pieces: list[Any] = []
        cursor = 0
        end_of_lines = head.length - 2
        # walk the headers only when one may go (most responses: copied in one slice, or cut
        # around the one Connection line a keep-alive backend sends)
        if deletes:
            dropped = [
                i for i in range(n)
                if spans[8 + 5 * i] in (_H_CONNECTION, _H_KEEP_ALIVE)
                or buf[spans[9 + 5 * i] : spans[10 + 5 * i]].tobytes().lower() in deletes
            ]
        elif head.mask & _HOP_BITS == _CONNECTION_ONCE:
            dropped = [spans[8::5].index(_H_CONNECTION)]  # the usual keep-alive response
        elif head.mask & _HOP_BITS:
            ids = spans[8::5]
            dropped = [i for i in range(n) if ids[i] in (_H_CONNECTION, _H_KEEP_ALIVE)]
        else:
            dropped = []
        for i in dropped:
            base = 8 + 5 * i
            pieces.append(buf[cursor : spans[base + 1]])
            cursor = spans[base + 6] if i + 1 < n else end_of_lines
        pieces.append(buf[cursor:end_of_lines])
        pieces.append(self._id_line() + b"\r\n")
        cluster = self.proxy.clusters.get(self.cluster_id or "")
        backend = self.backend
        if cluster is not None and cluster.sticky_session and backend is not None:
            sticky_id = backend.sticky_id.encode()
            if sticky_id != self.sticky_value:
                pieces.append(b"Set-Cookie: " + config.sticky_name.encode() + b"=" + sticky_id
                              + b"; Path=/\r\n")
        if route is not None and route.response_adds:
            pieces.append(route.response_adds)
        if hsts is not None:
            pieces.append(hsts.line)
        if closing:
            pieces.append(b"Connection: close\r\n")
            self.close_after = True
        elif self.req_http10:
            # an HTTP/1.0 client asked for keep-alive: it closes unless told otherwise
            pieces.append(b"Connection: keep-alive\r\n")
        pieces.append(b"\r\n")
        return b"".join(pieces)

    # -- end of a request ---------------------------------------------------------------------
    def _response_finished(self) -> bool:
        """The response went out entirely; False when the session must close."""
        self._log_request()
        resp = self.resp
        backend = self.backend
        reusable = (
            resp is not None
            and resp.keep_alive
            and not self.back_eof
            and not self.close_back_after
            and self.req_done
            and self.front_start == self.req_fwd_end
            # a removed backend drains: keeping its connection would delay its
            # REMOVED_BACKEND_HAS_NO_CONNECTIONS until this client's next request
            and backend is not None
            and backend.status is _IN_SERVICE
        )
        self.close_back_after = False
        self._close_back(reusable=reusable)
        if self.close_after or not self.keep_alive or (self.front_eof and not self._more_input()):
            return False
        self._next_request()
        return True

    def _more_input(self) -> bool:
        return self.front_end > self.front_start

    def _next_request(self) -> None:
        self.phase = HEAD
        self.route = None
        self.cluster_id = None
        self.sticky_value = None
        self.req_body = None
        self.req_head = self.back_out = b""  # an idle connection keeps no copy of the head
        self.resp = None
        self.resp_body = None
        self.resp_done = False
        self.resp_started = False
        self.bytes_in = self.bytes_out = 0
        self.front_timeout.set(self.config.request_timeout)
        if not self.front_eof:
            self.front_r.interest |= READABLE
        if self.front_end > self.front_start:
            self.front_r.signal_pending_read()
        else:
            self._release_front_buffer()

    def _log_request(self) -> None:
        status = self.resp_status
        metrics = self.metrics
        if status is not None:
            metrics.incr_scoped(_STATUS_CLASSES[status // 100 % 10], self.cluster_id)
        elapsed = self.timers.now - self.req_started
        metrics.record_time("request_time", elapsed, self.cluster_id)
        proxy = self.proxy
        if proxy.access_log is None:
            return
        backend = self.backend
        peer = self.session.peer_address
        protocol, sni, version, cipher, alpn = self._protocol_info()
        proxy.log_access(AccessRecord(
            request_id=self.request_id,
            protocol=protocol,
            client=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else None,
            backend_address=backend.address if backend is not None else None,
            cluster_id=self.cluster_id,
            backend_id=backend.backend_id if backend is not None else None,
            method=self.method.decode("latin-1"),
            authority=self.authority.decode("latin-1"),
            path=self.path.decode("latin-1"),
            status=status,
            request_time=elapsed,
            service_time=self.timers.now - self.service_started if self.service_started else None,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            tags=self.route.tags if self.route is not None else None,
            timestamp=time.time(),
            tls_version=version,
            tls_cipher=cipher,
            tls_sni=sni,
            tls_alpn=alpn,
        ))

    #: the access log's protocol: (cleartext, over TLS)
    PROTOCOL_NAMES: ClassVar[tuple[str, str]] = ("HTTP", "HTTPS")

    def _protocol_info(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        """(protocol, SNI, TLS version, cipher, ALPN) for the access log."""
        front = self._tls_front()
        if front is not None:
            sni, version, cipher, alpn = connection_info(front.conn)
            return self.PROTOCOL_NAMES[1], sni, version, cipher, alpn
        return self.PROTOCOL_NAMES[0], None, None, None, None

    # -- default answers ----------------------------------------------------------------------
    def _answer(
        self, status: int, *, message: str = "", close: bool = True,
        extra: dict[str, str | bytes | int] | None = None, template: Template | None = None,
    ) -> None:
        backend = self.backend
        variables: dict[str, str | bytes | int] = {
            "REQUEST_ID": self.request_id,
            "CLUSTER_ID": self.cluster_id or "",
            "BACKEND_ID": backend.backend_id if backend is not None else "",
            "ROUTE": self.path,
            "MESSAGE": message,
            "RETRY_AFTER": self.proxy.retry_after,
        }
        if extra:
            variables.update(extra)
        if status not in ANSWER_STATUSES:
            # a status with no template at all (none today): a plain answer
            data, closes = _plain_answer(status, self.request_id), True
        else:
            try:
                if template is not None:
                    data, closes = template.render(variables)
                else:
                    data, closes = self.config.answers.render(status, self.cluster_id, variables)
            except Exception:  # a broken template must not cost the client an answer
                log.exception("rendering the %d answer failed", status)
                data, closes = _plain_answer(status, self.request_id), True
        # an answer keeps the connection when the caller allows it (a routing decision, not an
        # error of the connection), the template does (Sōzu: no ``Connection: close`` and a
        # Content-Length) and the client does, and no request body is left to skip
        answer_close = close or closes or not self.keep_alive or self.req_body is not None
        if self.method == b"HEAD":
            # the head only (RFC 9110 §9.3.2), Content-Length included: a body here would be
            # read as the start of the next response
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                data = data[: end + 4]
        if not answer_close and self.req_http10:
            data = data.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n", 1)
        if self.config.tls is not None:
            hsts = self._hsts()
            if hsts is not None:
                data = data.replace(b"\r\n\r\n", b"\r\n" + hsts.line + b"\r\n", 1)
        self.resp_status = status
        self.front_out.clear()
        self.front_out_pos = 0
        self._queue_front(data)
        self.phase = ANSWER
        self.answer_close = answer_close
        self.front_r.interest &= ~READABLE
        self._log_request()

    # -- timeouts -----------------------------------------------------------------------------
    def _front_timed_out(self) -> None:
        session = self.session
        if not session.alive or session.state is not self:
            return
        self.metrics.incr(m.FRONT_TIMEOUT)
        if self.phase == HEAD and self.front_end > self.front_start:
            self._unparsed_request()
            self._answer(408, message="the request took too long to arrive", close=True,
                         extra={"DURATION": f"{self.config.request_timeout:g}s"})
            self.front_timeout.set()
            self.server.run_session(session)
        else:
            self.server.kill_session(session)

    def _back_timed_out(self) -> None:
        session = self.session
        if not session.alive or session.state is not self:
            return
        if self.phase != FORWARD:
            self._close_back(reusable=False)  # an idle keep-alive backend connection
            return
        self.metrics.incr(m.BACK_TIMEOUT)
        if self.resp_started:
            self.server.kill_session(session)
            return
        self._close_back(reusable=False)
        self._answer(504, message="the backend did not answer in time", close=True)
        self.server.run_session(session)

    def _connect_timed_out(self) -> None:
        session = self.session
        if not session.alive or not self.back_status & _OPENING or self.cluster_id is None:
            return
        self.metrics.incr(m.CONNECT_TIMEOUT)
        if self.back_status == _TLS_HANDSHAKE:
            self.metrics.incr(BACKEND_TLS_ERRORS)
        backend = self.backend
        self._close_back(reusable=False)
        if backend is not None:
            self.upstreams.backend_failed(self.cluster_id, backend)
        self._connect()
        self.server.run_session(session)

    # -- lifecycle ----------------------------------------------------------------------------
    def upgrade(self, session: Any) -> SessionState | None:
        """After a 101: the connection becomes a byte pipe (WebSocket); after HTTP/2's
        preface: the HTTP/2 state, fed what was read."""
        if self.h2_preread is not None:
            from .http2 import Http2  # http2 builds on this module

            self.front_timeout.cancel()
            self._release_front_buffer()
            return Http2(session, self.proxy, self.config, self.h2_preread)
        if not self.upgrade_to_pipe or self.back is None or self.back_buf is None:
            return None
        if not self._front_buffer():
            return None
        assert self.front_buf is not None
        self.connect_timeout.cancel()
        self.front_timeout.set(self.config.front_timeout)
        self.back_timeout.set(self.config.back_timeout)
        pipe = Pipe(
            self.front,
            self.front_token,
            self.front_r,
            self.back,
            self.back_token,
            self.back_r,
            self.front_buf,
            self.back_buf,
            to_back_start=self.front_start,
            to_back_end=self.front_end,
            to_front_start=self.back_start,
            to_front_end=self.back_end,
            front_timeout=self.front_timeout,
            back_timeout=self.back_timeout,
        )
        pipe.on_close = self._pipe_closed
        assert self.front_mv is not None and self.back_mv is not None
        self.front_mv.release()
        self.back_mv.release()
        self.front_buf = self.back_buf = None
        self.front_mv = self.back_mv = None
        self._log_request()
        self.metrics.gauge_add("protocol.ws", 1)
        return pipe

    def _pipe_closed(self, session: Any, pipe: Pipe) -> None:
        """The pipe that replaced this state closes: release what this state still owns."""
        self._release_ip_slots()
        self.metrics.gauge_add("protocol.ws", -1)
        self.front_timeout.close()
        self.back_timeout.close()
        self.connect_timeout.close()
        pool = self.pool
        pool.checkin(pipe.to_back)
        pool.checkin(pipe.to_front)
        if self.back_sock is not None:
            self.server.unregister(self.back_token)
            self.back_sock.close()
            if self.backend is not None and self.back_cluster is not None:
                self.upstreams.connection_closed(self.back_cluster, self.backend)
            self.back_sock = None

    def shutting_down(self, session: Any) -> bool:
        """Soft stop: an idle keep-alive client can go; one in a request finishes it first,
        and a new one gets its first request served (it may be on its way: the connection
        was accepted before the listener closed, bounded by the request timeout)."""
        if self.phase == HEAD and self.front_end == self.front_start and self.request_id:
            return True
        self.keep_alive = False
        return False

    def _release_ip_slots(self) -> None:
        if not self.ip_clusters:
            return
        peer = self.session.peer_address
        ip = peer[0] if isinstance(peer, tuple) else ""
        for cluster_id in self.ip_clusters:
            self.proxy.ip_limiter.release(cluster_id, ip)
        self.ip_clusters = ()

    def close(self, session: Any) -> None:
        self._release_ip_slots()
        self.front_timeout.close()
        self.back_timeout.close()
        self.connect_timeout.close()
        if self.back_sock is not None or self.back_buf is not None:
            self._close_back(reusable=False)
        if self.front_buf is not None:
            assert self.front_mv is not None
            self.front_mv.release()
            self.pool.checkin(self.front_buf)
            self.front_buf = self.front_mv = None

    def print_state(self) -> str:
        return (f"Http(phase={self.phase}, front={self.front_r}, back={self.back_r}, "
                f"cluster={self.cluster_id})")


#: Reason phrases (RFC 9110) of the statuses the parser may ask for without a template.
#: (Not from the stdlib ``http`` module: a script named ``http.py`` would shadow it.)
_REASONS = {
    400: "Bad Request", 413: "Content Too Large", 414: "URI Too Long",
    431: "Request Header Fields Too Large", 501: "Not Implemented",
    502: "Bad Gateway", 505: "HTTP Version Not Supported",
}


def _printable(data: bytes) -> str:
    """Bytes as text a page can show: printable ASCII as is, CR LF kept, the rest ``\\xNN``."""
    return "".join(
        chr(b) if 32 <= b < 127 or b in (10, 13) else f"\\x{b:02x}" for b in data
    )


def _parse_details(view: memoryview, offset: int | None, phase: str) -> dict[str, Any]:
    """Sōzu's parse-error placeholders: the whole lines parsed before the error (their last
    512 bytes), the start of the line it is in, and up to 64 bytes from the offending one."""
    details: dict[str, Any] = {"PHASE": phase}
    if offset is None or not 0 <= offset <= len(view):
        return details
    data = view[: min(len(view), offset + 64)].tobytes()
    line_start = data.rfind(b"\n", 0, offset) + 1
    details["SUCCESSFULLY_PARSED"] = _printable(data[max(0, line_start - 512) : line_start])
    details["PARTIALLY_PARSED"] = _printable(data[line_start:offset])
    details["INVALID"] = _printable(data[offset:])
    return details


def _plain_answer(status: int, request_id: str) -> bytes:
    """A minimal closing answer for a status without a template."""
    reason = _REASONS.get(status, "Error")
    body = f"{status} {reason}\n".encode()
    sozu_id = f"Sozu-Id: {request_id}\r\n" if request_id else ""
    return (
        f"HTTP/1.1 {status} {reason}\r\nCache-Control: no-cache\r\nConnection: close\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        f"{sozu_id}\r\n"
    ).encode() + body


def _split_authority(authority: str) -> tuple[str, int | None]:
    """``(host, port or None)`` of a rewritten authority; an IPv6 literal loses its brackets."""
    if authority.startswith("["):
        close = authority.find("]")
        if close > 0:
            rest = authority[close + 1 :]
            port = int(rest[1:]) if rest[:1] == ":" and rest[1:].isdigit() else None
            return authority[1:close], port
        return authority, None
    host, sep, port_text = authority.rpartition(":")
    if sep and port_text.isdigit() and ":" not in host:
        return host, int(port_text)
    return authority, None


def _strip_cookie(value: bytes, name: bytes) -> tuple[bytes, bytes | None]:
    """Remove the ``name=...`` crumb from a Cookie value; (remaining value, crumb value)."""
    found: bytes | None = None
    kept: list[bytes] = []
    for crumb in value.split(b";"):
        crumb = crumb.strip()
        if not crumb:
            continue
        key, _, val = crumb.partition(b"=")
        if key.strip() == name and found is None:
            found = val.strip()
        else:
            kept.append(crumb)
    return b"; ".join(kept), found


__all__ = [
    "HeaderEdit",
    "Http",
    "HttpCluster",
    "HttpListenerConfig",
    "HttpProxy",
    "HttpRoute",
    "HttpSession",
    "new_request_id",
]
