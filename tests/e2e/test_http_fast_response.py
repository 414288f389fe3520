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
