"""HTTPS listeners end to end: TLS termination with certificates managed live on the
channel, strict SNI binding, HSTS, forwarding headers, resumption, TLS logs and metrics.

Real TLS clients (Python ``ssl``, curl, ``openssl s_client``) talk to a worker configured
through its channel; backends are the recording ``HttpBackend``.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess

import pytest

from tests.conftest import WAIT
from tests.e2e.helpers import in_worker, wait_for
from tests.e2e.http_helpers import HOST, add_cluster, add_frontend, http_listen
from tests.e2e.https_helpers import (
    add_certificate,
    client_context,
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
