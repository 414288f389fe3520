"""TLS to backends (``ADD_CLUSTER``'s ``backend_tls``): verification, SNI, name checks,
failures counted like connect failures, keep-alive reuse, large bodies, retries, health
checks. Plain HTTP clients talk to an HTTP listener; the backends are ``HttpBackend``s
serving TLS with certificates of a test CA made here."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Proxy
from tests.e2e.helpers import Conn, ScriptedBackend, counters, wait_for
from tests.e2e.http_helpers import (
    HOST,
    HttpBackend,
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_listen,
    ws_echo_backend,
    ws_frame,
    ws_read_frame,
)
from tests.e2e.https_helpers import make_ca

if TYPE_CHECKING:  # imported by name, pytest would try to collect it as a test class
    from tests.e2e.https_helpers import TestCA

TLS_ERRORS = "backend.tls.errors"


class HttpsBackend(HttpBackend):
    """An ``HttpBackend`` serving TLS with ``cert``; records the SNI of each handshake."""

    def __init__(self, name: str, cert: str, key: str, directory: Path) -> None:
        super().__init__(name)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_text(cert)
        key_path.write_text(key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        context.set_alpn_protocols(["http/1.1"])
        self.server_names: list[str | None] = []
        context.sni_callback = self._on_sni
        # the handshake runs in each handler thread (on its first read), under its timeout
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False)

    def _on_sni(self, sock: Any, name: str | None, context: Any) -> None:
        with self.lock:
            self.server_names.append(name)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("other-ca"), "untrusted CA")


@pytest.fixture
def make_https_backend(tmp_path: Path) -> Iterator[Any]:
    made: list[HttpsBackend] = []

    def make(ca: TestCA, names: list[str], name: str = "tls") -> HttpsBackend:
        cert, key = ca.issue(names)
        backend = HttpsBackend(name, cert, key, tmp_path)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            backend.close()


def tls_app(proxy: Proxy, backends: list[str], backend_tls: dict[str, Any],
            **cluster: Any) -> str:
    address = http_listen(proxy)
    add_cluster(proxy, "app", backends, backend_tls=backend_tls, **cluster)
    add_frontend(proxy, address, "app")
    return address


def test_verified_with_ca_file_and_sni(proxy: Proxy, ca: TestCA, make_https_backend: Any) -> None:
    backend = make_https_backend(ca, ["backend.test"])
    address = tls_app(proxy, [backend.address],
                      {"ca_file": str(ca.path), "server_name": "backend.test"})
    response = fetch(address, "/hello")
    assert response.status == 200
    assert response.body == b"tls GET /hello"
    assert backend.server_names == ["backend.test"]
    assert backend.last().header("Host") == HOST  # the client's Host, not the SNI
    assert counters(proxy).get(TLS_ERRORS, 0) == 0


def test_verified_with_inline_ca_and_ip_name(proxy: Proxy, ca: TestCA,
                                             make_https_backend: Any) -> None:
    """Without server_name no SNI goes out and the certificate must name the address."""
    backend = make_https_backend(ca, ["127.0.0.1"])
    address = tls_app(proxy, [backend.address], {"ca": ca.pem})
    response = fetch(address, "/")
    assert response.status == 200
    assert backend.server_names == [None]


def test_wrong_server_name_fails_and_counts(proxy: Proxy, ca: TestCA,
                                           make_https_backend: Any) -> None:
    backend = make_https_backend(ca, ["backend.test"])
    address = tls_app(proxy, [backend.address],
                      {"ca": ca.pem, "server_name": "other.test"})
    response = fetch(address, "/")
    assert response.status in (502, 503)
    assert counters(proxy)[TLS_ERRORS] >= 1
    assert backend.requests == []


def test_untrusted_ca_fails(proxy: Proxy, ca: TestCA, other_ca: TestCA,
                            make_https_backend: Any) -> None:
    backend = make_https_backend(other_ca, ["backend.test"])
    address = tls_app(proxy, [backend.address],
                      {"ca": ca.pem, "server_name": "backend.test"})
    assert fetch(address, "/").status in (502, 503)
    assert counters(proxy)[TLS_ERRORS] >= 1
    assert backend.requests == []


def test_no_verify_accepts_untrusted(proxy: Proxy, other_ca: TestCA,
                                     make_https_backend: Any) -> None:
    backend = make_https_backend(other_ca, ["elsewhere.test"])
    address = tls_app(proxy, [backend.address], {"verify": False, "server_name": "backend.test"})
    response = fetch(address, "/")
    assert response.status == 200
    assert backend.server_names == ["backend.test"]


def test_keep_alive_reuses_the_tls_connection(proxy: Proxy, ca: TestCA,
                                              make_https_backend: Any) -> None:
    backend = make_https_backend(ca, ["127.0.0.1"])
    address = tls_app(proxy, [backend.address], {"ca": ca.pem})
    with RawClient(address) as client:
        first = client.request(get_request("/one"))
        second = client.request(get_request("/two"))
    assert (first.status, first.body) == (200, b"tls GET /one")
    assert (second.status, second.body) == (200, b"tls GET /two")
    assert backend.connections == 1
    assert counters(proxy).get("backend.pool.hit", 0) >= 1


def test_large_bodies_both_ways(proxy: Proxy, ca: TestCA, make_https_backend: Any) -> None:
    backend = make_https_backend(ca, ["127.0.0.1"])
    address = tls_app(proxy, [backend.address], {"ca": ca.pem})
    size = 3 * 1024 * 1024 + 7
    response = fetch(address, f"/big/{size}")
    assert response.status == 200
    assert response.body == backend.payload(size)
    upload = backend.payload(size)
    response = fetch(address, "/sink", method="POST", body=upload)
    assert response.status == 200
    assert response.body == f"{size} {hashlib.sha256(upload).hexdigest()}".encode()


def test_retry_on_another_backend_after_failed_handshake(
        proxy: Proxy, ca: TestCA, other_ca: TestCA, make_https_backend: Any) -> None:
    bad = make_https_backend(other_ca, ["127.0.0.1"], name="bad")
    good = make_https_backend(ca, ["127.0.0.1"], name="good")
    address = tls_app(proxy, [bad.address, good.address], {"ca": ca.pem})
    for n in range(4):
        response = fetch(address, f"/{n}")
        assert response.status == 200, response
        assert response.body == f"good GET /{n}".encode()
    assert bad.connections >= 1  # it was tried (round robin starts with it)...
    assert bad.requests == []  # ...and never got a request byte
    assert counters(proxy)[TLS_ERRORS] >= 1


def test_websocket_upgrade_over_tls(proxy: Proxy, ca: TestCA, make_backend: Any,
                                    tmp_path: Path) -> None:
    """After a 101 the pipe carries the frames through the backend's TLS connection."""
    cert, key = ca.issue(["127.0.0.1"])
    (tmp_path / "ws.crt").write_text(cert)
    (tmp_path / "ws.key").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "ws.crt", tmp_path / "ws.key")

    def tls_ws(backend: ScriptedBackend, conn: Conn) -> None:
        conn.sock = context.wrap_socket(conn.sock, server_side=True)
        ws_echo_backend(backend, conn)

    backend = make_backend(tls_ws)
    address = tls_app(proxy, [backend.address], {"ca": ca.pem})
    with RawClient(address) as client:
        client.send(get_request("/chat", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ]))
        assert client.response(skip_1xx=False).status == 101
        for n, size in enumerate((5, 70_000)):
            payload = bytes([n]) * size
            client.send(ws_frame(payload, 2, mask=True))
            assert ws_read_frame(client.reader) == (2, payload)
        client.send(ws_frame(b"\x03\xe8", 8, mask=True))
        assert ws_read_frame(client.reader) == (8, b"\x03\xe8")


def test_handshake_bounded_by_connect_timeout(proxy: Proxy, make_backend: Any) -> None:
    """A backend that accepts but never answers the ClientHello: 503 after the attempts."""
    silent: ScriptedBackend = make_backend(lambda backend, conn: ScriptedBackend.read_all(conn))
    address = http_listen(proxy, connect_timeout=1)
    add_cluster(proxy, "app", [silent.address], backend_tls={"verify": False})
    add_frontend(proxy, address, "app")
    assert fetch(address, "/").status == 503
    found = counters(proxy)
    assert found[TLS_ERRORS] >= 1
    assert found["backend.connect_timeout"] >= 1


def test_health_check_over_tls(proxy: Proxy, ca: TestCA, make_https_backend: Any) -> None:
    """A plain probe of a TLS backend fails it; with backend_tls the probe passes again."""
    backend = make_https_backend(ca, ["127.0.0.1"])
    check = {"uri": "/health", "interval": 1, "timeout": 2, "healthy_threshold": 1,
             "unhealthy_threshold": 1}
    proxy.ok("ADD_CLUSTER", cluster_id="app", health_check=check)
    proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-0", address=backend.address)

    def healthy() -> bool:
        content = proxy.ok("QUERY_HEALTH_CHECKS")["content"]["health_checks"]
        return bool(content["app"]["backends"]["app-0"]["healthy"])

    wait_for(lambda: not healthy(), what="the plain probe failing")
    proxy.ok("ADD_CLUSTER", cluster_id="app", health_check=check, backend_tls={"ca": ca.pem})
    wait_for(healthy, what="the TLS probe passing")
    assert "/health" in backend.paths()


def test_bad_backend_tls_settings_refused(proxy: Proxy, tmp_path: Path) -> None:
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("not a certificate\n")
    cases = [
        ({"ca_file": str(tmp_path / "missing.pem")}, "cannot read ca_file"),
        ({"ca_file": str(bad_pem)}, "ca_file"),
        ({"ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, "ca"),
        ({"ca": "x", "ca_file": "y"}, "not both"),
        ({"alpn_protocols": ["h2"]}, "http/1.1"),
    ]
    for backend_tls, words in cases:
        answer = proxy.request("ADD_CLUSTER", cluster_id="app", backend_tls=backend_tls)
        assert answer["status"] == "FAILURE", answer
        assert words in answer["message"]
    # nothing changed: no cluster was added
    assert proxy.worker.upstreams.backend_tls == {}
    assert "app" not in proxy.worker.http.clusters
