"""TLS termination as a session state: contexts, the TLS socket handler, the handshake.

Sōzu's ``lib/src/protocol/rustls.rs`` (``TlsHandshake``) and ``lib/src/tls.rs``, over
pyOpenSSL. HTTPS listeners (``protocols/http.py``) start their sessions here; a custom
listener handler can chain ``TlsHandshake`` before its own state the same way.

Theory of operation
-------------------
**Contexts.** :func:`server_context` makes an ``SSL.Context`` serving one
:class:`~pysozu.protocols.certificates.Certificate`, with the listener's TLS settings
(:class:`TlsSettings`: versions, TLS 1.2 cipher list, TLS 1.3 suites, ALPN). The listener's
*base* context carries a servername callback: at the ClientHello it asks the
:class:`~pysozu.protocols.certificates.CertificateResolver` for the SNI's certificate and
switches the connection to that certificate's cached context, so certificates change for
the next handshake without touching established connections.

**Handshake state.** :class:`TlsHandshake` (rank 20: after the PROXY protocol, before HTTP)
wraps the client socket in an ``SSL.Connection`` and calls ``do_handshake`` on every
readiness event. ``WantReadError``/``WantWriteError`` wait for the socket; success replaces
the session's frontend handler by a :class:`TlsSocketHandler` and upgrades to the next state
(given as a factory). A ClientHello that is not TLS, a protocol the settings refuse, or a
client that leaves mid-handshake closes the session and counts ``tls.handshake.errors``; the
handshake is bounded by a timeout.

**Listeners.** :class:`ListenerTls` bundles an HTTPS listener's settings, its
:class:`~pysozu.protocols.certificates.CertificateResolver` and the base context; new
settings make a new base context and drop the per-certificate ones, so they apply to the
next handshakes only. :meth:`TlsSettings.from_fields` maps Sōzu's names (versions, rustls
suite names) to OpenSSL's and refuses, one by one, the names OpenSSL would not use. A
successful handshake records its time, version, cipher, ALPN and resumption in metrics.

**Reads.** :meth:`TlsSocketHandler.socket_read` keeps reading until the caller's buffer is
full or OpenSSL wants more bytes from the socket. A short read therefore still means "the
socket is drained", which the edge-triggered HTTP state relies on: OpenSSL reads one record
at a time, so stopping after one record could leave the next in the kernel with no new
event to say so.

**Calls.** The handshake, reads, writes and ``close_notify`` call libssl through
pyOpenSSL's own cffi bindings (``_lib``), not its ``Connection`` methods: those check three
callback helpers and map the result to an exception on every call, successful or not (a
``WantReadError`` per handshake step, a ``ZeroReturnError`` per close), and ``recv_into``
reads into a fresh C buffer and copies it. Here the usual results (done, want read, want
write, close_notify) are told from ``SSL_get_error`` directly and reads go straight into the
caller's buffer; any other result goes to ``Connection._raise_ssl_error``, so errors (a
callback's, a system call's, a protocol alert) are exactly pyOpenSSL's. pyOpenSSL's
``_lib`` also serves where it has no public API (groups, signature algorithms).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL.SSL import _ffi, _lib  # type: ignore[attr-defined]  # see "Calls" above

from pysozu.reactor.readiness import ERROR, HUP, READABLE, WRITABLE
from pysozu.reactor.session import (
    FrontReadinessState,
    SessionResult,
    SessionState,
    SocketHandler,
    SocketResult,
    StateMachineSession,
    StateResult,
)

from .certificates import Certificate, CertificateError, CertificateResolver

__all__ = [
    "ListenerTls",
    "TlsHandshake",
    "TlsSettings",
    "TlsSocketHandler",
    "base_context",
    "connection_info",
    "server_context",
]

log = logging.getLogger("pysozu.tls")

HANDSHAKE_ERRORS = "tls.handshake.errors"

_VERSIONS = {
    "TLS_V1_2": SSL.TLS1_2_VERSION,
    "TLS_V1_3": SSL.TLS1_3_VERSION,
    "TLS1.2": SSL.TLS1_2_VERSION,
    "TLS1.3": SSL.TLS1_3_VERSION,
}
#: Sōzu's default TLS 1.2 list (ECDHE with AES-GCM or ChaCha20, ECDSA then RSA): forward
#: secret AEAD suites only, so CBC, RC4, 3DES and static-RSA clients are refused
DEFAULT_CIPHER_LIST = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
)
#: Sōzu's TLS 1.3 order
DEFAULT_CIPHER_SUITES = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
#: Sōzu's key exchange groups; those the linked OpenSSL lacks are skipped
DEFAULT_GROUPS = ("X25519MLKEM768", "x25519", "P-256", "P-384")
#: rustls suite names (what Sōzu's configuration holds) -> OpenSSL names
_RUSTLS_SUITES = {
    "TLS13_AES_256_GCM_SHA384": "TLS_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256": "TLS_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}


def _supported_groups(names: Sequence[str]) -> list[str]:
    probe = SSL.Context(SSL.TLS_SERVER_METHOD)
    return [n for n in names if _lib.SSL_CTX_set1_curves_list(probe._context, n.encode()) == 1]


@dataclass(frozen=True)
class TlsSettings:
    """A listener's TLS parameters (Sōzu's ``HttpsListenerConfig`` TLS fields), in OpenSSL's
    terms; :meth:`from_fields` maps Sōzu's names and refuses what OpenSSL would not use."""

    versions: tuple[str, ...] = ("TLS1.2", "TLS1.3")
    #: TLS 1.2 suites, an OpenSSL cipher string
    cipher_list: str = DEFAULT_CIPHER_LIST
    #: TLS 1.3 suites, an OpenSSL ciphersuites string
    cipher_suites: str = DEFAULT_CIPHER_SUITES
    #: key exchange groups in order of preference (empty: :data:`DEFAULT_GROUPS`)
    groups: tuple[str, ...] = ()
    #: signature algorithms (empty: OpenSSL's defaults)
    signature_algorithms: tuple[str, ...] = ()
    alpn_protocols: tuple[str, ...] = ("h2", "http/1.1")
    #: serve HTTP/2 only: ``http/1.1`` is not offered, and a client without ALPN is refused
    disable_http11: bool = False
    #: stateless session tickets (resumption); off with Sōzu's ``send_tls13_tickets = 0``
    tickets: bool = True

    def version_range(self) -> tuple[int, int]:
        unknown = [v for v in self.versions if v not in _VERSIONS]
        if unknown or not self.versions:
            raise ValueError(
                f"TLS versions {unknown or '[]'} not supported (TLS 1.2 and TLS 1.3 only)"
            )
        codes = sorted(_VERSIONS[v] for v in self.versions)
        return codes[0], codes[-1]

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> TlsSettings:
        """Settings from ADD_HTTPS_LISTENER fields (Sōzu's names); ``ValueError`` names the
        first value that cannot be used."""
        tls12: list[str] = []
        tls13: list[str] = []
        for name in fields.get("cipher_list") or ():
            openssl = _RUSTLS_SUITES.get(name, name)
            (tls13 if openssl.startswith("TLS_") else tls12).append(openssl)
        tls13.extend(_RUSTLS_SUITES.get(n, n) for n in fields.get("cipher_suites") or ())
        settings = cls(
            versions=tuple(fields.get("versions") or ("TLS_V1_2", "TLS_V1_3")),
            cipher_list=":".join(tls12) if tls12 else DEFAULT_CIPHER_LIST,
            cipher_suites=":".join(tls13) if tls13 else DEFAULT_CIPHER_SUITES,
            groups=tuple(fields.get("groups_list") or ()),
            signature_algorithms=tuple(fields.get("signature_algorithms") or ()),
            alpn_protocols=tuple(fields.get("alpn_protocols") or ("h2", "http/1.1")),
            disable_http11=bool(fields.get("disable_http11")),
            tickets=fields.get("send_tls13_tickets", 4) != 0,
        )
        settings.check(tls12, tls13)
        return settings

    def check(self, tls12: Sequence[str] = (), tls13: Sequence[str] = ()) -> None:
        """Refuse a version, suite, group or algorithm OpenSSL does not know, by name (a
        whole list would otherwise pass with one good name in it)."""
        old = [v for v in self.versions if v not in _VERSIONS]
        if old:
            raise ValueError(f"TLS versions {', '.join(old)} are refused: TLS 1.2 and 1.3 only")
        self.version_range()
        probe = SSL.Context(SSL.TLS_SERVER_METHOD)
        for name in tls12:
            try:
                probe.set_cipher_list(name.encode())
            except SSL.Error:
                raise ValueError(f"unknown TLS 1.2 cipher {name!r}") from None
        for name in tls13:
            try:
                probe.set_tls13_ciphersuites(name.encode())
            except SSL.Error:
                raise ValueError(f"unknown TLS 1.3 cipher suite {name!r}") from None
        for group in self.groups:
            if not _supported_groups([group]):
                raise ValueError(f"unknown key exchange group {group!r}")
        for algorithm in self.signature_algorithms:
            if _lib.SSL_CTX_set1_sigalgs_list(probe._context, algorithm.encode()) != 1:
                raise ValueError(f"unknown signature algorithm {algorithm!r}")
        _configure(probe, self)


def _configure(context: SSL.Context, settings: TlsSettings) -> None:
    low, high = settings.version_range()
    context.set_min_proto_version(low)
    context.set_max_proto_version(high)
    # a client that half-closes TCP without close_notify still gets its answer: OpenSSL 3
    # otherwise reports that EOF as an error and the request in flight would be lost
    options = (SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE
               | SSL.OP_IGNORE_UNEXPECTED_EOF)
    if not settings.tickets:
        options |= SSL.OP_NO_TICKET
    context.set_options(options)
    # an idle connection gives its record buffers back (pyOpenSSL already sets partial and
    # moving-buffer writes, which the non-blocking writers rely on)
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    context.set_cipher_list(settings.cipher_list.encode())
    context.set_tls13_ciphersuites(settings.cipher_suites.encode())
    groups = _supported_groups(settings.groups or DEFAULT_GROUPS)
    if groups:
        _lib.SSL_CTX_set1_curves_list(context._context, ":".join(groups).encode())
    if settings.signature_algorithms:
        _lib.SSL_CTX_set1_sigalgs_list(
            context._context, ":".join(settings.signature_algorithms).encode()
        )
    offered = [p.encode() for p in settings.alpn_protocols
               if not (settings.disable_http11 and p == "http/1.1")]
    if offered:
        def select(conn: SSL.Connection, protocols: list[bytes]) -> bytes:
            for protocol in offered:  # the server's order of preference, as Sōzu
                if protocol in protocols:
                    return protocol
            # none spoken here: a fatal no_application_protocol alert (RFC 7301 §3.2)
            return b""

        context.set_alpn_select_callback(select)


def server_context(certificate: Certificate, settings: TlsSettings) -> SSL.Context:
    """A context serving ``certificate`` (and its chain) with ``settings``."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    _configure(context, settings)
    context.use_certificate(x509.load_pem_x509_certificate(certificate.certificate_pem.encode()))
    key = serialization.load_pem_private_key(certificate.key_pem.encode(), password=None)
    context.use_privatekey(key)  # type: ignore[arg-type]
    for pem in certificate.chain_pem:
        context.add_extra_chain_cert(x509.load_pem_x509_certificate(pem.encode()))
    context.check_privatekey()
    return context


def base_context(resolver: CertificateResolver, settings: TlsSettings) -> SSL.Context:
    """The context a listener's connections start with, serving no certificate: at the
    ClientHello its servername callback switches each connection to the context of the
    certificate the SNI resolves to (or the default one); with none the handshake fails."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    _configure(context, settings)
    _route_servername(context, resolver)
    return context


class Served:
    """What the servername callback chose for a connection (its ``app_data``)."""

    __slots__ = ("certificate", "named", "sni")

    def __init__(self, certificate: Certificate, sni: bool, named: bool) -> None:
        self.certificate = certificate
        #: the client sent a server name
        self.sni = sni
        #: the certificate names it (False: the default certificate stood in)
        self.named = named


def served_certificate(conn: SSL.Connection) -> Certificate | None:
    """The certificate the servername callback chose for ``conn`` (None: none fitted)."""
    served = conn.get_app_data()
    return served.certificate if isinstance(served, Served) else None


def _route_servername(context: SSL.Context, resolver: CertificateResolver) -> None:
    """Make ``context`` a starting context: its servername callback picks each connection's
    certificate, and the sessions it keeps (cache, ticket keys) serve every certificate."""
    # sessions belong to the first context, whatever certificate's context a connection
    # switches to: resumption works across certificates
    context.set_session_id(b"pysozu")

    def on_servername(conn: SSL.Connection) -> None:
        raw = conn.get_servername()
        name = raw.decode("ascii", "replace") if raw else None
        certificate, named = resolver.resolve_named(name)
        if certificate is not None:
            target = resolver.context(certificate)
            if target is not conn.get_context():
                # a switch copies the certificate data into the connection: skipped when it
                # already starts on that certificate's context (the listener's default)
                conn.set_context(target)
            # the served names, for strict SNI binding; the rest for the handshake metrics
            conn.set_app_data(Served(certificate, name is not None, named))

    context.set_tlsext_servername_callback(on_servername)


class ListenerTls:
    """The TLS side of an HTTPS listener: its settings, its certificates (the resolver,
    whose contexts are made with the settings) and the context handshakes start on.

    With a default certificate, handshakes start on that certificate's own context, so the
    connections it serves (no SNI, unknown names, its own names) need no context switch;
    without one they start on a bare base context. Either way the servername callback
    moves each connection to its certificate's context. New settings (UPDATE_HTTPS_LISTENER)
    drop every context: the next handshakes use new ones, established connections keep
    theirs. A new default certificate also changes the starting context, and with it the
    session cache and ticket keys (earlier sessions are then not resumed).
    """

    __slots__ = ("_added", "_start", "_start_for", "resolver", "settings")

    def __init__(self, settings: TlsSettings) -> None:
        self.settings = settings
        self._added: set[str] = set()
        self.resolver = CertificateResolver(self._context_for)
        self._start: SSL.Context | None = None
        self._start_for: str | None = None

    @property
    def context(self) -> SSL.Context:
        """The starting context of new connections (made again when the default changes)."""
        default = self.resolver.default
        start = self._start
        if start is None or default != self._start_for:
            certificate = self.resolver.by_fingerprint.get(default) if default else None
            if certificate is None:
                start = base_context(self.resolver, self.settings)
            else:
                start = self.resolver.context(certificate)
                _route_servername(start, self.resolver)
            self._start, self._start_for = start, default
        return start

    def _context_for(self, certificate: Certificate) -> SSL.Context:
        return server_context(certificate, self.settings)

    def check(self, certificate: Certificate, settings: TlsSettings | None = None) -> None:
        """Make a context for ``certificate`` once, so that what OpenSSL refuses (a key
        type, a chain) is a :class:`CertificateError` now rather than failed handshakes."""
        try:
            server_context(certificate, settings or self.settings)
        except SSL.Error as exc:
            raise CertificateError(f"OpenSSL refuses this certificate: {exc}") from None

    def set_default(self, certificate: Certificate) -> None:
        """Serve ``certificate`` to names no other certificate has (and to clients without
        SNI), in place of the previous default (which stays if it was also added)."""
        resolver = self.resolver
        old = resolver.default
        resolver.add(certificate)
        resolver.default = certificate.fingerprint
        if old is not None and old != certificate.fingerprint and old not in self._added:
            resolver.remove(old)

    # A certificate is in the resolver while it is the default or was added (ADD_CERTIFICATE):
    # the same one may be both, and dropping one role must keep it for the other.
    def add(self, certificate: Certificate) -> None:
        self.resolver.add(certificate)
        self._added.add(certificate.fingerprint)

    def remove(self, fingerprint: str) -> None:
        if fingerprint not in self._added:
            raise CertificateError(f"no certificate with fingerprint {fingerprint}")
        self._added.discard(fingerprint)
        if fingerprint != self.resolver.default:
            self.resolver.remove(fingerprint)

    def replace(self, old_fingerprint: str, certificate: Certificate) -> None:
        if old_fingerprint not in self._added:
            raise CertificateError(f"no certificate with fingerprint {old_fingerprint}")
        if certificate.fingerprint in self._added and certificate.fingerprint != old_fingerprint:
            raise CertificateError(
                f"the new certificate {certificate.fingerprint} is already there")
        self.add(certificate)
        if old_fingerprint != certificate.fingerprint:
            self.remove(old_fingerprint)

    def set_settings(self, settings: TlsSettings) -> None:
        self.settings = settings
        self.resolver.clear_contexts()
        self._start = None


def connection_info(conn: SSL.Connection) -> tuple[str | None, str | None, str | None, str | None]:
    """(SNI, version, cipher, ALPN) of an established connection, for logs."""
    raw = conn.get_servername()
    alpn = conn.get_alpn_proto_negotiated()
    return (
        raw.decode("ascii", "replace") if raw else None,
        conn.get_protocol_version_name(),
        conn.get_cipher_name(),
        alpn.decode("ascii", "replace") if alpn else None,
    )


#: the largest write made of several buffers joined (one TLS record's payload)
_JOIN_LIMIT = 16384
#: (version number, cipher, ALPN) -> the counter names a handshake increments, made once.
#: The cipher is OpenSSL's pointer to its static ``SSL_CIPHER`` (cffi pointers hash by
#: address): reading two numbers is much cheaper than pyOpenSSL's name getters.
_HANDSHAKE_METRICS: dict[tuple[int, Any, bytes | None], tuple[str, ...]] = {}


_SSL_read = _lib.SSL_read
_SSL_write = _lib.SSL_write
_SSL_get_error = _lib.SSL_get_error
_SSL_do_handshake = _lib.SSL_do_handshake
_SSL_shutdown = _lib.SSL_shutdown
_ERR_clear_error = _lib.ERR_clear_error
_from_buffer = _ffi.from_buffer
_WANT_READ = _lib.SSL_ERROR_WANT_READ
_WANT_WRITE = _lib.SSL_ERROR_WANT_WRITE
_ZERO_RETURN = _lib.SSL_ERROR_ZERO_RETURN
_WANT_IO = frozenset((_WANT_READ, _WANT_WRITE))
_SSL_get0_alpn_selected = _lib.SSL_get0_alpn_selected


def _ssl_failure(conn: SSL.Connection, ssl: Any, rc: int) -> SocketResult:
    """What a failed ``SSL_read`` or ``SSL_write`` means for the caller (WOULD_BLOCK,
    CLOSED or ERROR), through pyOpenSSL's own error mapping (see "Calls" above)."""
    try:
        conn._raise_ssl_error(ssl, rc)
    except (SSL.WantReadError, SSL.WantWriteError):
        return SocketResult.WOULD_BLOCK
    except SSL.ZeroReturnError:  # close_notify
        return SocketResult.CLOSED
    except SSL.SysCallError as exc:
        # (-1, 'Unexpected EOF'): the peer closed without close_notify
        return SocketResult.CLOSED if exc.args and exc.args[0] == -1 else SocketResult.ERROR
    except SSL.Error:
        return SocketResult.ERROR
    return SocketResult.CLOSED  # SSL_read gave 0 with no error: the stream ended


class TlsSocketHandler(SocketHandler):
    """Non-blocking byte I/O through an ``SSL.Connection`` (see "Reads" and "Calls"
    above)."""

    __slots__ = ("alpn", "conn", "ssl")

    def __init__(self, conn: SSL.Connection, sock: Any, alpn: bytes | None = None) -> None:
        super().__init__(sock)
        self.conn = conn
        self.ssl = conn._ssl
        #: the protocol ALPN selected in the handshake (read once, by ``TlsHandshake``)
        self.alpn = alpn

    def socket_read(self, buf: memoryview) -> tuple[int, SocketResult]:
        ssl = self.ssl
        size = len(buf)
        n = 0
        while n < size:
            got = _SSL_read(ssl, _from_buffer(buf[n:] if n else buf), size - n)
            if got > 0:
                n += got
                continue
            error = _SSL_get_error(ssl, got)
            if error in _WANT_IO:
                break
            result = SocketResult.CLOSED if error == _ZERO_RETURN else \
                _ssl_failure(self.conn, ssl, got)
            if result is SocketResult.WOULD_BLOCK:
                break
            return (n, SocketResult.CONTINUE) if n else (0, result)
        if n:
            return n, SocketResult.CONTINUE
        return 0, SocketResult.WOULD_BLOCK

    def socket_write(self, data: Any) -> tuple[int, SocketResult]:
        ssl = self.ssl
        size = len(data)
        if not size:
            return 0, SocketResult.CONTINUE
        sent = _SSL_write(ssl, _from_buffer(data), size)
        if sent > 0:
            return sent, SocketResult.CONTINUE
        if _SSL_get_error(ssl, sent) in _WANT_IO:
            return 0, SocketResult.WOULD_BLOCK
        # a write cannot go on after close_notify or an EOF either: anything else is ERROR
        if _ssl_failure(self.conn, ssl, sent) is SocketResult.WOULD_BLOCK:
            return 0, SocketResult.WOULD_BLOCK
        return 0, SocketResult.ERROR

    def socket_write_vectored(self, buffers: Sequence[Any]) -> tuple[int, SocketResult]:
        """TLS writes records, not a gather list: small buffers (a response head and the
        body behind it) are joined into one record; otherwise the first goes alone and the
        caller goes on with the rest."""
        if len(buffers) > 1:
            total = 0
            for buffer in buffers:
                total += len(buffer)
            if total <= _JOIN_LIMIT:
                return self.socket_write(b"".join(buffers))
        return self.socket_write(buffers[0])

    def shutdown_write(self) -> None:
        """Send close_notify (best effort: a failure leaves nothing behind)."""
        if _SSL_shutdown(self.ssl) < 0:
            _ERR_clear_error()  # a stale error would mislead the next SSL_get_error

    def close(self) -> None:
        self.shutdown_write()
        super().close()


class TlsHandshake(FrontReadinessState):
    """Drive the server handshake, then hand the session to ``next_state(session)``."""

    RANK = 20
    NAME = "tls.handshake"
    __slots__ = ("conn", "next", "next_factory", "session", "started", "timer")

    def __init__(
        self,
        session: StateMachineSession,
        context: SSL.Context,
        next_state: Callable[[StateMachineSession], SessionState],
        timeout: float = 10.0,
    ) -> None:
        super().__init__(session, READABLE | ERROR)
        self.session = session
        self.conn = SSL.Connection(context, session.front_socket)
        self.conn.set_accept_state()
        self.next_factory = next_state
        self.next: SessionState | None = None
        self.timer = session.make_timeout(timeout)
        self.timer.set()
        self.started = session.server.now

    def ready(self, session: StateMachineSession) -> SessionResult:
        front_r = self.front_readiness
        if not front_r.event & front_r.interest:
            return SessionResult.CONTINUE
        conn = self.conn
        ssl = conn._ssl
        rc = _SSL_do_handshake(ssl)
        if rc != 1:
            error = _SSL_get_error(ssl, rc)
            if error == _WANT_READ:
                front_r.event &= ~READABLE
                front_r.interest = READABLE | HUP | ERROR
                return SessionResult.CONTINUE
            if error == _WANT_WRITE:
                front_r.event &= ~WRITABLE
                front_r.interest = WRITABLE | HUP | ERROR
                return SessionResult.CONTINUE
            failure: Exception = SSL.Error(f"handshake failed (SSL_get_error {error})")
            try:
                conn._raise_ssl_error(ssl, rc)
            except SSL.Error as exc:
                failure = exc
            self._fail(session, failure)
            return SessionResult.CLOSE
        # get_alpn_proto_negotiated, in one call; the out-parameters are this call's own
        # (cffi lets other threads run during the call: shared ones could be overwritten)
        data, length = _ffi.new("unsigned char **"), _ffi.new("unsigned int *")
        _SSL_get0_alpn_selected(ssl, data, length)
        alpn = _ffi.buffer(data[0], length[0])[:] if length[0] else None
        self._record(session, alpn)
        session.front = TlsSocketHandler(conn, session.front_socket, alpn)
        # the next state may take the handshake's timer over as its own (HTTP does: both
        # bound the time to the first request); otherwise it goes
        session.handoff_timeout = self.timer
        self.next = state = self.next_factory(session)
        left = session.take_handoff_timeout()  # None: the next state took it
        if left is not None:
            left.close()
        # application data that came with the client's last flight may already sit in
        # OpenSSL's buffer, where no socket event will announce it: let the next state read
        state.update_readiness(self.front_token, READABLE)
        return SessionResult.UPGRADE

    def _record(self, session: StateMachineSession, alpn: bytes | None) -> None:
        """Metrics of a successful handshake: time, version, cipher, ALPN, resumption, and
        whether the certificate served was a fallback (no SNI, or none named it)."""
        metrics = session.server.metrics
        conn = self.conn
        ssl = conn._ssl
        metrics.record_time("tls.handshake_time", session.server.now - self.started)
        key = (_lib.SSL_version(ssl), _lib.SSL_get_current_cipher(ssl), alpn)
        names = _HANDSHAKE_METRICS.get(key)
        if names is None:
            version, cipher = conn.get_protocol_version_name(), conn.get_cipher_name()
            names = _HANDSHAKE_METRICS[key] = (
                f"tls.version.{version}", f"tls.cipher.{cipher}",
                f"tls.alpn.{alpn.decode('ascii', 'replace') if alpn else 'none'}",
            )
        metrics.incr_each(names)
        if _lib.SSL_session_reused(ssl):
            metrics.incr("tls.resumed")
        served = conn.get_app_data()
        if isinstance(served, Served):
            if not served.sni:
                metrics.incr("tls.sni.none")
            if not served.named:
                metrics.incr("tls.default_cert_used")
        elif conn.get_servername() is None:  # no certificate fitted at all
            metrics.incr("tls.sni.none")

    def _fail(self, session: StateMachineSession, exc: Exception) -> None:
        session.server.metrics.incr(HANDSHAKE_ERRORS)
        log.debug("%s TLS handshake failed: %r", session.peer_address, exc)

    def timeout(self, session: StateMachineSession, token: int) -> StateResult:
        self._fail(session, TimeoutError("handshake not done in time"))
        return StateResult.CLOSE_SESSION

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        state, self.next = self.next, None
        return state

    def shutting_down(self, session: StateMachineSession) -> bool:
        return False  # the client's request follows the handshake (bounded by its timer)

    def close(self, session: StateMachineSession) -> None:
        self.timer.close()

    def print_state(self) -> str:
        return f"TlsHandshake(events={self.front_readiness})"
