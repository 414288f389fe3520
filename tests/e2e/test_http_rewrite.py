"""Frontend rewrites (``rewrite_host``/``rewrite_path``/``rewrite_port`` with captures) and
``redirect_template``, end to end: what the backend receives, what the client is told."""

from __future__ import annotations

import pytest

from tests.e2e.http_helpers import (
    HOST,
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_listen,
)


def _app(proxy, make_http_backend):
    backend = make_http_backend("app")
    add_cluster(proxy, "app", [backend.address])
    return backend, http_listen(proxy)


def test_rewrite_path_with_prefix_tail(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", path={"kind": "PREFIX", "value": "/api"},
                 rewrite_path="/v2$PATH[1]")
    assert fetch(address, "/api/users?id=7").status == 200
    assert fetch(address, "/api").status == 200
    seen = backend.requests
    assert [r.path for r in seen] == ["/v2/users?id=7", "/v2"]
    assert seen[0].header("Host") == HOST  # the host is not rewritten
    assert seen[0].header("X-Forwarded-Host") is None


def test_rewrite_path_with_regex_groups(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app",
                 path={"kind": "REGEX", "value": r"^/u/([a-z]+)/(\d+)$"},
                 rewrite_path="/users/$PATH[2]/$PATH[1]")
    assert fetch(address, "/u/alice/42").status == 200
    assert backend.requests[0].path == "/users/42/alice"


def test_rewrite_host_from_wildcard_and_regex_labels(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", hostname="*.shop.test",
                 rewrite_host="$HOST[1].internal", rewrite_path="/$HOST[1]$PATH[0]")
    add_frontend(proxy, address, "app", hostname="/([a-z]+)-([0-9]+)/.region.test",
                 rewrite_host="$HOST[2].$HOST[1].svc")
    assert fetch(address, "/cart", host="acme.shop.test").status == 200
    assert fetch(address, "/x", host="eu-3.region.test:80").status == 200
    first, second = backend.requests
    assert first.header("Host") == "acme.internal"
    assert first.header_all("Host") == ["acme.internal"]  # replaced, never doubled
    assert first.header("X-Forwarded-Host") == "acme.shop.test"
    assert first.path == "/acme/cart"
    assert second.header("Host") == "3.eu.svc"
    assert second.header("X-Forwarded-Host") == "eu-3.region.test:80"


def test_rewrite_host_in_pre_position_uses_whole_host_regex(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", hostname="/(.+)/.pre.test", position="PRE",
                 rewrite_host="$HOST[1]")
    assert fetch(address, "/", host="a.b.pre.test").status == 200
    assert backend.requests[0].header("Host") == "a.b"


def test_rewrite_host_replaces_client_forwarded_host(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", rewrite_host="origin.test")
    with RawClient(address) as client:
        client.send(get_request("/p", headers=[("X-Forwarded-Host", "evil.test"),
                                              ("Host", "second.test")]))
        # two Host headers: the parser refuses the request, nothing reaches the backend
        assert client.response().status == 400
    with RawClient(address) as client:
        client.send(get_request("/p", headers=[("X-Forwarded-Host", "evil.test")]))
        assert client.response().status == 200
    request = backend.requests[0]
    assert request.header_all("Host") == ["origin.test"]
    assert request.header_all("X-Forwarded-Host") == [HOST]


def test_rewrite_host_turns_absolute_form_into_origin_form(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", rewrite_host="origin.test")
    with RawClient(address) as client:
        client.send(f"GET http://{HOST}/abs?q=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert client.response().status == 200
    request = backend.requests[0]
    assert request.path == "/abs?q=1"
    assert request.header("Host") == "origin.test"


def test_rewrite_port_on_forward_sets_the_host_port(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", rewrite_port=8443)
    assert fetch(address, "/", host=f"{HOST}:8080").status == 200
    assert backend.requests[0].header("Host") == f"{HOST}:8443"
    assert backend.requests[0].header("X-Forwarded-Host") == f"{HOST}:8080"


def test_redirect_location_uses_rewrites(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", hostname="*.old.test", redirect="PERMANENT",
                 redirect_scheme="USE_HTTPS", rewrite_host="$HOST[1].new.test",
                 rewrite_path="/moved$PATH[0]", rewrite_port=8443)
    response = fetch(address, "/a?b=1", host="blog.old.test")
    assert response.status == 301
    assert response.headers["Location"] == "https://blog.new.test:8443/moved/a?b=1"
    assert not backend.requests


def test_redirect_rewrite_port_default_is_elided(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend)
    add_frontend(proxy, address, "app", redirect="FOUND", redirect_scheme="USE_HTTPS",
                 rewrite_port=443)
    response = fetch(address, "/x", host=f"{HOST}:8080")
    assert response.headers["Location"] == f"https://{HOST}/x"


def test_redirect_template(proxy, make_http_backend):
    _backend, address = _app(proxy, make_http_backend)
    template = ("HTTP/1.1 308 Moved For Good\r\nLocation: %REDIRECT_LOCATION\r\n"
                "X-Why: migration\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                "gone to %REDIRECT_LOCATION")
    add_frontend(proxy, address, "app", redirect="PERMANENT_REDIRECT",
                 rewrite_host="new.test", redirect_template=template)
    add_frontend(proxy, address, "app", hostname="plain.test", redirect="PERMANENT_REDIRECT")
    response = fetch(address, "/doc")
    assert response.status == 308
    assert response.headers["X-Why"] == "migration"
    assert response.headers["Location"] == "http://new.test/doc"
    assert response.body == b"gone to http://new.test/doc"
    other = fetch(address, "/doc", host="plain.test")  # another frontend: built-in template
    assert other.status == 308 and "X-Why" not in other.headers


def test_redirect_template_from_file(proxy, make_http_backend, tmp_path):
    _backend, address = _app(proxy, make_http_backend)
    path = tmp_path / "302.http"
    path.write_text("HTTP/1.1 302 Found\nLocation: %REDIRECT_LOCATION\nContent-Length: 0\n\n")
    add_frontend(proxy, address, "app", redirect="FOUND", redirect_template=f"file://{path}")
    port = address.rsplit(":", 1)[1]
    response = fetch(address, "/f")
    assert response.status == 302
    assert response.headers["Location"] == f"http://{HOST}:{port}/f"  # same host, same port


def test_removing_a_rewriting_frontend(proxy, make_http_backend):
    backend, address = _app(proxy, make_http_backend)
    front = dict(path={"kind": "PREFIX", "value": "/api"}, rewrite_path="/v2$PATH[1]")
    add_frontend(proxy, address, "app", **front)
    assert fetch(address, "/api/x").status == 200
    proxy.ok("REMOVE_HTTP_FRONTEND", address=address, hostname=HOST, cluster_id="app", **front)
    assert fetch(address, "/api/x").status == 404
    assert [r.path for r in backend.requests] == ["/v2/x"]


@pytest.mark.parametrize("fields,reason", [
    ({"rewrite_path": "/$PATH[1]", "path": {"kind": "EQUALS", "value": "/a"}},
     "$PATH[1] does not exist"),
    ({"rewrite_host": "$HOST[1]"}, "$HOST[1] does not exist"),
    ({"rewrite_host": "$HOST[2].x", "hostname": "*.a.test"}, "$HOST[2] does not exist"),
    ({"rewrite_path": "/$PATH[3]", "path": {"kind": "REGEX", "value": "(a)(b)"}},
     "$PATH[3] does not exist"),
    ({"rewrite_path": "/$HOST"}, "must start $HOST[n] or $PATH[n]"),
    ({"rewrite_path": "/$PATH[1"}, "must start $HOST[n] or $PATH[n]"),
    ({"rewrite_host": "a/b"}, "cannot be part of a host"),
    ({"rewrite_port": 0}, "rewrite_port"),
    ({"redirect_template": "HTTP/1.1 301 Moved\r\n\r\n"}, "redirect_template needs redirect"),
    ({"redirect_template": "HTTP/1.1 302 Found\r\n\r\n", "redirect": "PERMANENT"}, "301"),
])
def test_invalid_rewrites_are_refused(proxy, make_http_backend, fields, reason):
    _backend, address = _app(proxy, make_http_backend)
    request = {"address": address, "hostname": HOST, "cluster_id": "app", **fields}
    answer = proxy.request("ADD_HTTP_FRONTEND", **request)
    assert answer["status"] == "FAILURE", answer
    assert reason in answer["message"]
    state = proxy.request("STATUS")  # the worker lives on and the state is unchanged
    assert state["status"] == "OK"
    assert fetch(address, "/").status == 404
