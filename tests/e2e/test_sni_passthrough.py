"""SNI passthrough through real sockets: TCP frontends with a ``hostname`` route each TLS
connection on its ClientHello's server name, and the proxy never terminates TLS.

Each backend is a small threaded TLS server (Python ``ssl``) with its own self-signed
certificate, made at test time, that answers with its own name. Clients verify the
certificate they get against that backend's only: a passing handshake proves the TLS session
is end to end with the backend the name routed to.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pysozu.parser.tls_hello import parse_client_hello
from pysozu.protocols import sni
from pysozu.protocols.proxy_protocol import ProxyHeader, build_v1, build_v2, parse_header
from tests.conftest import WAIT, EchoBackend, Proxy, connect
from tests.e2e.helpers import counters, echo, expect_eof, wait_for, wait_sessions
from tests.e2e.https_helpers import client_hello
from tests.protocols.test_certificates import make

CLIENT = ("203.0.113.7", 40001)
SERVER = ("198.51.100.1", 443)


class TlsBackend:
    """A threaded TLS server with its own certificate, answering ``<name> <line>``.

    With ``proxy_header``, each connection starts with a PROXY header (read raw, recorded)
    before the TLS handshake. The server names it was asked for are recorded too.
    """

    def __init__(self, name: str, hostnames: list[str], *, proxy_header: bool = False) -> None:
        self.name = name
        self.cert_pem, key_pem = make(hostnames)
        self.der = x509.load_pem_x509_certificate(self.cert_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert_file.write_text(self.cert_pem)
            key_file.write_text(key_pem)
            self.ctx.load_cert_chain(cert_file, key_file)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.ctx.sni_callback = self._sni
        self.proxy_header = proxy_header
        self.lock = threading.Lock()
        self.server_names: list[str | None] = []
        self.headers: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sni(self, sslobj: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        with self.lock:
            self.server_names.append(server_name)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self.threads.append(thread)  # read by close() only after this thread ended
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT)
        try:
            if self.proxy_header:
                header = _read_v2_header(conn)
                with self.lock:
                    self.headers.append(header)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                line = bytearray()
                while not line.endswith(b"\n"):
                    data = tls.recv(1024)
                    if not data:
                        return
                    line += data
                tls.sendall(f"{self.name} ".encode() + bytes(line))
        except (OSError, ValueError):
            pass  # a client the proxy refused, or a test that hung up early
        finally:
            conn.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        except OSError:
            pass
        self.sock.close()
        self.thread.join(WAIT)
        for thread in self.threads:
            thread.join(WAIT)


def _read_v2_header(conn: socket.socket) -> bytes:
    head = _recv_exact(conn, 16)
    return head + _recv_exact(conn, int.from_bytes(head[14:16], "big"))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("EOF")
        data += chunk
    return bytes(data)


@pytest.fixture
def make_tls_backend() -> Iterator[Any]:
    backends: list[TlsBackend] = []

    def make_backend(name: str, hostnames: list[str], **kwargs: Any) -> TlsBackend:
        backend = TlsBackend(name, hostnames, **kwargs)
        backends.append(backend)
        return backend

    try:
        yield make_backend
    finally:
        for backend in backends:
            backend.close()


def client_context(backend: TlsBackend, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client that trusts only ``backend``'s certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.load_verify_locations(cadata=backend.cert_pem)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def tls_call(
    address: str,
    backend: TlsBackend,
    server_name: str | None,
    *,
    prefix: bytes = b"",
    line: bytes = b"ping\n",
) -> tuple[bytes, bytes, str | None]:
    """Connect through the proxy (after sending ``prefix``, e.g. a PROXY header), handshake
    with SNI ``server_name`` trusting ``backend`` only, send ``line``: (answer, the peer's
    certificate DER, the ALPN protocol)."""
    ctx = client_context(backend, check_hostname=server_name is not None)
    with connect(address) as sock:
        sock.sendall(prefix)
        with ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            alpn = tls.selected_alpn_protocol()
            tls.sendall(line)
            answer = bytearray()
            while True:
                data = tls.recv(1024)
                if not data:
                    break
                answer += data
            return bytes(answer), der, alpn




def refused(address: str, backend: TlsBackend, server_name: str | None) -> None:
    """The proxy closes the connection during the handshake."""
    with pytest.raises((ssl.SSLError, OSError)):
        tls_call(address, backend, server_name)


def sni_listener(proxy: Proxy, routes: dict[str | None, TlsBackend], **listener: Any) -> str:
    """A listener routing each host name (None: the default frontend) to a cluster named
    after its backend; cluster options come from ``listener["clusters"]`` by name."""
    options: dict[str, dict[str, Any]] = listener.pop("clusters", {})
    address = proxy.listen(**listener)
    clusters: set[str] = set()
    for hostname, backend in routes.items():
        if backend.name not in clusters:
            clusters.add(backend.name)
            proxy.tcp_cluster(
                backend.name, [backend.address], listen=False, **options.get(backend.name, {})
            )
        fields = {"hostname": hostname} if hostname else {}
        proxy.ok("ADD_TCP_FRONTEND", cluster_id=backend.name, address=address, **fields)
    return address


def sni_counts(proxy: Proxy) -> tuple[int, int]:
    c = counters(proxy)
    return c.get("tcp.sni.errors", 0), c.get("tcp.sni.no_route", 0)


# -- routing -------------------------------------------------------------------------------------


def test_routes_on_the_server_name_end_to_end(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    b = make_tls_backend("beta", ["b.test"])
    address = sni_listener(proxy, {"a.test": a, "b.test": b})
    for _ in range(2):
        answer, der, alpn = tls_call(address, a, "a.test")
        assert (answer, der, alpn) == (b"alpha ping\n", a.der, "http/1.1")
        answer, der, _ = tls_call(address, b, "B.Test", line=b"pong\n")
        assert (answer, der) == (b"beta pong\n", b.der)
    # the backends did the handshakes: they saw the names (as the client spelt them)
    assert a.server_names == ["a.test", "a.test"]
    assert b.server_names == ["B.Test", "B.Test"]
    assert sni_counts(proxy) == (0, 0)
    wait_sessions(proxy, 0)


def test_wildcard_frontend_matches_one_label(proxy, make_tls_backend):
    wild = make_tls_backend("wild", ["*.wild.test"])
    exact = make_tls_backend("exact", ["www.wild.test"])
    address = sni_listener(proxy, {"*.wild.test": wild, "www.wild.test": exact})
    assert tls_call(address, wild, "x.wild.test")[:2] == (b"wild ping\n", wild.der)
    # an exact name wins over the wildcard
    assert tls_call(address, exact, "www.wild.test")[:2] == (b"exact ping\n", exact.der)
    # one label only: neither the bare suffix nor two labels match, and there is no default
    refused(address, wild, "wild.test")
    refused(address, wild, "a.b.wild.test")
    assert sni_counts(proxy) == (0, 2)
    assert wild.accepted == 1


def test_no_sni_and_unknown_names_take_the_default_frontend(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    default = make_tls_backend("fallback", ["default.test"])
    address = sni_listener(proxy, {"a.test": a, None: default})
    assert tls_call(address, default, None)[:2] == (b"fallback ping\n", default.der)
    assert default.server_names == [None]
    # an unknown name goes to the default too (the client still checks the name it asked
    # for, so trust the default's certificate without the host name check)
    ctx = client_context(default, check_hostname=False)
    with connect(address) as sock, ctx.wrap_socket(sock, server_hostname="other.test") as tls:
        tls.sendall(b"hi\n")
        assert tls.recv(1024) == b"fallback hi\n"
        assert tls.getpeercert(binary_form=True) == default.der
    assert tls_call(address, a, "a.test")[:2] == (b"alpha ping\n", a.der)
    assert sni_counts(proxy) == (0, 0)


def test_unknown_name_without_default_is_closed_and_counted(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    address = sni_listener(proxy, {"a.test": a})
    refused(address, a, "c.test")
    refused(address, a, None)  # no SNI, no default
    wait_for(lambda: sni_counts(proxy) == (0, 2), what="two no-route counts")
    assert a.accepted == 0
    wait_sessions(proxy, 0)


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", b"\x16\x03\x01\x00\x00", b"\x80\x2e\x01\x03\x01"],
    ids=["http", "empty-record", "sslv2"],
)
def test_bytes_that_are_not_a_client_hello_are_closed_and_counted(proxy, make_tls_backend, garbage):
    a = make_tls_backend("alpha", ["a.test"])
    default = make_tls_backend("fallback", ["default.test"])
    address = sni_listener(proxy, {"a.test": a, None: default})
    with connect(address) as client:
        client.sendall(garbage)
        expect_eof(client, timeout=WAIT)
    wait_for(lambda: sni_counts(proxy) == (1, 0), what="one SNI error")
    assert a.accepted == default.accepted == 0
    wait_sessions(proxy, 0)


def test_a_hello_larger_than_the_buffer_is_refused(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    address = sni_listener(proxy, {"a.test": a})
    # a valid prefix that never completes within a buffer: one message byte per record
    message = b"\x01\x00\x3f\xf0" + bytes(16368)
    records = b"".join(b"\x16\x03\x01\x00\x01" + message[i : i + 1] for i in range(4000))
    with connect(address) as client:
        try:
            client.sendall(records)
        except OSError:
            pass  # the proxy may close while we still write
        expect_eof(client, timeout=WAIT)
    wait_for(lambda: sni_counts(proxy) == (1, 0), what="one SNI error")
    assert a.accepted == 0


def test_a_client_that_stalls_mid_hello_is_closed_at_front_timeout(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    address = sni_listener(proxy, {"a.test": a}, front_timeout=1)
    hello = client_hello("a.test")
    started = time.monotonic()
    with connect(address) as client:
        client.sendall(hello[: len(hello) // 2])
        expect_eof(client, timeout=WAIT)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= 4, f"closed after {elapsed:.2f} s"
    wait_for(lambda: sni_counts(proxy) == (1, 0), what="one SNI error")
    assert counters(proxy)["client.timeout"] == 1
    assert a.accepted == 0
    wait_sessions(proxy, 0)


def test_a_client_gone_before_its_first_byte_is_closed_silently(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    address = sni_listener(proxy, {"a.test": a})
    connect(address).close()
    wait_sessions(proxy, 0)
    assert sni_counts(proxy) == (0, 0)


# -- framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 100])
def test_a_hello_in_many_small_writes(proxy, make_tls_backend, chunk, monkeypatch):
    """The whole handshake runs over memory BIOs, every flight written ``chunk`` bytes at a
    time with TCP_NODELAY, so the proxy gets the hello in many reads."""
    parses: list[bool] = []

    def counting_parse(data: Any) -> Any:
        parses.append(True)
        return parse_client_hello(data)

    monkeypatch.setattr(sni, "parse_client_hello", counting_parse)
    a = make_tls_backend("alpha", ["a.test"])
    b = make_tls_backend("beta", ["b.test"])
    address = sni_listener(proxy, {"a.test": a, "b.test": b})
    ctx = client_context(b)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="b.test")
    with connect(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def flush() -> None:
            data = outgoing.read()
            for i in range(0, len(data), chunk):
                sock.sendall(data[i : i + chunk])
                if i < 600:
                    time.sleep(0.001)  # pacing, so the first flight arrives in pieces

        def pump() -> None:
            data = sock.recv(65536)
            assert data, "the proxy closed the connection"
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                pump()
        tls.write(b"small\n")
        flush()
        answer = bytearray()
        while not answer.endswith(b"\n"):
            try:
                answer += tls.read(1024)
            except ssl.SSLWantReadError:
                pump()
        assert bytes(answer) == b"beta small\n"
        assert tls.getpeercert(binary_form=True) == b.der
    if chunk == 1:  # paced over ~0.5 s: the proxy saw the hello grow
        assert len(parses) > 1
    assert a.accepted == 0
    assert sni_counts(proxy) == (0, 0)


# -- PROXY protocol ------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [build_v1, build_v2], ids=["v1", "v2"])
def test_proxy_header_then_sni(proxy, make_tls_backend, build):
    """``expect_proxy``: the header is read first, then the hello; the backend of a cluster
    without PROXY mode gets the TLS stream only."""
    a = make_tls_backend("alpha", ["a.test"])
    b = make_tls_backend("beta", ["b.test"])
    address = sni_listener(proxy, {"a.test": a, "b.test": b}, expect_proxy=True)
    header = build(CLIENT, SERVER)
    assert tls_call(address, b, "b.test", prefix=header)[:2] == (b"beta ping\n", b.der)
    assert tls_call(address, a, "a.test", prefix=header)[:2] == (b"alpha ping\n", a.der)
    assert counters(proxy).get("proxy_protocol.errors", 0) == 0
    assert sni_counts(proxy) == (0, 0)


def test_proxy_header_and_hello_in_one_write(proxy, make_tls_backend):
    """The header and the whole hello arrive together: the hello is parsed from what the
    PROXY state already buffered."""
    a = make_tls_backend("alpha", ["a.test"])
    address = sni_listener(proxy, {"a.test": a}, expect_proxy=True)
    with connect(address) as client:
        client.sendall(build_v2(CLIENT, SERVER) + client_hello("a.test"))
        wait_for(lambda: a.server_names == ["a.test"], what="the backend's handshake")
    assert sni_counts(proxy) == (0, 0)


def test_relay_header_cluster_gets_the_clients_header(proxy, make_tls_backend):
    relay = make_tls_backend("relay", ["r.test"], proxy_header=True)
    plain = make_tls_backend("plain", ["p.test"])
    address = sni_listener(
        proxy,
        {"r.test": relay, "p.test": plain},
        expect_proxy=True,
        clusters={"relay": {"proxy_protocol": "RELAY_HEADER"}},
    )
    header = build_v2(CLIENT, SERVER)
    assert tls_call(address, relay, "r.test", prefix=header)[:2] == (b"relay ping\n", relay.der)
    assert relay.headers == [header]
    assert tls_call(address, plain, "p.test", prefix=header)[0] == b"plain ping\n"


@pytest.mark.parametrize("expect", [False, True], ids=["plain-listener", "expect-proxy"])
def test_send_header_cluster_gets_a_v2_header_before_the_hello(proxy, make_tls_backend, expect):
    sender = make_tls_backend("sender", ["s.test"], proxy_header=True)
    address = sni_listener(
        proxy,
        {"s.test": sender},
        expect_proxy=expect,
        clusters={"sender": {"proxy_protocol": "SEND_HEADER"}},
    )
    prefix = build_v1(CLIENT, SERVER) if expect else b""
    assert tls_call(address, sender, "s.test", prefix=prefix)[:2] == (b"sender ping\n", sender.der)
    [raw] = sender.headers
    header = parse_header(raw)
    assert isinstance(header, ProxyHeader)
    if expect:
        assert (header.source, header.destination) == (CLIENT, SERVER)
    else:
        assert header.source is not None and header.source[0] == "127.0.0.1"
        host, port = address.rsplit(":", 1)
        assert header.destination == (host, int(port))


# -- reconfiguration -----------------------------------------------------------------------------


def test_removing_a_frontend_affects_only_new_connections(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    b = make_tls_backend("beta", ["b.test"])
    address = sni_listener(proxy, {"a.test": a, "b.test": b})
    ctx = client_context(a)
    with connect(address) as sock, ctx.wrap_socket(sock, server_hostname="a.test") as tls:
        wait_for(lambda: a.server_names == ["a.test"], what="the first handshake")
        proxy.ok("REMOVE_TCP_FRONTEND", cluster_id="alpha", address=address, hostname="a.test")
        refused(address, a, "a.test")  # a new connection has no route
        tls.sendall(b"still\n")  # the routed one goes on
        assert tls.recv(1024) == b"alpha still\n"
    assert tls_call(address, b, "b.test")[0] == b"beta ping\n"
    assert sni_counts(proxy) == (0, 1)


def test_a_listener_without_host_names_does_not_peek(proxy, make_tls_backend):
    """A listener whose SNI frontends are all gone is a plain TCP listener again: bytes that
    are not TLS pass (to an echo backend)."""
    a = make_tls_backend("alpha", ["a.test"])
    echo_backend = EchoBackend()
    try:
        proxy.tcp_cluster("echo", [echo_backend.address], listen=False)
        address = sni_listener(proxy, {"a.test": a})
        proxy.ok("ADD_TCP_FRONTEND", cluster_id="echo", address=address)
        with connect(address) as client:  # SNI routing: not TLS, refused
            client.sendall(b"plain text\n")
            expect_eof(client, timeout=WAIT)
        proxy.ok("REMOVE_TCP_FRONTEND", cluster_id="alpha", address=address, hostname="a.test")
        with connect(address) as client:
            echo(client, b"plain text\n")
        assert sni_counts(proxy) == (1, 0)
    finally:
        echo_backend.close()


def test_removing_a_cluster_removes_its_routes(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["a.test"])
    b = make_tls_backend("beta", ["b.test"])
    address = sni_listener(proxy, {"a.test": a, "b.test": b})
    proxy.ok("REMOVE_CLUSTER", cluster_id="alpha")
    refused(address, a, "a.test")
    assert tls_call(address, b, "b.test")[0] == b"beta ping\n"
    assert sni_counts(proxy) == (0, 1)


def test_frontends_with_host_names_are_in_the_state(proxy, make_tls_backend):
    a = make_tls_backend("alpha", ["*.a.test"])
    default = make_tls_backend("fallback", ["default.test"])
    address = sni_listener(proxy, {"*.A.Test": a, None: default})
    frontends = proxy.ok("QUERY_CLUSTER_BY_ID", cluster_id="alpha")["content"]["tcp_frontends"]
    assert frontends == [
        {"cluster_id": "alpha", "address": address, "hostname": "*.a.test", "tags": {}}
    ]
    answer = proxy.request(
        "ADD_TCP_FRONTEND", cluster_id="fallback", address=address, hostname="*.a.test"
    )
    assert answer["status"] == "FAILURE"
    assert "already exists" in answer["message"]
    assert tls_call(address, a, "x.a.test")[0] == b"alpha ping\n"
