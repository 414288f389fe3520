"""HTTP/2 to backends (cluster ``http2``): h2c with prior knowledge, behind HTTP/1.1 and
HTTP/2 clients. The backend is the ``h2`` package acting as a server (``H2Backend``)."""

from __future__ import annotations

import pytest

from tests.conftest import WAIT
from tests.e2e.h2_helpers import H2Backend, H2Client
from tests.e2e.http_helpers import HOST, RawClient, fetch, get_request, http_app


@pytest.fixture
def h2_backend():
    backend = H2Backend()
    try:
        yield backend
    finally:
        backend.close()


def _app(proxy, backend):
    return http_app(proxy, [backend.address], http2=True)


def test_http1_client_to_h2c_backend(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    response = fetch(address, "/hello?q=1")
    assert response.status == 200 and response.body == b"h2 GET /hello?q=1"
    _, headers, _, _ = h2_backend.requests[-1]
    assert headers[b":authority"] == HOST.encode()
    assert headers[b":scheme"] == b"http" and headers[b":path"] == b"/hello?q=1"
    assert b"connection" not in headers and b"host" not in headers
    assert headers[b"x-forwarded-proto"] == b"http"


def test_keep_alive_requests_share_one_backend_connection(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    with RawClient(address) as client:
        for n in range(5):
            response = client.request(get_request(f"/k/{n}"))
            assert response.body == b"h2 GET /k/%d" % n
    assert h2_backend.connections == 1
    assert [r[0] for r in h2_backend.requests] == [1] * 5


def test_request_bodies_and_response_without_length(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    body = bytes(range(256)) * 400
    echoed = fetch(address, "/echo", method="POST", body=body)
    assert echoed.status == 200 and echoed.body == body
    big = fetch(address, "/big/1000000")  # no content-length: chunked to the HTTP/1.1 client
    assert big.status == 200 and big.body == bytes(range(256)) * (1000000 // 256)


def test_chunked_upload_with_trailers_becomes_data_and_trailers(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    with RawClient(address) as client:
        response = client.request(
            b"POST /echo HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
            b"0\r\nX-Sum: 42\r\n\r\n")
    assert response.start.startswith("HTTP/1.1 200") and response.body == b"hello world"
    _, _, body, trailers = h2_backend.requests[-1]
    assert body == b"hello world" and trailers == [(b"x-sum", b"42")]


def test_response_trailers_reach_an_http1_client_in_the_last_chunk(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    with RawClient(address) as client:
        response = client.request(get_request("/trailers"))
    assert response.body == b"with trailers"
    assert ("x-checksum", "h2sum") in [(k.lower(), v) for k, v in response.trailers]


def test_backend_stream_reset_is_a_502(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    assert fetch(address, "/reset").status == 502
    assert fetch(address, "/after").body == b"h2 GET /after"


def test_h2_client_to_h2c_backend_many_streams(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    with H2Client(address) as client:
        sids = [client.request(f"/m/{n}") for n in range(40)]
        responses = client.wait(*sids)
        big = client.get("/big/300000")
    assert [bytes(r.body) for r in responses] == [b"h2 GET /m/%d" % n for n in range(40)]
    assert len(big.body) == 300000 - 300000 % 256
    assert len(h2_backend.requests) == 41


def test_health_checks_probe_h2c_backends_in_http2(proxy):
    sick, well = H2Backend(), H2Backend()
    try:
        sick.health_status = 503
        address = http_app(proxy, [well.address, sick.address], http2=True)
        proxy.ok("SET_HEALTH_CHECK", cluster_id="app", config={
            "uri": "/health", "interval": 1, "timeout": 1, "healthy_threshold": 1,
            "unhealthy_threshold": 1})
        event = proxy.channel.wait_event("HEALTH_CHECK_UNHEALTHY", timeout=WAIT)
        assert event["content"]["backend_id"] == "app-1"
        checks = proxy.ok("QUERY_HEALTH_CHECKS")["content"]["health_checks"]["app"]["backends"]
        assert checks["app-0"]["healthy"] is True  # an HTTP/1.1 probe would have failed it
        assert {fetch(address, "/h").body for _ in range(4)} == {b"h2 GET /h"}
        sick.health_status = 200
        event = proxy.channel.wait_event("HEALTH_CHECK_HEALTHY", timeout=WAIT)
        assert event["content"]["backend_id"] == "app-1"
        probes = [r for r in sick.requests if r[1][b":path"] == b"/health"]
        assert probes and probes[0][1][b"user-agent"] == b"pysozu-health-check"
    finally:
        sick.close()
        well.close()


def test_te_trailers_crosses_to_an_h2c_backend_and_hop_by_hop_fields_do_not(proxy, h2_backend):
    address = _app(proxy, h2_backend)
    response = fetch(address, "/te", headers={"TE": "trailers", "Keep-Alive": "timeout=5",
                                               "X-Mine": "kept"})
    assert response.status == 200
    _, headers, _, _ = h2_backend.requests[-1]
    assert headers[b"te"] == b"trailers" and headers[b"x-mine"] == b"kept"
    assert b"keep-alive" not in headers and b"connection" not in headers
