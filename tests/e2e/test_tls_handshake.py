"""The TLS handshake state and the SNI resolver with real TLS clients (Python ``ssl``):
a listener handler chains ``TlsHandshake`` before the line-echo example state."""

from __future__ import annotations

import importlib.util
import socket
import ssl
from pathlib import Path

import pytest

from pysozu.command import make_request
from pysozu.protocols.certificates import CertificateResolver, parse_certificate
from pysozu.protocols.tls import HANDSHAKE_ERRORS, TlsHandshake, TlsSettings, base_context
from pysozu.protocols.tls import server_context as make_context
from pysozu.worker import Worker
from tests.conftest import WAIT
from tests.e2e.helpers import in_worker, wait_for
from tests.protocols.test_certificates import make

_spec = importlib.util.spec_from_file_location(
    "echo_handler", Path(__file__).parents[2] / "examples" / "echo_handler.py"
)
assert _spec is not None and _spec.loader is not None
echo_handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(echo_handler)


class _LineEcho(echo_handler.LineEcho):
    RANK = 30  # states upgrade forward only: after the handshake (20)


class TlsEcho:
    """A worker whose listener speaks TLS, then line echo; certificates change live."""

    def __init__(self, settings: TlsSettings) -> None:
        self.resolver = CertificateResolver(lambda c: make_context(c, settings))
        self.context = base_context(self.resolver, settings)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.address = f"127.0.0.1:{self.port}"
        self.worker = Worker()
        self.worker.set_listener_handler(self.address, lambda session: TlsHandshake(
            session, self.context, lambda s: _LineEcho(s, 5.0), timeout=1.0))
        self.worker.apply([
            make_request("l", "ADD_TCP_LISTENER", address=self.address),
            make_request("a", "ACTIVATE_LISTENER", address=self.address, proxy="TCP"),
        ])
        self.worker.start_thread()

    def errors(self) -> int:
        return in_worker(self, lambda: self.worker.server.metrics.counters.get(HANDSHAKE_ERRORS, 0))


@pytest.fixture
def tls_echo():
    echo = TlsEcho(TlsSettings())
    yield echo
    echo.worker.stop_thread()


def client_context(**kwargs) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test checks the served certificate itself
    for name, value in kwargs.items():
        setattr(context, name, value)
    return context


def served(port: int, sni: str | None, context: ssl.SSLContext | None = None,
           line: bytes = b"hello\n") -> tuple[str, bytes, str | None]:
    """Handshake with ``sni``, send a line: (served certificate's SHA-256, echo, ALPN)."""
    import hashlib

    context = context or client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw, \
            context.wrap_socket(raw, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
        tls.sendall(line)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
        return hashlib.sha256(der).hexdigest(), answer, tls.selected_alpn_protocol()


def closed_by_peer(sock: socket.socket) -> None:
    """Read until the proxy ends the connection (EOF or reset), bounded by ``WAIT``."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass


def add(echo: TlsEcho, names, **kwargs):
    pem, key = make(names, **kwargs)
    certificate = parse_certificate(pem, key)
    in_worker(echo, lambda: echo.resolver.add(certificate))
    return certificate


def test_sni_picks_exact_wildcard_and_default(tls_echo):
    exact = add(tls_echo, ["www.example.com"])
    wild = add(tls_echo, ["*.example.com"])
    default = add(tls_echo, ["default.test"])
    in_worker(tls_echo, lambda: setattr(tls_echo.resolver, "default", default.fingerprint))
    assert served(tls_echo.port, "www.example.com")[:2] == (exact.fingerprint, b"echo: hello\n")
    assert served(tls_echo.port, "api.example.com")[0] == wild.fingerprint
    assert served(tls_echo.port, "other.test")[0] == default.fingerprint
    assert served(tls_echo.port, None)[0] == default.fingerprint


def test_replaced_certificate_serves_next_handshake_open_connection_lives(tls_echo):
    old = add(tls_echo, ["a.test"])
    context = client_context()
    raw = socket.create_connection(("127.0.0.1", tls_echo.port), timeout=WAIT)
    with context.wrap_socket(raw, server_hostname="a.test") as open_conn:
        pem, key = make(["a.test"], days=90)
        new = parse_certificate(pem, key)
        in_worker(tls_echo, lambda: tls_echo.resolver.replace(old.fingerprint, new))
        assert served(tls_echo.port, "a.test")[0] == new.fingerprint
        open_conn.sendall(b"still here\n")  # the connection made with the old one works on
        assert open_conn.recv(4096) == b"echo: still here\n"
    in_worker(tls_echo, lambda: tls_echo.resolver.remove(new.fingerprint))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served(tls_echo.port, "a.test")  # nothing left to serve: the handshake fails


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_protocol_versions_are_refused(tls_echo):
    add(tls_echo, ["a.test"])
    old = client_context(minimum_version=ssl.TLSVersion.TLSv1,
                         maximum_version=ssl.TLSVersion.TLSv1_1)
    before = tls_echo.errors()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        served(tls_echo.port, "a.test", old)
    wait_for(lambda: tls_echo.errors() > before, what="the refused handshake counted")
    modern = client_context(minimum_version=ssl.TLSVersion.TLSv1_2,
                            maximum_version=ssl.TLSVersion.TLSv1_2)
    assert served(tls_echo.port, "a.test", modern)[1] == b"echo: hello\n"


def test_garbage_and_silent_clients_are_closed_and_counted(tls_echo):
    add(tls_echo, ["a.test"])
    before = tls_echo.errors()
    with socket.create_connection(("127.0.0.1", tls_echo.port), timeout=WAIT) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")  # not a ClientHello
        closed_by_peer(raw)  # an alert at most, then the end
    with socket.create_connection(("127.0.0.1", tls_echo.port), timeout=WAIT) as raw:
        closed_by_peer(raw)  # says nothing: closed by the handshake timeout (1 s)
    wait_for(lambda: tls_echo.errors() >= before + 2, what="both failures counted")
    assert served(tls_echo.port, "a.test")[1] == b"echo: hello\n"  # the listener lives on


def test_alpn_is_negotiated():
    echo = TlsEcho(TlsSettings(alpn_protocols=("h2", "http/1.1")))
    try:
        add(echo, ["a.test"])
        context = client_context()
        context.set_alpn_protocols(["http/1.1"])
        assert served(echo.port, "a.test", context)[2] == "http/1.1"
        context = client_context()
        context.set_alpn_protocols(["http/1.1", "h2"])
        assert served(echo.port, "a.test", context)[2] == "h2"  # the server's preference
    finally:
        echo.worker.stop_thread()


def test_ca_signed_certificate_with_chain_passes_a_verifying_client():
    """A CA-signed certificate, its chain configured: a client that verifies (hostname
    included) against that CA accepts it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=10))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("chain.test")).issuer_name(name("test CA"))
            .public_key(leaf_key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=10))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("chain.test")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    certificate = parse_certificate(
        leaf.public_bytes(pem).decode(),
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode(),
        chain=[ca.public_bytes(pem).decode()],
    )
    echo = TlsEcho(TlsSettings())
    try:
        in_worker(echo, lambda: echo.resolver.add(certificate))
        verifying = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
        assert served(echo.port, "chain.test", verifying)[1] == b"echo: hello\n"
    finally:
        echo.worker.stop_thread()
