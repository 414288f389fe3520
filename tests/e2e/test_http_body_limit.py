"""``max_body_size`` on listeners and clusters: 413 before the backend sees anything."""

from __future__ import annotations

from tests.e2e.http_helpers import (
    HOST,
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_listen,
)


def _setup(proxy, make_http_backend, listener_limit=None, **cluster):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address], **cluster)
    fields = {} if listener_limit is None else {"max_body_size": listener_limit}
    address = http_listen(proxy, **fields)
    add_frontend(proxy, address, "app")
    return backend, address


def test_content_length_over_the_listener_limit(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend, 10)
    too_big = fetch(address, "/echo", method="POST", body=b"x" * 11)
    assert too_big.status == 413
    assert b"413" in too_big.body
    fits = fetch(address, "/echo", method="POST", body=b"y" * 10)
    assert fits.status == 200 and fits.body == b"y" * 10
    assert [r.body for r in backend.requests] == [b"y" * 10]  # the big one never went out


def test_chunked_body_over_the_limit(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend, 10)
    with RawClient(address) as client:
        client.send(f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n".encode())
        assert client.response("POST").status == 413
        client.expect_eof()
    with RawClient(address) as client:
        client.send(f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n".encode())
        response = client.response("POST")
        assert response.status == 200 and response.body == b"abcdefghij"
    assert [r.body for r in backend.requests] == [b"abcdefghij"]


def test_expect_continue_is_answered_413_without_the_body(proxy, make_http_backend):
    backend, address = _setup(proxy, make_http_backend, 100)
    with RawClient(address) as client:
        client.send(get_request("/echo", method="POST",
                                headers=[("Expect", "100-continue"),
                                         ("Content-Length", "1000")]))
        response = client.response("POST")  # no body was sent: the answer comes at once
        assert response.status == 413
        client.expect_eof()
    assert not backend.requests


def test_cluster_limit_overrides_the_listener(proxy, make_http_backend):
    _backend, address = _setup(proxy, make_http_backend, 10, max_body_size=0)
    assert fetch(address, "/echo", method="POST", body=b"z" * 1000).status == 200
    other = make_http_backend("small")
    add_cluster(proxy, "small", [other.address], max_body_size=5)
    add_frontend(proxy, address, "small", hostname="small.test")
    assert fetch(address, "/echo", host="small.test", method="POST",
                 body=b"123456").status == 413
    assert fetch(address, "/echo", host="small.test", method="POST", body=b"12345").status == 200


def test_limit_changes_live(proxy, make_http_backend):
    _backend, address = _setup(proxy, make_http_backend)
    assert fetch(address, "/echo", method="POST", body=b"a" * 5000).status == 200  # unlimited
    proxy.ok("UPDATE_HTTP_LISTENER", address=address, max_body_size=4096)
    assert fetch(address, "/echo", method="POST", body=b"a" * 5000).status == 413
    assert fetch(address, "/echo", method="POST", body=b"a" * 4096).status == 200
    proxy.ok("UPDATE_HTTP_LISTENER", address=address, max_body_size=0)
    assert fetch(address, "/echo", method="POST", body=b"a" * 5000).status == 200
