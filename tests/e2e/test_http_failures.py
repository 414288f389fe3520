"""Failures seen from an HTTP client: dead backends, backends that close or answer garbage,
backends dying mid-response, timeouts, and clients that go away mid-request."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import WAIT, dead_address
from tests.e2e.helpers import counters, events_so_far, kinds, wait_for, wait_sessions
from tests.e2e.http_helpers import (
    RawClient,
    fetch,
    fixed,
    gauges,
    get_request,
    http_app,
    scripted,
)


def _released(proxy) -> None:
    """Every session, backend connection and buffer of the worker is gone."""
    wait_sessions(proxy, 0)
    wait_for(lambda: gauges(proxy).get("backend.connections", 0) == 0,
             what="backend connections released")
    wait_for(lambda: proxy.worker.server.pool.in_use == 0, what="buffers released")


def _close_without_answer(conn, reader, request):
    return True  # read the request, then close


# -- no backend ----------------------------------------------------------------------------------


def test_dead_backend_503_with_event(proxy):
    address = http_app(proxy, [dead_address()])
    with RawClient(address) as client:
        response = client.request(get_request("/"))
        assert response.status == 503
        assert b"503 Service Unavailable" in response.body
        assert response.header("Connection") == "close"
        client.expect_eof()
    assert counters(proxy)["backend.connections.error"] >= 1  # it was tried
    event = proxy.channel.wait_event("NO_AVAILABLE_BACKENDS")
    assert event["content"]["cluster_id"] == "app"
    _released(proxy)


def test_cluster_without_backends_503(proxy):
    address = http_app(proxy, [])
    assert fetch(address).status == 503
    assert proxy.channel.wait_event("NO_AVAILABLE_BACKENDS")["content"]["cluster_id"] == "app"


def test_dead_and_live_backend_every_request_served(proxy, make_http_backend):
    live = make_http_backend("live")
    address = http_app(proxy, [dead_address(), live.address])
    for n in range(6):
        response = fetch(address, f"/{n}")
        assert response.status == 200, response.body
    assert live.paths() == [f"/{n}" for n in range(6)]
    assert counters(proxy)["backend.connections.error"] >= 1
    assert "NO_AVAILABLE_BACKENDS" not in kinds(events_so_far(proxy))


# -- backend closes before the response ---------------------------------------------------------


def test_close_before_head_retried_when_no_body(proxy, make_backend, make_http_backend):
    closer = make_backend(scripted(_close_without_answer))
    live = make_http_backend("live")
    # round robin starts with the closer: the request is retried on the other backend
    address = http_app(proxy, [closer.address, live.address])
    response = fetch(address, "/idempotent")
    assert response.status == 200 and response.body == b"live GET /idempotent"
    assert b"GET /idempotent" in closer.conn(0).received()  # the first attempt happened


def test_close_before_head_with_body_is_502(proxy, make_backend, make_http_backend):
    closer = make_backend(scripted(_close_without_answer))
    live = make_http_backend("live")
    address = http_app(proxy, [closer.address, live.address])
    with RawClient(address) as client:
        response = client.request(get_request("/upload", method="POST", body=b"x" * 1000))
        assert response.status == 502
        assert b"502 Bad Gateway" in response.body
        client.expect_eof()
    assert live.requests == []  # a consumed body is never replayed
    assert closer.conn(0).received().endswith(b"x" * 1000)
    _released(proxy)


def test_stale_keep_alive_backend_connection_retried(proxy, make_backend):
    def one_then_close(conn, reader, request):
        # no Connection: close, yet the backend drops the connection after one response
        # (its idle timeout): the proxy's next request on it must not fail
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    backend = make_backend(scripted(one_then_close))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        for n in range(5):
            assert client.request(get_request(f"/{n}")).body == b"ok"
            backend.conn(n).eof.wait(WAIT)  # the backend's side is closed before the next
    assert len(backend.conns) == 5


# -- invalid responses -------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n",
], ids=["status", "version", "cl-te", "two-cl", "bad-cl", "bare-lf", "header-name"])
def test_invalid_response_head_is_502(proxy, make_backend, answer):
    backend = make_backend(fixed(answer))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/"))
        assert response.status == 502, response.start
        assert b"502 Bad Gateway" in response.body
        client.expect_eof()
    assert counters(proxy).get("http.backend_parse_errors") == 1
    _released(proxy)


def test_bad_chunk_after_head_closes_client(proxy, make_backend):
    backend = make_backend(fixed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nnope\r\n"))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/"))
        head = client.reader.read_head()
        assert head is not None and head.startswith(b"HTTP/1.1 200")
        # the connection ends: no 502 glued onto the body (at most the valid chunk went out)
        rest = client.reader.read_to_eof()
    assert b"5\r\nhello\r\n".startswith(rest), rest
    assert counters(proxy).get("http.backend_parse_errors") == 1
    _released(proxy)


def test_backend_dies_mid_response(proxy, make_backend):
    backend = make_backend(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 100,
                                 close=True))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/"))
        head = client.reader.read_head()
        assert head is not None and b"Content-Length: 1000" in head
        rest = client.reader.read_to_eof()
    assert rest == b"a" * 100  # truncated: the client sees a short body and the close
    _released(proxy)


# -- timeouts ------------------------------------------------------------------------------------


def test_backend_timeout_is_504(proxy, make_backend):
    never = threading.Event()

    def hold(conn, reader, request):
        never.wait(WAIT)  # answers nothing; the test's cleanup ends it
        return True

    backend = make_backend(scripted(hold))
    address = http_app(proxy, [backend.address], listener={"back_timeout": 1})
    try:
        started = time.monotonic()
        with RawClient(address) as client:
            response = client.request(get_request("/slow"))
            assert response.status == 504
            assert b"504 Gateway Timeout" in response.body
            client.expect_eof()
        assert 0.9 < time.monotonic() - started < 5
        assert counters(proxy)["backend.timeout"] == 1
        _released(proxy)
    finally:
        never.set()


def test_request_timeout_is_408(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address], listener={"request_timeout": 1})
    started = time.monotonic()
    with RawClient(address) as client:
        client.send(b"GET /half HTTP/1.1\r\nHost: app.te")  # half a head, then nothing
        response = client.response()
        assert response.status == 408
        assert b"408 Request Timeout" in response.body
        client.expect_eof()
    assert 0.9 < time.monotonic() - started < 5
    assert backend.requests == []


def test_idle_keep_alive_client_closed_silently(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address], listener={"request_timeout": 1})
    with RawClient(address) as client:
        assert client.request(get_request("/")).status == 200
        # nothing was started: no 408, just the close
        client.expect_eof(timeout=5)
    _released(proxy)


# -- the client goes away ----------------------------------------------------------------------


def test_client_disconnects_mid_body(proxy, make_backend):
    backend = make_backend(scripted(lambda conn, reader, request: None))  # reads until EOF
    address = http_app(proxy, [backend.address])
    client = RawClient(address)
    client.send(get_request("/up", method="POST", headers=[("Content-Length", "1000000")])
                + b"z" * 100_000)
    conn = backend.conn(0)
    wait_for(lambda: conn.received().endswith(b"z" * 1000), what="part of the body")
    assert gauges(proxy)["backend.connections"] == 1
    client.close()
    # the session ends and lets go of its backend connection: the backend sees the close
    assert conn.eof.wait(WAIT)
    _released(proxy)
    assert len(conn.received()) < 1_000_000
