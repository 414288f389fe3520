"""``expect_proxy`` on HTTP listeners: the PROXY header names the client for every rule."""

from __future__ import annotations

from pysozu.protocols.proxy_protocol import build_v1, build_v2
from tests.e2e.helpers import wait_for
from tests.e2e.http_helpers import (
    RawClient,
    add_cluster,
    add_frontend,
    get_request,
    http_listen,
    status,
)

CLIENT = ("203.0.113.9", 40123)
PROXY_SIDE = ("198.51.100.1", 80)


def _setup(proxy, make_http_backend, **listener):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy, expect_proxy=True, **listener)
    add_frontend(proxy, address, "app")
    return backend, address


def _errors(proxy) -> int:
    return int(status(proxy)["metrics"]["counters"].get("proxy_protocol.errors", 0))


def test_v1_header_then_keep_alive_requests(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend)
    with RawClient(address) as client:
        # the header and the first request in one segment: the request must not be lost
        first = client.request(build_v1(CLIENT, PROXY_SIDE) + get_request("/one"))
        second = client.request(get_request("/two"))
    assert (first.status, second.status) == (200, 200)
    for request in backend.requests:
        assert request.header("X-Forwarded-For") == CLIENT[0]
        assert f'for="{CLIENT[0]}:{CLIENT[1]}"' in request.header("Forwarded")
    assert backend.paths() == ["/one", "/two"]


def test_v2_header_in_pieces(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend)
    header = build_v2(("2001:db8::7", 5555), ("2001:db8::1", 80))
    with RawClient(address) as client:
        client.send(header[:7])
        client.send(header[7:20])
        client.send(header[20:])
        assert client.request(get_request("/v6")).status == 200
    assert backend.requests[0].header("X-Forwarded-For") == "2001:db8::7"
    assert '"[2001:db8::7]:5555"' in backend.requests[0].header("Forwarded")


def test_local_command_keeps_the_socket_peer(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend)
    with RawClient(address) as client:
        response = client.request(build_v2(None, None, command="LOCAL") + get_request("/"))
    assert response.status == 200
    assert backend.requests[0].header("X-Forwarded-For") == "127.0.0.1"


def test_bad_or_missing_header_closes_without_a_request(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend)
    before = _errors(proxy)
    with RawClient(address) as client:
        client.send(get_request("/"))  # plain HTTP where a PROXY header is due
        client.expect_eof()
    with RawClient(address) as client:
        client.send(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n")  # port out of range
        client.expect_eof()
    wait_for(lambda: _errors(proxy) >= before + 2, what="two PROXY protocol errors counted")
    assert not backend.requests


def test_per_ip_limit_counts_the_real_client(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address], max_connections_per_ip=1)
    address = http_listen(proxy, expect_proxy=True)
    add_frontend(proxy, address, "app")
    with RawClient(address) as first, RawClient(address) as other, RawClient(address) as same:
        assert first.request(build_v1(CLIENT, PROXY_SIDE) + get_request("/")).status == 200
        # another real client through the same load balancer address: its own slot
        assert other.request(build_v1(("203.0.113.10", 1), PROXY_SIDE)
                             + get_request("/")).status == 200
        # the same real client a second time: over its limit
        assert same.request(build_v1(CLIENT, PROXY_SIDE) + get_request("/")).status == 429


def test_expect_proxy_switched_on_live(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy)
    add_frontend(proxy, address, "app")
    with RawClient(address) as client:
        assert client.request(get_request("/plain")).status == 200
    proxy.ok("UPDATE_HTTP_LISTENER", address=address, expect_proxy=True)
    with RawClient(address) as client:
        assert client.request(build_v1(CLIENT, PROXY_SIDE) + get_request("/proxied")).status \
            == 200
    assert backend.requests[-1].header("X-Forwarded-For") == CLIENT[0]
    listed = proxy.ok("LIST_LISTENERS")["content"]["http_listeners"][address]
    assert listed["expect_proxy"] is True
