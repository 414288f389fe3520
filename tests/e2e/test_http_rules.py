"""Redirects, basic auth and the per-IP connection limit, end to end."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.e2e.helpers import wait_for
from tests.e2e.http_helpers import (
    HOST,
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_listen,
    status,
)


@pytest.mark.parametrize("policy,status", [
    ("PERMANENT", 301), ("FOUND", 302), ("PERMANENT_REDIRECT", 308),
])
def test_frontend_redirects(proxy, make_http_backend, policy, status):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", redirect=policy, redirect_scheme="USE_HTTPS")
    response = fetch(address, "/a/b?c=1")
    assert response.status == status
    assert response.headers["Location"] == f"https://{HOST}/a/b?c=1"
    assert not backend.requests  # answered by the proxy, never forwarded


def test_redirect_keeps_the_scheme_and_port(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", redirect="FOUND")
    port = address.rsplit(":", 1)[1]
    response = fetch(address, "/x", host=f"{HOST}:{port}")
    assert response.status == 302
    assert response.headers["Location"] == f"http://{HOST}:{port}/x"


def test_unauthorized_policy_denies(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", redirect="UNAUTHORIZED")
    assert fetch(address, "/").status == 401
    assert not backend.requests


def test_cluster_https_redirect(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address], https_redirect=True, https_redirect_port=8443)
    address = http_listen(proxy)
    add_frontend(proxy, address, "app")
    response = fetch(address, "/login")
    assert response.status == 301
    assert response.headers["Location"] == f"https://{HOST}:8443/login"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth(proxy, make_http_backend):
    backend = make_http_backend("app")
    digest = hashlib.sha256(b"s3cret").hexdigest()
    add_cluster(proxy, "app", [backend.address], authorized_hashes=[f"alice:{digest}"],
                www_authenticate="staff")
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", required_auth=True)
    denied = fetch(address, "/")
    assert denied.status == 401
    assert denied.headers["WWW-Authenticate"] == 'Basic realm="staff"'
    assert fetch(address, "/", headers={"Authorization": _basic("alice", "nope")}).status == 401
    ok = fetch(address, "/", headers={"Authorization": _basic("alice", "s3cret")})
    assert ok.status == 200
    assert len(backend.requests) == 1  # only the authenticated request reached the backend


def test_max_connections_per_ip(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address], retry_after=17)
    address = http_listen(proxy)
    add_frontend(proxy, address, "app")
    proxy.ok("SET_MAX_CONNECTIONS_PER_IP", limit=2)
    with RawClient(address) as first, RawClient(address) as second:
        assert first.request(get_request("/1")).status == 200
        assert second.request(get_request("/2")).status == 200
        with RawClient(address) as third:
            refused = third.request(get_request("/3"))
            assert refused.status == 429
            assert refused.header("Retry-After") == "17"
        # the first two connections keep working (keep-alive)
        assert first.request(get_request("/1b")).status == 200
    # both closed: once the proxy has seen it, there is room again
    wait_for(lambda: status(proxy)["sessions"] == 0, what="sessions to close")
    assert fetch(address, "/4").status == 200
    proxy.ok("SET_MAX_CONNECTIONS_PER_IP", limit=0)
