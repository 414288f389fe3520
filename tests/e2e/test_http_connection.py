"""The client connection's persistence: the proxy's own ``Connection`` word on responses and
answers, whatever the backend says about its own connection."""

from __future__ import annotations

from tests.e2e.http_helpers import (
    RawClient,
    add_cluster,
    add_frontend,
    get_request,
    http_listen,
)

KEEP_404 = ("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
            "no route for %ROUTE")
CLOSE_404 = ("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
             "closing")


def _app(proxy, make_http_backend, **listener):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    address = http_listen(proxy, **listener)
    add_frontend(proxy, address, "app")
    return backend, address


def test_backend_connection_close_stays_with_the_backend(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    backend.response_headers = [("Connection", "close")]
    with RawClient(address) as client:
        for n in range(3):
            response = client.request(get_request(f"/r{n}"))
            assert response.status == 200
            assert response.header("Connection") is None  # the client's connection lives on
    assert backend.paths() == ["/r0", "/r1", "/r2"]
    assert backend.connections == 3  # one backend connection per response, as it asked


def test_fields_named_by_backend_connection_are_dropped(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    backend.response_headers = [("Connection", "X-Hop, keep-alive"), ("X-Hop", "secret"),
                                ("Keep-Alive", "timeout=5"), ("X-End", "kept")]
    with RawClient(address) as client:
        response = client.request(get_request("/"))
    assert response.header("X-Hop") is None
    assert response.header("Keep-Alive") is None
    assert response.header("Connection") is None
    assert response.header("X-End") == "kept"


def test_http10_keep_alive_is_confirmed(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    request = get_request("/a", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
    with RawClient(address) as client:
        first = client.request(request)
        assert first.status == 200
        assert first.header("Connection") == "keep-alive"
        second = client.request(request.replace(b"/a", b"/b"))
        assert second.status == 200
    assert backend.paths() == ["/a", "/b"]


def test_http10_without_keep_alive_is_closed(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend)
    with RawClient(address) as client:
        response = client.request(get_request("/", version="HTTP/1.0"))
        assert response.status == 200
        assert response.header("Connection") == "close"
        client.expect_eof()


def test_answer_template_without_close_keeps_the_connection(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend, answers={"404": KEEP_404})
    with RawClient(address) as client:
        missing = client.request(get_request("/x", host="nowhere.test"))
        assert missing.status == 404
        assert missing.body == b"no route for /x"
        assert missing.header("Connection") is None
        found = client.request(get_request("/y"))  # same connection, next request
        assert found.status == 200
        http10 = client.request(get_request("/z", host="nowhere.test", version="HTTP/1.0",
                                            headers=[("Connection", "keep-alive")]))
        assert http10.status == 404 and http10.header("Connection") == "keep-alive"
    assert backend.paths() == ["/y"]


def test_answer_template_with_close_or_builtin_closes(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend, answers={"404": CLOSE_404})
    with RawClient(address) as client:
        assert client.request(get_request("/", host="nowhere.test")).status == 404
        client.expect_eof()
    add_frontend(proxy, address, None, hostname="deny.test")  # the built-in 401 closes
    with RawClient(address) as client:
        response = client.request(get_request("/", host="deny.test"))
        assert response.status == 401 and response.header("Connection") == "close"
        client.expect_eof()


def test_answer_to_a_request_with_a_body_closes(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend, answers={"404": KEEP_404})
    with RawClient(address) as client:
        # the body is never read: the next bytes on this connection could be anything
        client.send(get_request("/", host="nowhere.test", method="POST", body=b"x" * 10))
        assert client.response().status == 404
        client.expect_eof()


def test_answer_to_head_has_no_body(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend, answers={"404": KEEP_404})
    with RawClient(address) as client:
        missing = client.request(get_request("/x", host="nowhere.test", method="HEAD"),
                                 method="HEAD")
        assert missing.status == 404 and missing.body == b""
        assert missing.header("Content-Length") == str(len(b"no route for /x"))
        # nothing was left on the wire: the next answer parses from its first byte
        found = client.request(get_request("/y"))
        assert found.status == 200
    add_frontend(proxy, address, None, hostname="deny.test")  # a built-in template
    with RawClient(address) as client:
        client.send(get_request("/", host="deny.test", method="HEAD"))
        response = client.response("HEAD")
        assert response.status == 401 and response.body == b""
        client.expect_eof()
