"""HTTP routing end to end: which cluster (and so which backend) serves a request.

Every cluster here has its own recording backend, whose name is in the response body, so
each assertion names the backend that really served the request.
"""

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


def _clusters(proxy, make_http_backend, *names: str) -> dict:
    backends = {}
    for name in names:
        backend = make_http_backend(name)
        add_cluster(proxy, name, [backend.address])
        backends[name] = backend
    return backends


def _served_by(address: str, host: str, path: str = "/", method: str = "GET") -> str:
    response = fetch(address, path, host, method=method)
    if response.status != 200:
        return str(response.status)
    return response.body.split(b" ")[0].decode()


def test_hostnames_exact_wildcard_regex(proxy, make_http_backend):
    _clusters(proxy, make_http_backend, "exact", "wild", "regex")
    address = http_listen(proxy)
    add_frontend(proxy, address, "exact", "www.example.com")
    add_frontend(proxy, address, "wild", "*.example.com")
    add_frontend(proxy, address, "regex", "/cdn[0-9]+/.static.test")
    assert _served_by(address, "www.example.com") == "exact"
    assert _served_by(address, "WWW.Example.COM:80") == "exact"  # case and port ignored
    assert _served_by(address, "api.example.com") == "wild"
    assert _served_by(address, "a.b.example.com") == "404"  # '*' is exactly one label
    assert _served_by(address, "example.com") == "404"
    assert _served_by(address, "cdn42.static.test") == "regex"
    assert _served_by(address, "cdnx.static.test") == "404"


def test_path_rules_precedence(proxy, make_http_backend):
    _clusters(proxy, make_http_backend, "root", "api", "apiv2", "exact", "regex")
    address = http_listen(proxy)
    add_frontend(proxy, address, "root", path={"kind": "PREFIX", "value": "/"})
    add_frontend(proxy, address, "api", path={"kind": "PREFIX", "value": "/api"})
    add_frontend(proxy, address, "apiv2", path={"kind": "PREFIX", "value": "/api/v2"})
    add_frontend(proxy, address, "exact", path={"kind": "EQUALS", "value": "/api/status"})
    add_frontend(proxy, address, "regex", path={"kind": "REGEX", "value": r"^/img/\d+\.png$"})
    assert _served_by(address, HOST, "/") == "root"
    assert _served_by(address, HOST, "/other") == "root"
    assert _served_by(address, HOST, "/api/users") == "api"  # longest prefix wins
    assert _served_by(address, HOST, "/api/v2/users") == "apiv2"
    assert _served_by(address, HOST, "/api/status") == "exact"  # full length beats prefixes
    assert _served_by(address, HOST, "/api/status/x") == "api"  # EQUALS is exact
    assert _served_by(address, HOST, "/img/12.png") == "regex"
    assert _served_by(address, HOST, "/img/x.png") == "root"


def test_method_filter(proxy, make_http_backend):
    _clusters(proxy, make_http_backend, "reads", "writes")
    address = http_listen(proxy)
    add_frontend(proxy, address, "writes", path={"kind": "EQUALS", "value": "/item"},
                 method="POST")
    add_frontend(proxy, address, "reads", path={"kind": "EQUALS", "value": "/item"},
                 method="GET")
    assert _served_by(address, HOST, "/item", "GET") == "reads"
    assert _served_by(address, HOST, "/item", "POST") == "writes"
    assert _served_by(address, HOST, "/item", "DELETE") == "404"


def test_pre_tree_post_positions(proxy, make_http_backend):
    _clusters(proxy, make_http_backend, "pre", "tree", "post")
    address = http_listen(proxy)
    add_frontend(proxy, address, "tree", HOST)
    # PRE is tried before the tree, even for a host the tree knows
    add_frontend(proxy, address, "pre", "*", position="PRE",
                 path={"kind": "PREFIX", "value": "/maintenance"})
    # POST is tried only when the tree has nothing: a catch-all
    add_frontend(proxy, address, "post", "*", position="POST")
    assert _served_by(address, HOST, "/x") == "tree"
    assert _served_by(address, HOST, "/maintenance/page") == "pre"
    assert _served_by(address, "other.test", "/maintenance") == "pre"
    assert _served_by(address, "other.test", "/x") == "post"


def test_no_match_is_404_and_backends_see_nothing(proxy, make_http_backend):
    backends = _clusters(proxy, make_http_backend, "app")
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", HOST, path={"kind": "PREFIX", "value": "/app"})
    with RawClient(address) as client:
        response = client.request(get_request("/elsewhere"))
        assert response.status == 404
        assert b"404 Not Found" in response.body
        assert response.header("Sozu-Id")
        client.expect_eof()  # default answers close the connection
    assert fetch(address, "/app", "unknown.test").status == 404
    assert backends["app"].requests == []


def test_frontend_without_cluster_is_401(proxy, make_http_backend):
    backends = _clusters(proxy, make_http_backend, "app")
    address = http_listen(proxy)
    add_frontend(proxy, address, "app", HOST)
    add_frontend(proxy, address, None, HOST, path={"kind": "PREFIX", "value": "/admin"})
    response = fetch(address, "/admin/panel")
    assert response.status == 401
    assert b"401 Unauthorized" in response.body
    assert fetch(address, "/public").status == 200
    assert backends["app"].paths() == ["/public"]


def test_live_frontend_add_and_remove(proxy, make_http_backend):
    backends = _clusters(proxy, make_http_backend, "one", "two")
    address = http_listen(proxy)
    assert _served_by(address, "one.test") == "404"
    add_frontend(proxy, address, "one", "one.test")
    assert _served_by(address, "one.test") == "one"
    # a keep-alive client sees the new frontend on its next request
    with RawClient(address) as client:
        assert client.request(get_request("/", "one.test")).status == 200
        add_frontend(proxy, address, "two", "two.test")
        assert client.request(get_request("/", "two.test")).body.startswith(b"two ")
        proxy.ok("REMOVE_HTTP_FRONTEND", address=address, cluster_id="one",
                 hostname="one.test")
        assert client.request(get_request("/", "one.test")).status == 404
    assert _served_by(address, "two.test") == "two"
    assert backends["one"].paths() == ["/", "/"]
