"""TLS to backends: a cluster's client context, the non-blocking handshake, the name check.

Beyond Sōzu (its issues #258 and #1218 ask for it): a cluster whose ``ADD_CLUSTER`` carries
``backend_tls`` is reached over TLS by the HTTP proxy and by its health checks.

Theory of operation
-------------------
**Contexts.** :meth:`BackendTls.build` turns the request's ``backend_tls`` object into one
client ``SSL.Context`` per cluster: TLS 1.2 and 1.3 only, no compression, peer verification
on or off, the trusted CAs (a PEM file through ``load_verify_locations``, an inline PEM bundle
added to the context's store one certificate at a time, or OpenSSL's default store), and the
ALPN ids to offer; an EOF without close_notify ends the stream as a TCP EOF would (servers
often skip close_notify). Every failure (an unreadable file, a bundle without a certificate, a bad
certificate) raises :class:`BackendTlsError`, a ``ValueError``, so the worker answers FAILURE
before it changed anything. The context is kept while ``ADD_CLUSTER`` repeats the same
settings (and the CA file is unchanged on disk); any change builds a new one, used by the
next connections only: established backend connections keep theirs.

**Handshake.** After the TCP connect, :meth:`BackendTls.connection` wraps the socket in an
``SSL.Connection`` in connect state, with the SNI when ``server_name`` names a host (an IP
address is never sent as SNI, RFC 6066 §3). :func:`handshake_step` runs ``do_handshake``
once and says which readiness it waits for; the caller (``Http`` in ``http.py``, the health
check probe) clears that event bit and waits for the edge-triggered poller, as the server
side does in ``tls.py``. Once done, the connection is read and written through
:class:`~pysozu.protocols.tls.TlsSocketHandler`.

**Names.** OpenSSL verifies the chain during the handshake, but pyOpenSSL does not check the
peer's name, so :meth:`BackendTls.check_peer` does after it: the leaf's subjectAltName must
hold ``server_name`` (or, without one, the backend's address) as a ``DNSName`` (exact, or a
``*.`` wildcard standing for exactly one leftmost label, RFC 6125 §6.4.3) or an
``IPAddress``; the subject CN is not consulted (RFC 6125 §6.4.4, as browsers do). This uses
``cryptography``'s public certificate API rather than OpenSSL's ``X509_VERIFY_PARAM`` through
``OpenSSL.SSL._lib``: those bindings are private to cryptography and shrink from release to
release, and the check runs once per backend connection, so its cost does not matter.
A failure closes the connection before a request byte is written to it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from OpenSSL import SSL, crypto

from pysozu.reactor.readiness import READABLE, WRITABLE

from .certificates import names_cover

__all__ = [
    "BACKEND_TLS_ERRORS",
    "BackendTls",
    "BackendTlsConfig",
    "BackendTlsError",
    "handshake_step",
    "name_matches",
]

log = logging.getLogger("pysozu.tls_backend")

#: counted for every failed backend handshake or name check (HTTP proxy and health checks)
BACKEND_TLS_ERRORS = "backend.tls.errors"

_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BackendTlsError(ValueError):
    """Bad ``backend_tls`` settings, or a backend whose certificate does not fit them."""


@dataclass(frozen=True)
class BackendTlsConfig:
    """A cluster's ``backend_tls`` object, as validated by ``pysozu.command``."""

    verify: bool = True
    ca_file: str | None = None
    ca: str | None = None
    server_name: str | None = None
    alpn_protocols: tuple[str, ...] = ("http/1.1",)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> BackendTlsConfig:
        alpn = fields.get("alpn_protocols")
        return cls(
            verify=bool(fields.get("verify", True)),
            ca_file=fields.get("ca_file") or None,
            ca=fields.get("ca") or None,
            server_name=fields.get("server_name") or None,
            alpn_protocols=tuple(alpn) if alpn is not None else ("http/1.1",),
        )


def _parse_ip(text: str) -> _IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _load_bundle(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise BackendTlsError(
            f"{what}: not a PEM certificate bundle (no readable -----BEGIN CERTIFICATE----- "
            "block)")
    return certificates


def client_context(config: BackendTlsConfig) -> SSL.Context:
    """A client context for ``config``; raises :class:`BackendTlsError` on bad settings."""
    for protocol in config.alpn_protocols:
        if protocol != "http/1.1":
            raise BackendTlsError(
                f"ALPN protocol {protocol!r} is not spoken to backends (only 'http/1.1' "
                "until HTTP/2 lands)"
            )
    if config.ca and config.ca_file:
        raise BackendTlsError("give either ca or ca_file, not both")
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    # many servers close without close_notify: an EOF is then a clean end (as over TCP; HTTP
    # framing detects truncated bodies) rather than an error that would drop the bytes read
    # just before it
    context.set_options(SSL.OP_NO_COMPRESSION | getattr(SSL, "OP_IGNORE_UNEXPECTED_EOF", 0))
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    if config.ca_file:
        try:
            with open(config.ca_file, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BackendTlsError(
                f"cannot read ca_file {config.ca_file!r}: {exc.strerror or exc}"
            ) from None
        _load_bundle(data, f"ca_file {config.ca_file!r}")  # a clear message for bad files
        try:
            context.load_verify_locations(config.ca_file)
        except SSL.Error as exc:
            raise BackendTlsError(f"ca_file {config.ca_file!r}: {exc}") from None
    elif config.ca:
        store = context.get_cert_store()
        assert store is not None
        for certificate in _load_bundle(config.ca.encode(), "ca"):
            try:
                store.add_cert(crypto.X509.from_cryptography(certificate))
            except crypto.Error as exc:
                raise BackendTlsError(f"ca: {exc}") from None
    else:
        context.set_default_verify_paths()
    context.set_verify(SSL.VERIFY_PEER if config.verify else SSL.VERIFY_NONE)
    if config.alpn_protocols:
        context.set_alpn_protos([p.encode() for p in config.alpn_protocols])
    return context


class BackendTls:
    """A cluster's TLS client settings and their context (see the module docstring)."""

    __slots__ = ("_ip_name", "_key", "_sni", "config", "context")

    def __init__(self, config: BackendTlsConfig, context: SSL.Context, key: Any = None) -> None:
        self.config = config
        self.context = context
        self._key = key
        name = config.server_name
        self._ip_name = _parse_ip(name) if name else None
        #: the SNI to send: a host name only, never an address
        self._sni = name.encode("idna") if name and self._ip_name is None else None

    @staticmethod
    def _cache_key(config: BackendTlsConfig) -> Any:
        if config.ca_file:
            try:
                st = os.stat(config.ca_file)
                return config, st.st_mtime_ns, st.st_size, st.st_ino
            except OSError:
                return config, None
        return config, None

    @classmethod
    def build(cls, fields: dict[str, Any], previous: BackendTls | None = None) -> BackendTls:
        """The cluster's TLS from its ``backend_tls`` fields; ``previous`` is kept when
        nothing changed (so is its context). Raises :class:`BackendTlsError`."""
        config = BackendTlsConfig.from_fields(fields)
        key = cls._cache_key(config)
        if previous is not None and previous._key == key:
            return previous
        try:
            return cls(config, client_context(config), key)
        except BackendTlsError as exc:
            raise BackendTlsError(f"backend_tls: {exc}") from None

    def connection(self, sock: socket.socket) -> SSL.Connection:
        """A client ``SSL.Connection`` over a connected non-blocking ``sock``."""
        conn = SSL.Connection(self.context, sock)
        conn.set_connect_state()
        if self._sni is not None:
            conn.set_tlsext_host_name(self._sni)
        return conn

    def check_peer(self, conn: SSL.Connection, backend_host: str) -> None:
        """After the handshake: the certificate must name ``server_name``, or the backend's
        address without one (nothing to check when ``verify`` is off). Raises
        :class:`BackendTlsError`."""
        if not self.config.verify:
            return
        expected = self.config.server_name or backend_host
        peer = conn.get_peer_certificate(as_cryptography=True)
        if peer is None:
            raise BackendTlsError("the backend sent no certificate")
        if not name_matches(peer, expected):
            raise BackendTlsError(f"the backend's certificate does not name {expected!r}")

    def __repr__(self) -> str:
        return f"BackendTls({self.config})"


def name_matches(certificate: x509.Certificate, name: str) -> bool:
    """Whether the certificate's subjectAltName covers ``name`` (a host name or an IP
    address): exact DNS names, one-label ``*.`` wildcards, IP addresses."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ip = _parse_ip(name.strip("[]"))
    if ip is not None:
        return ip in sans.get_values_for_type(x509.IPAddress)
    patterns = (p.rstrip(".").lower() for p in sans.get_values_for_type(x509.DNSName))
    return names_cover(patterns, name)


def handshake_step(conn: SSL.Connection) -> int:
    """Run the handshake as far as the socket allows: 0 when done, else the readiness it
    waits for (``READABLE`` or ``WRITABLE``). Raises ``SSL.Error`` when it failed."""
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        return READABLE
    except SSL.WantWriteError:
        return WRITABLE
    return 0
