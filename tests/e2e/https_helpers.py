"""Helpers of the HTTPS tests: a test CA and its leaf certificates, HTTPS listeners set up
through the channel, and TLS clients (Python ``ssl``) that report what they negotiated.

Certificates are made at test time with ``cryptography`` (no key is committed): one CA per
test session signs every leaf, so clients verify the proxy as a real client would.
"""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import WAIT, Proxy
from tests.e2e.http_helpers import http_listen

NOW = datetime.datetime.now(datetime.UTC)


@dataclass
class TestCA:
    """A certificate authority for one test session."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem: str
    path: Path
    issued: list[str] = field(default_factory=list)

    def issue(self, names: list[str], *, days: int = 30, cn: str | None = None,
              not_before_days: int = 1) -> tuple[str, str]:
        """A leaf for ``names`` (DNS SANs; IP addresses as IP SANs): (cert PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                import ipaddress

                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=not_before_days))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def make_ca(directory: Path, name: str = "pysozu test CA") -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=2))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    path = directory / "ca.pem"
    path.write_text(pem)
    return TestCA(key, cert, pem, path)


@cache
def fingerprint_of(pem: str) -> str:
    import hashlib

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def https_listen(proxy: Proxy, **fields: Any) -> str:
    """Add and activate an HTTPS listener on a port the test bound itself; its address."""
    return http_listen(proxy, protocol="HTTPS", **fields)


def add_certificate(proxy: Proxy, address: str, pem: str, key: str, **fields: Any) -> str:
    """ADD_CERTIFICATE; the fingerprint the worker answered."""
    answer = proxy.ok("ADD_CERTIFICATE", address=address,
                      certificate={"certificate": pem, "key": key, **fields.pop("cert", {})},
                      **fields)
    fingerprint: str = answer["content"]["fingerprint"]
    return fingerprint


def client_context(ca: TestCA | None, *, alpn: list[str] | None = None,
                   version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=ca.pem)
    if alpn:
        context.set_alpn_protocols(alpn)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


@dataclass
class TlsResult:
    """What a TLS client saw: the served certificate, the connection's parameters, and the
    HTTP response when one was asked for."""

    fingerprint: str
    version: str | None
    cipher: str | None
    alpn: str | None
    reused: bool
    response: http.client.HTTPResponse | None = None
    body: bytes = b""


def tls_connect(address: str, server_name: str | None, context: ssl.SSLContext,
                session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
    host, port = address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=WAIT)
    try:
        return context.wrap_socket(raw, server_hostname=server_name, session=session)
    except BaseException:
        raw.close()
        raise


def peer_fingerprint(sock: ssl.SSLSocket) -> str:
    import hashlib

    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def https_get(address: str, host: str, path: str = "/", *, ca: TestCA | None = None,
              server_name: str | None = "", headers: dict[str, str] | None = None,
              method: str = "GET", body: bytes | None = None,
              context: ssl.SSLContext | None = None) -> TlsResult:
    """One request on a new TLS connection (SNI ``server_name``, ``host`` when left "")."""
    name = host if server_name == "" else server_name
    context = context or client_context(ca)
    if name is None or ca is None:
        context.check_hostname = False
    sock = tls_connect(address, name, context)
    try:
        result = TlsResult(peer_fingerprint(sock), sock.version(), (sock.cipher() or (None,))[0],
                           sock.selected_alpn_protocol(), sock.session_reused)
        conn = http.client.HTTPConnection(host, timeout=WAIT)
        conn.sock = sock
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        result.body = response.read()
        result.response = response
        return result
    finally:
        sock.close()


def client_hello(server_name: str | None) -> bytes:
    """The first flight (ClientHello) of a Python ``ssl`` client, made without a socket."""
    context = client_context(None)
    obj = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(),
                           server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return outgoing.read()
    raise AssertionError("a TLS client finished its handshake without a server")


class BioClient:
    """A TLS client over a plain socket through memory BIOs: the test decides what goes on
    the wire (bytes before the ClientHello, a TCP half-close) and tells a ``close_notify``
    (:meth:`read_to_close` returns) from a bare TCP EOF (``ssl.SSLEOFError``)."""

    def __init__(self, address: str, context: ssl.SSLContext, server_name: str | None) -> None:
        host, port = address.rsplit(":", 1)
        self.raw = socket.create_connection((host, int(port)), timeout=WAIT)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)

    def first_flight(self) -> bytes:
        """The ClientHello, taken out instead of sent (the test sends it)."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            return self.outgoing.read()
        raise AssertionError("the handshake finished without a server")

    def pump(self) -> bool:
        """Send what TLS wrote, feed TLS what came back; False at the peer's TCP EOF."""
        if self.outgoing.pending:
            self.raw.sendall(self.outgoing.read())
        data = self.raw.recv(65536)  # bounded by the socket timeout
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
        return bool(data)

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                assert self.pump(), "closed during the handshake"

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def read_until(self, marker: bytes) -> bytes:
        """Decrypted bytes until ``marker`` came; fails if the proxy closes first."""
        received = b""
        while marker not in received:
            try:
                received += self.tls.read(65536)
            except ssl.SSLWantReadError:
                assert self.pump(), f"closed before {marker!r}: {received!r}"
        return received

    def read_to_close(self) -> bytes:
        """Decrypted bytes until the proxy's ``close_notify`` (a bare TCP EOF raises)."""
        received = b""
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.pump()
                continue
            if not data:
                return received
            received += data

    def close(self) -> None:
        self.raw.close()
