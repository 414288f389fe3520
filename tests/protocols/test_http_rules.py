from __future__ import annotations

import base64
import hashlib

import pytest

from pysozu.protocols.http_rules import (
    IpLimiter,
    check_basic_auth,
    redirect_location,
    www_authenticate,
)


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


HASHES = [f"alice:{hashlib.sha256(b'secret').hexdigest()}",
          f"bob:{hashlib.sha256(b'hunter2').hexdigest().upper()}"]


@pytest.mark.parametrize("header,ok", [
    (basic("alice", "secret"), True),
    (basic("bob", "hunter2"), True),  # hex case does not matter
    (basic("alice", "wrong"), False),
    (basic("mallory", "secret"), False),
    (basic("alice", "secret").replace(b"Basic", b"basic"), True),
    (b"Bearer abc", False),
    (b"Basic not-base64!", False),
    (b"Basic " + base64.b64encode(b"no-colon"), False),
    (None, False),
    (b"", False),
])
def test_basic_auth(header, ok):
    assert check_basic_auth(header, HASHES) is ok


def test_basic_auth_without_hashes_refuses():
    assert not check_basic_auth(basic("alice", "secret"), [])


def test_www_authenticate_realm():
    assert www_authenticate(None) == 'Basic realm="pysozu"'
    assert www_authenticate('my "app"') == 'Basic realm="my app"'


@pytest.mark.parametrize("policy,listener,host,port,path,https_port,expected", [
    ("USE_SAME", "http", "example.com", 8080, "/a?b", None, "http://example.com:8080/a?b"),
    ("USE_SAME", "http", "example.com", 80, "/", None, "http://example.com/"),
    ("USE_HTTPS", "http", "example.com", 8080, "/x", None, "https://example.com/x"),
    ("USE_HTTPS", "http", "example.com", 8080, "/x", 8443, "https://example.com:8443/x"),
    ("USE_HTTPS", "http", "example.com", None, "", 443, "https://example.com/"),
    ("USE_HTTP", "https", "::1", 443, "/v6", None, "http://[::1]/v6"),
])
def test_redirect_location(policy, listener, host, port, path, https_port, expected):
    assert redirect_location(policy, listener, host, port, path, https_port) == expected


def test_ip_limiter_global_and_cluster_limits():
    limiter = IpLimiter()
    assert all(limiter.acquire("app", "10.0.0.1") for _ in range(50))  # 0: unlimited
    limiter = IpLimiter()
    limiter.global_limit = 2
    assert limiter.acquire("app", "10.0.0.1")
    assert limiter.acquire("app", "10.0.0.1")
    assert not limiter.acquire("app", "10.0.0.1")  # third one refused
    assert limiter.acquire("app", "10.0.0.2")  # per IP
    assert limiter.acquire("other", "10.0.0.1")  # per cluster
    limiter.release("app", "10.0.0.1")
    assert limiter.acquire("app", "10.0.0.1")  # room again
    limiter.cluster_limits["vip"] = 1
    assert limiter.acquire("vip", "10.0.0.1")
    assert not limiter.acquire("vip", "10.0.0.1")  # the cluster's own limit wins
    for _ in range(5):
        limiter.release("app", "10.0.0.1")
    assert ("app", "10.0.0.1") not in limiter.counts  # never negative, entries dropped


@pytest.mark.parametrize("n", [1, 255, 2**36 + 7, 2**40 - 1, 2**40, 2**44 + 3])
def test_request_ids_are_the_prefix_and_at_least_ten_hex_digits(monkeypatch, n):
    from pysozu.protocols import http

    monkeypatch.setattr(http, "_ids", iter([n]))
    assert http.new_request_id() == f"{http._ID_PREFIX}{n:010x}"
