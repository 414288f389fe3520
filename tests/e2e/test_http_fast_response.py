"""The fast path for the usual response (``Http._fast_response``) against the general path.

Each backend answer below goes through the proxy twice on one keep-alive client
connection, once with ``Http.FAST_RESPONSES`` on and once off; the client must receive the
same bytes (``Sozu-Id`` values aside), and the connection must stay usable. The answers mix
the simple kind (taken fast) with near misses the fast path must leave to the general one.
"""

from __future__ import annotations

import re

import pytest

from pysozu.protocols.http import Http
from tests.e2e.helpers import in_worker
from tests.e2e.http_helpers import (
    RawClient,
    add_cluster,
    add_frontend,
    fixed,
    get_request,
    http_listen,
)

ANSWERS = [
    # simple: taken by the fast path
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
    b"\r\nhello",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Type: a/b\r\nContent-Length: 2\r\n"
    b"\r\nok",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 503 \r\nX-A: 1\r\nContent-Length: 3\r\nconnection:Keep-Alive\r\n\r\nabc",
    # near misses: the general path
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\n"
    b"\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
]
SOZU_ID = re.compile(rb"(?im)^(sozu-id: )[0-9a-f]+\r$")
CLIENT_PORT = re.compile(r':\d+"')


@pytest.fixture
def fast_toggle():
    previous = Http.FAST_RESPONSES
    yield
    Http.FAST_RESPONSES = previous


def exchange(proxy, address: str, fast: bool, count: int) -> list[bytes]:
    in_worker(proxy, lambda: setattr(Http, "FAST_RESPONSES", fast))
    seen = []
    with RawClient(address) as client:
        for _ in range(count):
            response = client.request(get_request("/"))
            seen.append(SOZU_ID.sub(rb"\1X\r", response.raw_head) + response.raw_body)
    return seen


@pytest.mark.parametrize("answer", ANSWERS, ids=range(len(ANSWERS)))
def test_fast_and_general_paths_send_the_same_bytes(proxy, make_backend, fast_toggle, answer):
    backend = make_backend(fixed(answer))
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    add_frontend(proxy, address, "app", headers=[
        {"position": "RESPONSE", "key": "X-Edge", "val": "pysozu"}])
    fast = exchange(proxy, address, True, 3)
    general = exchange(proxy, address, False, 3)
    assert fast == general
    assert all(b"X-Edge: pysozu\r\n" in r for r in fast)
    assert all(b"\r\nsozu-id: x\r\n" in r.lower() for r in fast)
    assert all(b"\r\nconnection:" not in r.lower() for r in fast)  # keep-alive, said by none


REQUESTS = [
    # the usual kind: only lines added
    b"GET /a HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n",
    b"GET /b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    # the general path: headers the proxy rewrites, or drops
    b"GET /c HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    b"GET /d HTTP/1.1\r\nHost: localhost\r\nForwarded: for=10.0.0.1\r\n"
    b"X-Forwarded-Proto: https\r\n\r\n",
    b"GET /e HTTP/1.1\r\nHost: localhost\r\nSozu-Id: forged\r\nX-Request-Id: mine\r\n\r\n",
    b"GET /f HTTP/1.1\r\nHost: localhost\r\nX-Other: 1\r\nX-More: 2\r\n\r\n",
]


def forwarded(proxy, address: str, backend, fast: bool) -> list[list[tuple[str, str]]]:
    in_worker(proxy, lambda: setattr(Http, "FAST_REQUESTS", fast))
    start = len(backend.requests)
    with RawClient(address) as client:
        for request in REQUESTS:
            assert client.request(request).status == 200
    ids = {"sozu-id", "x-request-id"}
    # request ids, and the client's port in Forwarded (a new connection each run), differ
    return [[(k, "ID" if k.lower() in ids and v != "mine" else CLIENT_PORT.sub(':P"', v))
             for k, v in r.headers] for r in backend.requests[start:]]


@pytest.fixture
def fast_requests_toggle():
    previous = Http.FAST_REQUESTS
    yield
    Http.FAST_REQUESTS = previous


def test_fast_and_general_request_rewrites_agree(proxy, make_http_backend,
                                                 fast_requests_toggle):
    backend = make_http_backend()
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    add_frontend(proxy, address, "app", hostname="localhost", headers=[
        {"position": "REQUEST", "key": "X-Edge", "val": "pysozu"}])
    fast = forwarded(proxy, address, backend, True)
    general = forwarded(proxy, address, backend, False)
    assert fast == general
    assert all(("X-Edge", "pysozu") in headers for headers in fast)
    assert all(sum(k.lower() == "sozu-id" for k, _ in headers) == 1 for headers in fast)
