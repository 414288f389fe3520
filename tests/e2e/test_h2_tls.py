"""HTTP/2 over TLS: ALPN ``h2`` picks the HTTP/2 state after the handshake; the same
routing, forwarding headers and HSTS as HTTPS/1.1; curl and nghttp as independent clients."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from pysozu.parser import h2 as h2frames
from tests.conftest import WAIT
from tests.e2e.h2_helpers import H2Client
from tests.e2e.http_helpers import HOST, add_cluster
from tests.e2e.https_helpers import add_certificate, client_context, https_listen, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def _https_app(proxy, ca, backend, **listener):
    address = https_listen(proxy, **listener)
    pem, key = ca.issue([HOST])
    add_certificate(proxy, address, pem, key)
    add_cluster(proxy, "app", [backend.address])
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             hsts={"enabled": True, "max_age": 600})
    return address


def test_alpn_h2_serves_http2(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend)
    with H2Client(address, tls=client_context(ca, alpn=["h2", "http/1.1"])) as client:
        sids = [client.request(f"/tls/{n}", scheme="https") for n in range(10)]
        responses = client.wait(*sids)
    assert [bytes(r.body) for r in responses] == [b"one GET /tls/%d" % n for n in range(10)]
    assert responses[0].header(b"strict-transport-security") == b"max-age=600"
    seen = backend.last()
    assert seen.header("X-Forwarded-Proto") == "https"


def test_http11_clients_still_served_next_to_h2(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend)
    host, port = address.rsplit(":", 1)
    context = client_context(ca, alpn=["http/1.1"])
    with socket_to(host, int(port)) as raw, context.wrap_socket(
            raw, server_hostname=HOST) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"
        sock.sendall(f"GET /one HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"one GET /one")


def socket_to(host, port):
    import socket

    return socket.create_connection((host, port), timeout=WAIT)


def test_disable_http11_refuses_http11_clients(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend, disable_http11=True,
                         alpn_protocols=["h2", "http/1.1"])
    with H2Client(address, tls=client_context(ca, alpn=["h2", "http/1.1"])) as client:
        assert client.get("/ok", scheme="https").status == 200
    with pytest.raises(ssl.SSLError):  # http/1.1 only: no protocol in common
        host, port = address.rsplit(":", 1)
        with socket_to(host, int(port)) as raw:
            client_context(ca, alpn=["http/1.1"]).wrap_socket(raw, server_hostname=HOST)
    assert backend.paths() == ["/ok"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_negotiates_h2(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend)
    port = address.rsplit(":", 1)[1]
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(ca.path), "--resolve",
         f"{HOST}:{port}:127.0.0.1", "-w", "\n%{http_version} %{http_code}",
         f"https://{HOST}:{port}/curl"],
        capture_output=True, timeout=WAIT, check=True, text=True)
    assert out.stdout.splitlines() == ["one GET /curl", "2 200"]


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) missing")
def test_nghttp_over_tls(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend)
    port = address.rsplit(":", 1)[1]
    urls = [f"https://127.0.0.1:{port}/ng/{n}" for n in range(10)]
    out = subprocess.run(["nghttp", "-n", "-H", f":authority: {HOST}", *urls],
                         capture_output=True, timeout=WAIT, text=True)
    assert out.returncode == 0, out.stderr
    assert sorted(backend.paths()) == sorted(f"/ng/{n}" for n in range(10))


def test_disable_http11_refuses_a_client_without_alpn(proxy, ca, make_http_backend):
    backend = make_http_backend("one")
    address = _https_app(proxy, ca, backend, disable_http11=True)
    host, port = address.rsplit(":", 1)
    with socket_to(host, int(port)) as raw, client_context(ca).wrap_socket(
            raw, server_hostname=HOST) as sock:
        assert sock.selected_alpn_protocol() is None
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while chunk := _recv_or_eof(sock):
            data += chunk
    # HTTP/2 was spoken anyway: its SETTINGS, then GOAWAY PROTOCOL_ERROR for the bad preface
    frames = h2frames.FrameReader(h2frames.MAX_MAX_FRAME_SIZE).feed(data)
    goaways = [h2frames.parse_goaway(payload)[1] for ftype, _, _, payload in frames
               if ftype == h2frames.GOAWAY]
    assert frames[0][0] == h2frames.SETTINGS and goaways == [h2frames.ErrorCode.PROTOCOL_ERROR]
    assert backend.paths() == []


def _recv_or_eof(sock) -> bytes:
    try:
        return sock.recv(65536)
    except (ssl.SSLError, ConnectionResetError):
        return b""
