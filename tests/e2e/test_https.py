"""HTTPS listeners end to end: TLS termination with certificates managed live on the
channel, strict SNI binding, HSTS, forwarding headers, resumption, TLS logs and metrics.

Real TLS clients (Python ``ssl``, curl, ``openssl s_client``) talk to a worker configured
through its channel; backends are the recording ``HttpBackend``.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess

import pytest

from tests.conftest import WAIT
from tests.e2e.h2_helpers import H2Client
from tests.e2e.helpers import in_worker, wait_for
from tests.e2e.http_helpers import HOST, add_cluster, add_frontend, http_listen
from tests.e2e.https_helpers import (
    BioClient,
    add_certificate,
    client_context,
    client_hello,
    https_get,
    https_listen,
    make_ca,
    peer_fingerprint,
    tls_connect,
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("ca"))


def https_app(proxy, ca, backend, *, names=(HOST,), listener=None, frontend=None, cluster=None):
    """An HTTPS listener with one certificate for ``names``, cluster ``app`` and a frontend
    for HOST: (address, fingerprint)."""
    address = https_listen(proxy, **(listener or {}))
    pem, key = ca.issue(list(names))
    fingerprint = add_certificate(proxy, address, pem, key)
    add_cluster(proxy, "app", [backend.address], **(cluster or {}))
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             **(frontend or {}))
    return address, fingerprint


def metric(proxy, name):
    return in_worker(proxy, lambda: proxy.worker.server.metrics.counters.get(name, 0))


# -- requests through TLS ---------------------------------------------------------------------


def test_request_over_tls_carries_https_forwarding_headers(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, fingerprint = https_app(proxy, ca, backend)
    result = https_get(address, HOST, "/hello", ca=ca)
    assert result.response.status == 200
    assert result.body == b"backend GET /hello"
    assert result.fingerprint == fingerprint
    assert result.version in ("TLSv1.2", "TLSv1.3")
    seen = backend.requests[-1]
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("X-Forwarded-Port") == address.rsplit(":", 1)[1]
    assert "proto=https" in seen.header("Forwarded")
    assert seen.header("X-Forwarded-For") == "127.0.0.1"


def test_keep_alive_requests_on_one_tls_connection(proxy, ca, make_http_backend):
    import http.client

    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    sock = tls_connect(address, HOST, client_context(ca))
    try:
        conn = http.client.HTTPConnection(HOST, timeout=WAIT)
        conn.sock = sock
        for n in range(5):
            conn.request("GET", f"/r{n}", headers={"Host": HOST})
            response = conn.getresponse()
            assert response.read() == f"backend GET /r{n}".encode()
    finally:
        sock.close()
    assert backend.paths()[-5:] == [f"/r{n}" for n in range(5)]


def test_large_bodies_both_ways_through_tls(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    size = 3 * 1024 * 1024
    result = https_get(address, HOST, f"/big/{size}", ca=ca)
    assert result.body == backend.payload(size)
    upload = bytes(range(256)) * 8192  # 2 MiB
    import hashlib

    result = https_get(address, HOST, "/sink", ca=ca, method="POST", body=upload)
    assert result.body == f"{len(upload)} {hashlib.sha256(upload).hexdigest()}".encode()


def test_websocket_over_tls(proxy, ca, make_backend):
    from tests.e2e.http_helpers import Reader, get_request, ws_echo_backend, ws_frame, ws_read_frame

    backend = make_backend(ws_echo_backend)
    address = https_listen(proxy)
    pem, key = ca.issue([HOST])
    add_certificate(proxy, address, pem, key)
    add_cluster(proxy, "app", [backend.address])
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app")
    sock = tls_connect(address, HOST, client_context(ca))
    try:
        sock.sendall(get_request("/chat", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ]) + ws_frame(b"early bird", mask=True))
        reader = Reader.of(sock)
        assert reader.read_response(skip_1xx=False).status == 101
        assert ws_read_frame(reader) == (1, b"early bird")
        payload = b"\x07" * 70_000
        sock.sendall(ws_frame(payload, 2, mask=True))
        assert ws_read_frame(reader) == (2, payload)
        sock.sendall(ws_frame(b"\x03\xe8", 8, mask=True))
        assert ws_read_frame(reader) == (8, b"\x03\xe8")
    finally:
        sock.close()


# -- certificates: SNI, live changes, refusals ------------------------------------------------


def test_sni_picks_exact_then_wildcard_then_default(proxy, ca, make_http_backend):
    backend = make_http_backend()
    default_pem, default_key = ca.issue(["default.test"])
    address = https_listen(proxy, certificate=default_pem, key=default_key,
                           strict_sni_binding=False)
    exact = add_certificate(proxy, address, *ca.issue(["www.example.test"]))
    wildcard = add_certificate(proxy, address, *ca.issue(["*.example.test"]))
    add_cluster(proxy, "app", [backend.address])
    for host in ("www.example.test", "api.example.test", "other.test"):
        proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=host, cluster_id="app")
    assert https_get(address, "www.example.test", ca=ca).fingerprint == exact
    assert https_get(address, "api.example.test", ca=ca).fingerprint == wildcard
    from tests.e2e.https_helpers import fingerprint_of

    fallback = https_get(address, "other.test", ca=None)
    assert fallback.fingerprint == fingerprint_of(default_pem)
    assert fallback.response.status == 200
    no_sni = https_get(address, "other.test", ca=None, server_name=None)
    assert no_sni.fingerprint == fingerprint_of(default_pem)
    assert metric(proxy, "tls.default_cert_used") == 2
    assert metric(proxy, "tls.sni.none") == 1


def test_unknown_name_without_default_fails_the_handshake(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    with pytest.raises(ssl.SSLError):
        https_get(address, "unknown.test", ca=None)
    with pytest.raises(ssl.SSLError):
        https_get(address, HOST, ca=None, server_name=None)
    wait_for(lambda: metric(proxy, "tls.handshake.errors") == 2, what="2 handshake errors")
    assert https_get(address, HOST, ca=ca).response.status == 200  # the listener is fine


def test_replaced_certificate_serves_next_handshake_open_connection_unharmed(
        proxy, ca, make_http_backend):
    import http.client

    backend = make_http_backend()
    address, old = https_app(proxy, ca, backend)
    sock = tls_connect(address, HOST, client_context(ca))
    try:
        assert peer_fingerprint(sock) == old
        conn = http.client.HTTPConnection(HOST, timeout=WAIT)
        conn.sock = sock
        conn.request("GET", "/before", headers={"Host": HOST})
        assert conn.getresponse().read() == b"backend GET /before"
        new_pem, new_key = ca.issue([HOST], days=90)
        answer = proxy.ok("REPLACE_CERTIFICATE", address=address, old_fingerprint=old,
                          new_certificate={"certificate": new_pem, "key": new_key})
        new = answer["content"]["fingerprint"]
        assert new != old
        assert https_get(address, HOST, ca=ca).fingerprint == new
        conn.request("GET", "/after", headers={"Host": HOST})  # same connection, old cert
        assert conn.getresponse().read() == b"backend GET /after"
    finally:
        sock.close()
    # removal falls back to the listener's default
    default_pem, default_key = ca.issue(["fallback.test"])
    proxy.ok("UPDATE_HTTPS_LISTENER", address=address, certificate=default_pem, key=default_key,
             strict_sni_binding=False)
    proxy.ok("REMOVE_CERTIFICATE", address=address, fingerprint=new)
    from tests.e2e.https_helpers import fingerprint_of

    assert https_get(address, HOST, ca=None).fingerprint == fingerprint_of(default_pem)


def test_longest_lived_certificate_wins_and_expired_at_overrides(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, short = https_app(proxy, ca, backend)  # 30 days
    long = add_certificate(proxy, address, *ca.issue([HOST], days=300))
    assert https_get(address, HOST, ca=ca).fingerprint == long
    # expired_at says the 30-day one lasts longer than both (a renewal managed outside)
    proxy.ok("REMOVE_CERTIFICATE", address=address, fingerprint=short)
    pem, key = ca.issue([HOST], days=10)
    forced = add_certificate(proxy, address, pem, key, expired_at=4102444800)  # 2100
    assert https_get(address, HOST, ca=ca).fingerprint == forced


def test_bad_certificates_fail_with_a_clear_message_and_change_nothing(proxy, ca):
    address = https_listen(proxy)
    pem, key = ca.issue([HOST])
    other_pem, other_key = ca.issue([HOST])
    before = proxy.request("STATUS")["content"]["state_hash"]
    cases = [
        ({"certificate": "not a pem", "key": key}, "not a PEM certificate"),
        ({"certificate": pem,
          "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
         "not an unencrypted PEM private key"),
        ({"certificate": pem, "key": other_key}, "does not match"),
    ]
    for certificate, message in cases:
        answer = proxy.request("ADD_CERTIFICATE", address=address, certificate=certificate)
        assert answer["status"] == "FAILURE" and message in answer["message"], answer
    unknown = "ab" * 32
    answer = proxy.request("REMOVE_CERTIFICATE", address=address, fingerprint=unknown)
    assert answer["status"] == "FAILURE" and f"no certificate with fingerprint {unknown}" in \
        answer["message"]
    answer = proxy.request("REPLACE_CERTIFICATE", address=address, old_fingerprint=unknown,
                           new_certificate={"certificate": other_pem, "key": other_key})
    assert answer["status"] == "FAILURE" and "no certificate with fingerprint" in answer["message"]
    answer = proxy.request("REMOVE_CERTIFICATE", address=address, fingerprint="xyz")
    assert answer["status"] == "FAILURE" and "invalid fingerprint" in answer["message"]
    answer = proxy.request("ADD_CERTIFICATE", address="127.0.0.1:1",
                           certificate={"certificate": pem, "key": key})
    assert answer["status"] == "FAILURE" and "HTTPS listener 127.0.0.1:1 not found" in \
        answer["message"]
    assert proxy.request("STATUS")["content"]["state_hash"] == before
    fingerprint = add_certificate(proxy, address, pem, key)
    answer = proxy.request("ADD_CERTIFICATE", address=address,
                           certificate={"certificate": pem, "key": key})
    assert answer["status"] == "FAILURE" and f"certificate {fingerprint} already exists" in \
        answer["message"]


def test_query_certificates_by_domain_and_fingerprint(proxy, ca):
    address = https_listen(proxy)
    a = add_certificate(proxy, address, *ca.issue(["a.test"]))
    w = add_certificate(proxy, address, *ca.issue(["*.b.test"]))
    everything = proxy.ok("QUERY_CERTIFICATES_FROM_WORKERS")["content"]["certificates"]
    assert sorted(c["fingerprint"] for c in everything[address]) == sorted([a, w])
    by_domain = proxy.ok("QUERY_CERTIFICATES_FROM_WORKERS",
                         filters={"domain": "x.b.test"})["content"]["certificates"]
    assert [c["fingerprint"] for c in by_domain[address]] == [w]
    assert by_domain[address][0]["names"] == ["*.b.test"]
    one = proxy.ok("QUERY_CERTIFICATES_FROM_WORKERS",
                   filters={"fingerprint": a.upper()})["content"]["certificates"]
    assert one[address][0]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "key" not in one[address][0]
    answer = proxy.request("QUERY_CERTIFICATES_FROM_WORKERS", filters={"fingerprint": "0" * 64})
    assert answer["status"] == "FAILURE"


def test_certificates_survive_save_and_load(proxy, ca, make_http_backend, tmp_path):
    from pysozu.state import ConfigState

    backend = make_http_backend()
    address, fingerprint = https_app(proxy, ca, backend, frontend={"hsts": {"enabled": True}})
    path = tmp_path / "state"
    proxy.ok("SAVE_STATE", path=str(path))
    requests = ConfigState.load(path)
    assert [r.type for r in requests].count("ADD_CERTIFICATE") == 1
    rebuilt = ConfigState.from_requests(requests)
    assert rebuilt.hash() == proxy.request("STATUS")["content"]["state_hash"]
    assert list(rebuilt.certificates(address)[address]) == [fingerprint]
    assert rebuilt.diff(ConfigState()) and not rebuilt.diff(rebuilt.copy())


# -- protocol settings ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(proxy, ca, make_http_backend, version):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    context = client_context(None)
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_get(address, HOST, context=context)


def test_weak_cipher_refused_strong_ones_served(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    weak = client_context(None, version=ssl.TLSVersion.TLSv1_2)
    weak.set_ciphers("AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0")  # static RSA / CBC
    with pytest.raises(ssl.SSLError):
        https_get(address, HOST, context=weak)
    tls12 = https_get(address, HOST, context=client_context(ca, version=ssl.TLSVersion.TLSv1_2))
    assert tls12.version == "TLSv1.2"
    assert tls12.cipher.startswith("ECDHE-") and ("GCM" in tls12.cipher or "CHACHA" in tls12.cipher)
    tls13 = https_get(address, HOST, context=client_context(ca, version=ssl.TLSVersion.TLSv1_3))
    assert tls13.version == "TLSv1.3"


def test_listener_settings_refused_with_a_reason(proxy):
    for fields, message in [
        ({"versions": ["TLS_V1_1"]}, "TLS_V1_1 are refused"),
        ({"cipher_list": ["NOT-A-CIPHER"]}, "unknown TLS 1.2 cipher 'NOT-A-CIPHER'"),
        ({"groups_list": ["curve9"]}, "unknown key exchange group 'curve9'"),
        ({"alpn_protocols": ["spdy/3"]}, "unsupported ALPN protocol 'spdy/3'"),
        ({"disable_http11": True, "alpn_protocols": ["http/1.1"]},
         "disable_http11 needs 'h2' in alpn_protocols"),
        ({"certificate": "x"}, "needs both 'certificate' and 'key'"),
    ]:
        answer = proxy.request("ADD_HTTPS_LISTENER", address="127.0.0.1:0", **fields)
        assert answer["status"] == "FAILURE" and message in answer["message"], answer
    assert proxy.request("LIST_LISTENERS")["content"]["https_listeners"] == {}


def test_update_versions_applies_to_next_handshakes(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    tls12 = client_context(ca, version=ssl.TLSVersion.TLSv1_2)
    assert https_get(address, HOST, context=tls12).version == "TLSv1.2"
    proxy.ok("UPDATE_HTTPS_LISTENER", address=address, versions=["TLS_V1_3"])
    with pytest.raises(ssl.SSLError):
        https_get(address, HOST, context=client_context(ca, version=ssl.TLSVersion.TLSv1_2))
    assert https_get(address, HOST, ca=ca).version == "TLSv1.3"
    listeners = proxy.ok("LIST_LISTENERS")["content"]["https_listeners"]
    assert listeners[address]["versions"] == ["TLS_V1_3"]


def test_alpn_result_visible_to_the_client(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    # Sōzu's default offer, h2 then http/1.1: the server's preference wins
    with H2Client(address, tls=client_context(ca, alpn=["h2", "http/1.1"])) as client:
        assert client.sock.selected_alpn_protocol() == "h2"
        response = client.get("/two", scheme="https")
        assert response.status == 200 and bytes(response.body) == b"backend GET /two"
    result = https_get(address, HOST, context=client_context(ca, alpn=["http/1.1"]))
    assert result.alpn == "http/1.1" and result.response.status == 200
    assert https_get(address, HOST, ca=ca).alpn is None  # no ALPN offered: HTTP/1.1
    sock = tls_connect(address, HOST, client_context(ca, alpn=["h2"]))
    try:
        assert sock.selected_alpn_protocol() == "h2"
    finally:
        sock.close()
    with pytest.raises(ssl.SSLError):  # only protocols the listener does not speak
        https_get(address, HOST, context=client_context(ca, alpn=["spdy/3"]))
    assert metric(proxy, "tls.alpn.http/1.1") == 1
    assert wait_for(lambda: metric(proxy, "tls.alpn.h2") == 2)


def test_alpn_follows_the_listener_settings(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, listener={"alpn_protocols": ["http/1.1"]})
    result = https_get(address, HOST, context=client_context(ca, alpn=["h2", "http/1.1"]))
    assert result.alpn == "http/1.1" and result.response.status == 200  # h2 not offered
    # HTTP/2 only: h2 is negotiated, and a client without h2 is not served
    proxy.ok("UPDATE_HTTPS_LISTENER", address=address, alpn_protocols=["h2", "http/1.1"],
             disable_http11=True)
    with H2Client(address, tls=client_context(ca, alpn=["h2", "http/1.1"])) as client:
        assert client.get("/h2only", scheme="https").status == 200
    with pytest.raises(ssl.SSLError):  # no protocol in common: a TLS alert
        https_get(address, HOST, context=client_context(ca, alpn=["http/1.1"]))
    with pytest.raises((http.client.HTTPException, OSError)):  # no ALPN: HTTP/2 all the same
        https_get(address, HOST, ca=ca)
    answer = proxy.request("UPDATE_HTTPS_LISTENER", address=address,
                           alpn_protocols=["http/1.1"])
    assert answer["status"] == "FAILURE"
    assert "disable_http11 needs 'h2' in alpn_protocols" in answer["message"], answer
    listener = proxy.ok("LIST_LISTENERS")["content"]["https_listeners"][address]
    assert (listener["alpn_protocols"], listener["disable_http11"]) == (["h2", "http/1.1"], True)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_session_resumption(proxy, ca, make_http_backend, version):
    import http.client

    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    context = client_context(ca, version=version)
    first = tls_connect(address, HOST, context)
    try:
        conn = http.client.HTTPConnection(HOST, timeout=WAIT)
        conn.sock = first
        conn.request("GET", "/one", headers={"Host": HOST})
        conn.getresponse().read()  # TLS 1.3 tickets come after the handshake
        session = first.session
        assert not first.session_reused
    finally:
        first.close()
    second = tls_connect(address, HOST, context, session=session)
    try:
        assert second.session_reused
    finally:
        second.close()
    wait_for(lambda: metric(proxy, "tls.resumed") == 1, what="one resumed handshake")


# -- HTTP rules over TLS ----------------------------------------------------------------------


def test_strict_sni_binding_answers_421(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname="other.test", cluster_id="app")
    # a certificate for app.test only; the request names another host on that connection
    result = https_get(address, "other.test", server_name=HOST, ca=ca)
    assert result.response.status == 421
    assert backend.requests == []
    assert metric(proxy, "http.421.errors") == 1
    assert https_get(address, HOST, ca=ca).response.status == 200
    # covered by a wildcard: allowed; binding off: allowed
    proxy.ok("UPDATE_HTTPS_LISTENER", address=address, strict_sni_binding=False)
    assert https_get(address, "other.test", server_name=HOST, ca=ca).response.status == 200


def test_strict_sni_binding_accepts_wildcard_names(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, names=["*.example.test"])
    for host in ("a.example.test", "b.example.test"):
        proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=host, cluster_id="app")
    result = https_get(address, "b.example.test", server_name="a.example.test", ca=ca)
    assert result.response.status == 200  # connection coalescing within the certificate
    assert https_get(address, "a.b.example.test", server_name="a.example.test",
                     ca=ca).response.status == 421


def test_hsts_from_listener_frontend_and_backend(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, listener={"hsts": {
        "enabled": True, "max_age": 600, "include_subdomains": True}})
    sts = "Strict-Transport-Security"
    assert https_get(address, HOST, ca=ca).response.getheader(sts) == \
        "max-age=600; includeSubDomains"
    # the proxy's own answers carry it too (a 404 for an unknown path is still HTTPS)
    missing = https_get(address, "nothing.test", server_name=HOST, ca=ca)
    assert missing.response.status == 421 and missing.response.getheader(sts)
    # a frontend's own setting wins over the listener's
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             path={"kind": "PREFIX", "value": "/preload"},
             hsts={"enabled": True, "max_age": 63072000, "preload": True})
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             path={"kind": "PREFIX", "value": "/off"}, hsts={"enabled": False})
    assert https_get(address, HOST, "/preload", ca=ca).response.getheader(sts) == \
        "max-age=63072000; preload"
    assert https_get(address, HOST, "/off", ca=ca).response.getheader(sts) is None
    # the backend's own header wins unless force_replace_backend
    backend.response_headers = [(sts, "max-age=5")]
    assert https_get(address, HOST, ca=ca).response.getheaders().count((sts, "max-age=5")) == 1
    assert [v for k, v in https_get(address, HOST, ca=ca).response.getheaders()
            if k == sts] == ["max-age=5"]
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             path={"kind": "PREFIX", "value": "/force"},
             hsts={"enabled": True, "max_age": 99, "force_replace_backend": True})
    assert [v for k, v in https_get(address, HOST, "/force", ca=ca).response.getheaders()
            if k == sts] == ["max-age=99"]


def test_https_redirect_from_http_listener_and_none_on_https(proxy, ca, make_http_backend):
    from tests.e2e.http_helpers import fetch

    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, cluster={"https_redirect": True,
                                                        "https_redirect_port": 8443})
    plain = http_listen(proxy)
    add_frontend(proxy, plain, "app")
    response = fetch(plain, "/x?y=1")
    assert response.status == 301
    assert response.headers["Location"] == f"https://{HOST}:8443/x?y=1"
    assert https_get(address, HOST, "/x", ca=ca).response.status == 200  # no loop
    # a frontend redirect with USE_SAME stays on https
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app",
             path={"kind": "PREFIX", "value": "/moved"}, redirect="PERMANENT")
    port = address.rsplit(":", 1)[1]
    moved = https_get(address, HOST, "/moved", ca=ca)
    assert moved.response.status == 301
    assert moved.response.getheader("Location") == f"https://{HOST}:{port}/moved"


# -- clients: curl, openssl s_client ----------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_verifies_the_proxy_over_http11_and_h2(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    port = address.rsplit(":", 1)[1]
    features = subprocess.run(["curl", "--version"], capture_output=True, text=True,
                              timeout=WAIT).stdout
    legs = [("--http1.1", "1.1")]
    if "HTTP2" in features:  # curl built with nghttp2 asks for h2 by ALPN
        legs.append(("--http2", "2"))
    for option, version in legs:
        out = subprocess.run(
            ["curl", "-sS", option, "--cacert", str(ca.path),
             "--resolve", f"{HOST}:{port}:127.0.0.1",
             "-w", "\\n%{http_code} %{http_version} %{ssl_verify_result}",
             f"https://{HOST}:{port}/curl"],
            capture_output=True, text=True, timeout=WAIT, check=True,
        ).stdout
        assert out == f"backend GET /curl\n200 {version} 0"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_s_client_sees_the_sni_certificate_and_alpn(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, names=[HOST, "alt.test"])
    out = subprocess.run(
        ["openssl", "s_client", "-connect", address, "-servername", "alt.test",
         "-alpn", "http/1.1", "-CAfile", str(ca.path), "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=WAIT,
    )
    text = out.stdout + out.stderr
    assert "Verify return code: 0 (ok)" in text, text
    assert "ALPN protocol: http/1.1" in text, text
    assert "TLSv1.3" in text and "subject=CN = app.test" in text, text


# -- handshake failures -----------------------------------------------------------------------


def test_garbage_stall_and_drop_mid_handshake_are_closed_and_counted(proxy, ca,
                                                                      make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, listener={"request_timeout": 1})
    host, port = address.rsplit(":", 1)
    garbage = socket.create_connection((host, int(port)), timeout=WAIT)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
    _wait_closed(garbage)  # maybe after an alert, maybe by a reset (bytes left unread)
    # half a ClientHello, then the client leaves
    hello = client_hello(HOST)
    dropper = socket.create_connection((host, int(port)), timeout=WAIT)
    dropper.sendall(hello[: len(hello) // 2])
    dropper.close()
    # a client that stays silent: closed at the request timeout
    _wait_closed(socket.create_connection((host, int(port)), timeout=WAIT))
    wait_for(lambda: metric(proxy, "tls.handshake.errors") >= 3, what="3 handshake errors")
    wait_for(lambda: in_worker(proxy, lambda: len(proxy.worker.server.sessions)) == 0,
             what="no session left")
    assert https_get(address, HOST, ca=ca).response.status == 200


def _wait_closed(sock: socket.socket) -> None:
    """Read until the proxy closes (EOF or reset); bounded by the socket timeout."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    finally:
        sock.close()


def test_expect_proxy_then_tls(proxy, ca, make_http_backend):
    from pysozu.protocols.proxy_protocol import build_v2

    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, listener={"expect_proxy": True})
    port = int(address.rsplit(":", 1)[1])
    client = BioClient(address, client_context(ca), HOST)
    try:
        # the PROXY header and the ClientHello in one write: the proxy must not eat the hello
        client.raw.sendall(build_v2(("203.0.113.9", 4242), ("127.0.0.1", port))
                           + client.first_flight())
        client.handshake()
        client.send(f"GET /pp HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        client.read_until(b"backend GET /pp")
    finally:
        client.close()
    assert backend.requests[-1].header("X-Forwarded-For") == "203.0.113.9"


def test_access_log_records_tls_fields(tmp_path, ca, make_http_backend):
    import dataclasses

    from pysozu.config import ServerConfig
    from pysozu.worker import Worker
    from tests.conftest import Proxy

    log_path = tmp_path / "access.log"
    config = dataclasses.replace(ServerConfig(), access_logs_target=f"file://{log_path}",
                                 access_logs_format="json")
    proxy = Proxy(Worker(config))
    try:
        backend = make_http_backend()
        address, _ = https_app(proxy, ca, backend)
        https_get(address, HOST, "/logged", context=client_context(ca, alpn=["http/1.1"]))
        wait_for(lambda: log_path.exists() and log_path.read_text().strip(), what="a log line")
        assert metric(proxy, "tls.version.TLSv1.3") == 1
        timings = in_worker(proxy, lambda: proxy.worker.server.metrics.snapshot())
        assert "tls.handshake_time" in json.dumps(timings)
    finally:
        proxy.close()
    record = json.loads(log_path.read_text().splitlines()[0])
    assert record["protocol"] == "HTTPS" and record["path"] == "/logged"
    assert record["tls_version"] == "TLSv1.3" and record["tls_sni"] == HOST
    assert record["tls_alpn"] == "http/1.1" and record["tls_cipher"].startswith("TLS_")


def test_connection_close_ends_with_close_notify(proxy, ca, make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    client = BioClient(address, client_context(ca), HOST)
    try:
        client.handshake()
        client.send(f"GET /bye HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        # ends at the close_notify: a bare TCP EOF would raise SSLEOFError
        received = client.read_to_close()
        assert received.endswith(b"backend GET /bye")
        assert client.tls.get_channel_binding() is not None  # still a sane TLS object
    finally:
        client.close()


def test_soft_stop_finishes_https_requests(proxy, ca, make_http_backend):
    import http.client
    import threading

    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    backend.release.clear()
    sock = tls_connect(address, HOST, client_context(ca))
    results: list[bytes] = []
    try:
        conn = http.client.HTTPConnection(HOST, timeout=WAIT)
        conn.sock = sock
        conn.request("GET", "/hold", headers={"Host": HOST})
        assert backend.arrived.wait(WAIT)
        stop_id = proxy.channel.send({"type": "SOFT_STOP"})
        assert proxy.channel.read_response(stop_id)["status"] == "PROCESSING"
        thread = threading.Thread(target=lambda: results.append(conn.getresponse().read()))
        thread.start()
        backend.release.set()
        thread.join(WAIT)
        assert proxy.channel.read_response(stop_id, timeout=WAIT)["status"] == "OK"
    finally:
        sock.close()
    assert results and results[0].startswith(b"backend GET /hold")


def test_client_half_close_without_close_notify_still_gets_its_answer(proxy, ca,
                                                                      make_http_backend):
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend)
    client = BioClient(address, client_context(ca), HOST)
    try:
        client.handshake()
        client.send(f"GET /last HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        client.raw.shutdown(socket.SHUT_WR)  # a TCP half-close, no close_notify
        client.read_until(b"backend GET /last")
    finally:
        client.close()


def test_default_certificate_also_added_keeps_both_roles(proxy, ca, make_http_backend):
    from tests.e2e.https_helpers import fingerprint_of

    backend = make_http_backend()
    pem, key = ca.issue([HOST])
    address = https_listen(proxy, certificate=pem, key=key)
    fingerprint = add_certificate(proxy, address, pem, key)  # the same one, added as well
    assert fingerprint == fingerprint_of(pem)
    add_cluster(proxy, "app", [backend.address])
    proxy.ok("ADD_HTTPS_FRONTEND", address=address, hostname=HOST, cluster_id="app")
    # removing the added one leaves the listener's default in place
    proxy.ok("REMOVE_CERTIFICATE", address=address, fingerprint=fingerprint)
    assert https_get(address, "unknown.test", server_name="unknown.test", ca=None,
                     headers={"Host": HOST}).fingerprint == fingerprint
    # and a new default leaves an added certificate in place
    add_certificate(proxy, address, pem, key)
    other_pem, other_key = ca.issue(["other.test"])
    proxy.ok("UPDATE_HTTPS_LISTENER", address=address, certificate=other_pem, key=other_key)
    assert https_get(address, HOST, ca=ca).fingerprint == fingerprint
    assert https_get(address, "unknown.test", ca=None).fingerprint == fingerprint_of(other_pem)


def test_request_timeout_after_the_handshake(proxy, ca, make_http_backend):
    # the handshake's timer becomes the request timer (one timer entry per connection):
    # after it, a silent client is closed, and a partial request gets 408, each at the
    # request timeout, and the handshake's own timeout handler no longer acts
    backend = make_http_backend()
    address, _ = https_app(proxy, ca, backend, listener={"request_timeout": 1})
    timers_before = in_worker(proxy, lambda: len(proxy.worker.server.timers))
    context = client_context(ca)
    silent = tls_connect(address, HOST, context)
    partial = tls_connect(address, HOST, context)
    with silent, partial:
        partial.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n")
        data = b""
        while True:  # bounded by the socket timeout (WAIT)
            chunk = partial.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 408 "), data[:80]
        assert silent.recv(4096) == b""  # closed without a word
    assert metric(proxy, "tls.handshake.errors") == 0
    wait_for(lambda: in_worker(proxy, lambda: len(proxy.worker.server.sessions)) == 0,
             what="no session left")
    # no timer left behind by either connection
    assert in_worker(proxy, lambda: len(proxy.worker.server.timers)) == timers_before
