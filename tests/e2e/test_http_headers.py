"""Headers the backend and the client see: forwarding headers, request ids, X-Real-IP,
per-frontend edits, sticky sessions, load balancing and backend connection reuse."""

from __future__ import annotations

import re

from tests.e2e.http_helpers import (
    HOST,
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_app,
    http_listen,
)

_FORWARDED_ELEMENT = re.compile(r'proto=http;for="127\.0\.0\.1:(\d+)";by=127\.0\.0\.1')


def test_forwarding_headers_created(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/h"))
        client_port = client.sock.getsockname()[1]
    assert response.status == 200
    seen = backend.last()
    assert seen.header_all("X-Forwarded-For") == ["127.0.0.1"]
    assert seen.header_all("X-Forwarded-Proto") == ["http"]
    assert seen.header_all("X-Forwarded-Port") == [address.rsplit(":", 1)[1]]
    forwarded = seen.header_all("Forwarded")
    assert len(forwarded) == 1
    match = _FORWARDED_ELEMENT.fullmatch(forwarded[0])
    assert match is not None, forwarded
    assert int(match.group(1)) == client_port  # for= is the client's own address
    # one request id, the same in X-Request-Id, in Sozu-Id both ways
    request_id = seen.header("Sozu-Id")
    assert request_id
    assert seen.header_all("X-Request-Id") == [request_id]
    assert response.header_all("Sozu-Id") == [request_id]
    assert seen.header("X-Real-IP") is None  # send_x_real_ip is off by default


def test_forwarding_headers_appended_or_kept(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    response = fetch(address, "/h", headers={
        "X-Forwarded-For": "10.0.0.1, 10.0.0.2",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "Forwarded": "for=10.0.0.1;proto=https",
        "X-Request-Id": "client-chosen-id",
        "Sozu-Id": "forged",
    })
    assert response.status == 200
    seen = backend.last()
    assert seen.header_all("X-Forwarded-For") == ["10.0.0.1, 10.0.0.2, 127.0.0.1"]
    assert seen.header_all("X-Forwarded-Proto") == ["https"]  # trusted, kept
    assert seen.header_all("X-Forwarded-Port") == ["443"]
    forwarded = seen.header_all("Forwarded")
    assert len(forwarded) == 1
    first, _, appended = forwarded[0].partition(", ")
    assert first == "for=10.0.0.1;proto=https"
    assert _FORWARDED_ELEMENT.fullmatch(appended), forwarded
    assert seen.header_all("X-Request-Id") == ["client-chosen-id"]
    # the client's Sozu-Id never reaches the backend: only the proxy's own
    sozu_ids = seen.header_all("Sozu-Id")
    assert len(sozu_ids) == 1 and sozu_ids[0] != "forged"
    assert response.headers.get_all("Sozu-Id") == sozu_ids


def test_request_ids_differ_per_request(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        ids = [client.request(get_request("/")).header("Sozu-Id") for _ in range(3)]
    assert len(set(ids)) == 3
    assert [r.header("Sozu-Id") for r in backend.requests] == ids


def test_x_real_ip_sent(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address], listener={"send_x_real_ip": True})
    fetch(address, "/", headers={"X-Real-IP": "203.0.113.9"})
    # not elided: the client's value stays and the peer's is added after it
    assert backend.last().header_all("X-Real-IP") == ["203.0.113.9", "127.0.0.1"]


def test_x_real_ip_elided_and_sent(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address],
                       listener={"send_x_real_ip": True, "elide_x_real_ip": True})
    fetch(address, "/", headers={"X-Real-IP": "203.0.113.9"})
    assert backend.last().header_all("X-Real-IP") == ["127.0.0.1"]


def test_x_real_ip_elided_only(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address], listener={"elide_x_real_ip": True})
    fetch(address, "/", headers={"X-Real-IP": "203.0.113.9"})
    assert backend.last().header_all("X-Real-IP") == []


def test_custom_sozu_id_header_name(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address], listener={"sozu_id_header": "X-Trace"})
    response = fetch(address, "/", headers={"X-Trace": "forged"})
    seen = backend.last()
    assert seen.header_all("X-Trace") == [response.headers["X-Trace"]]
    assert response.headers["X-Trace"] != "forged"
    assert seen.header("Sozu-Id") is None


def test_per_frontend_header_edits(proxy, make_http_backend):
    backend = make_http_backend()
    backend.response_headers = [("Server-Secret", "v1.2.3"), ("X-Both-Drop", "from-backend")]
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    add_frontend(proxy, address, "app", HOST, headers=[
        {"position": "REQUEST", "key": "X-Added-Req", "val": "to-backend"},
        {"position": "REQUEST", "key": "Authorization", "val": ""},  # delete
        {"position": "RESPONSE", "key": "X-Added-Resp", "val": "to-client"},
        {"position": "RESPONSE", "key": "Server-Secret", "val": ""},  # delete
        {"position": "BOTH", "key": "X-Both", "val": "yes"},
        {"position": "BOTH", "key": "X-Both-Drop", "val": ""},
    ])
    response = fetch(address, "/", headers={"Authorization": "Bearer s3cret",
                                            "X-Both-Drop": "from-client"})
    seen = backend.last()
    assert seen.header_all("X-Added-Req") == ["to-backend"]
    assert seen.header_all("Authorization") == []
    assert seen.header_all("X-Both") == ["yes"]
    assert seen.header_all("X-Both-Drop") == []
    assert seen.header_all("X-Added-Resp") == []  # response-only edits stay on their side
    assert response.headers.get_all("X-Added-Resp") == ["to-client"]
    assert response.headers.get_all("Server-Secret") is None
    assert response.headers.get_all("X-Both") == ["yes"]
    assert response.headers.get_all("X-Both-Drop") is None
    assert response.headers.get_all("X-Added-Req") is None


# -- sticky sessions ------------------------------------------------------------------------


def _sticky_cookie(response) -> str | None:
    for value in response.headers.get_all("Set-Cookie") or []:
        if value.startswith("SOZUBALANCEID="):
            return value
    return None


def test_sticky_sessions(proxy, make_http_backend):
    one, two = make_http_backend("one"), make_http_backend("two")
    address = http_listen(proxy)
    proxy.ok("ADD_CLUSTER", cluster_id="app", sticky_session=True)
    proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-1", address=one.address,
             sticky_id="sticky-one")
    proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-2", address=two.address,
             sticky_id="sticky-two")
    add_frontend(proxy, address, "app", HOST)

    first = fetch(address, "/")
    assert first.status == 200
    cookie = _sticky_cookie(first)
    served = first.body.split(b" ")[0].decode()
    assert cookie == f"SOZUBALANCEID=sticky-{served}; Path=/"
    pinned = one if served == "one" else two
    other = two if pinned is one else one

    # round robin would alternate: the cookie pins every new connection to one backend
    crumbs = f"a=1; SOZUBALANCEID=sticky-{served}; b=2"
    for _ in range(4):
        response = fetch(address, "/", headers={"Cookie": crumbs})
        assert response.body.startswith(served.encode())
        assert _sticky_cookie(response) is None  # already set: not repeated
    assert other.requests == []
    # the crumb was removed from the Cookie the backend sees, the others kept
    assert pinned.last().header_all("Cookie") == ["a=1; b=2"]
    only = fetch(address, "/", headers={"Cookie": f"SOZUBALANCEID=sticky-{served}"})
    assert only.status == 200
    assert pinned.last().header_all("Cookie") == []

    # the pinned backend goes away: the request goes elsewhere and gets a new cookie
    proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id=f"app-{1 if pinned is one else 2}",
             address=pinned.address)
    moved = fetch(address, "/", headers={"Cookie": f"SOZUBALANCEID=sticky-{served}"})
    assert moved.status == 200
    assert moved.body.startswith(other.name.encode())
    assert _sticky_cookie(moved) == f"SOZUBALANCEID=sticky-{other.name}; Path=/"


def test_no_sticky_cookie_without_sticky_session(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    response = fetch(address, "/", headers={"Cookie": "SOZUBALANCEID=app-0"})
    assert _sticky_cookie(response) is None
    assert backend.last().header_all("Cookie") == ["SOZUBALANCEID=app-0"]


# -- load balancing and backend connection reuse ----------------------------------------------


def test_round_robin_over_new_connections(proxy, make_http_backend):
    one, two, three = (make_http_backend(n) for n in ("one", "two", "three"))
    address = http_app(proxy, [one.address, two.address, three.address],
                       load_balancing="ROUND_ROBIN")
    served = [fetch(address, "/").body.split(b" ")[0].decode() for _ in range(9)]
    # a fixed rotation: each backend once per round, in the same order every round
    assert sorted(served[:3]) == ["one", "three", "two"]
    assert served[3:6] == served[:3] and served[6:9] == served[:3]
    assert one.connections == two.connections == three.connections == 3


def test_keep_alive_reuses_backend_connection(proxy, make_http_backend):
    one, two = make_http_backend("one"), make_http_backend("two")
    address = http_app(proxy, [one.address, two.address])
    with RawClient(address) as client:
        bodies = [client.request(get_request(f"/{n}")).body for n in range(5)]
    served = {body.split(b" ")[0] for body in bodies}
    assert len(served) == 1  # the session kept its backend connection
    backend = one if served == {b"one"} else two
    assert backend.connections == 1
    assert len({r.peer for r in backend.requests}) == 1
    assert [r.path for r in backend.requests] == [f"/{n}" for n in range(5)]
