"""Changes while clients are served: blue/green backend switches and frontend changes under a
load loop, removing a backend with a request in flight, soft stop; metrics and access logs."""

from __future__ import annotations

import json
from itertools import groupby

import pytest

from pysozu.protocols.access_log import AccessLogger
from tests.e2e.helpers import events_so_far, in_worker, kinds, wait_for, wait_sessions
from tests.e2e.http_helpers import (
    RawClient,
    add_cluster,
    add_frontend,
    fetch,
    get_request,
    http_app,
    http_listen,
    load_loop,
)


def _served_by(body: bytes) -> str:
    return body.split(b" ")[0].decode()


@pytest.mark.parametrize("keep_alive", [False, True], ids=["new-connections", "keep-alive"])
def test_blue_green_switch_under_load(proxy, make_http_backend, keep_alive):
    blue = [make_http_backend("blue"), make_http_backend("blue")]
    green = [make_http_backend("green"), make_http_backend("green")]
    address = http_app(proxy, [b.address for b in blue])
    with load_loop(address, keep_alive=keep_alive) as loop:
        wait_for(lambda: loop.count() >= 20, what="requests served by blue")
        for n, backend in enumerate(green):
            proxy.ok("ADD_BACKEND", cluster_id="app", backend_id=f"green-{n}",
                     address=backend.address)
        for n, backend in enumerate(blue):
            proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id=f"app-{n}",
                     address=backend.address)
        switched = loop.count()
        # blue drains: each removed backend reports it has no connection left
        drained = set()
        while len(drained) < 2:
            event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS")
            drained.add(event["content"]["backend_id"])
        assert drained == {"app-0", "app-1"}
        for backend in blue:  # now the old servers can go
            backend.close()
        wait_for(lambda: loop.count() >= switched + 40, what="requests after the switch")
    results = loop.results
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    names = [_served_by(body) for _, body in results]
    assert names[0] == "blue" and names[-1] == "green"
    # one switch, never back: blue* then green*
    assert [name for name, _ in groupby(names)] == ["blue", "green"]
    assert all(name == "green" for name in names[switched + 1:])


def test_frontend_add_remove_under_load(proxy, make_http_backend):
    backend = make_http_backend("app")
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    with load_loop(address, host="live.test") as loop:
        wait_for(lambda: loop.count() >= 10, what="404s before the frontend exists")
        add_frontend(proxy, address, "app", "live.test")
        added = loop.count()
        wait_for(lambda: loop.count() >= added + 20, what="requests after the add")
        # requests done before the removal is sent were all served (the count read after
        # its answer may already include a 404: the loop runs on while this thread reads)
        before_removal = loop.count()
        proxy.ok("REMOVE_HTTP_FRONTEND", address=address, cluster_id="app",
                 hostname="live.test")
        removed = loop.count()
        wait_for(lambda: loop.count() >= removed + 20, what="requests after the removal")
    statuses = [status for status, _ in loop.results]
    assert set(statuses) <= {200, 404}, statuses  # no failure of any other kind
    assert [s for s, _ in groupby(statuses)] == [404, 200, 404]
    assert all(s == 200 for s in statuses[added + 1: before_removal])
    assert all(s == 404 for s in statuses[removed + 1:])


def test_backend_removed_with_request_in_flight(proxy, make_http_backend):
    backend = make_http_backend("old")
    backend.release.clear()
    other = make_http_backend("new")
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/hold"))
        assert backend.arrived.wait(5)
        proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-1", address=other.address)
        proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-0",
                 address=backend.address)
        # the in-flight request still holds the connection: no drain event yet
        assert "REMOVED_BACKEND_HAS_NO_CONNECTIONS" not in kinds(events_so_far(proxy))
        backend.release.set()
        response = client.response()
        assert response.status == 200 and response.body == b"old GET /hold"
        # the client keeps its connection, but the session lets go of the removed backend
        event = proxy.channel.wait_event("REMOVED_BACKEND_HAS_NO_CONNECTIONS", timeout=5)
        assert event["content"]["backend_id"] == "app-0"
        # the next request on the same client connection goes to the remaining backend
        assert client.request(get_request("/next")).body == b"new GET /next"


def test_soft_stop_finishes_in_flight_request(proxy, make_http_backend):
    backend = make_http_backend()
    backend.release.clear()
    address = http_app(proxy, [backend.address])
    idle = RawClient(address)
    with RawClient(address) as client, idle:
        assert idle.request(get_request("/before")).status == 200
        client.send(get_request("/hold"))
        assert backend.arrived.wait(5)
        stop_id = proxy.channel.send({"type": "SOFT_STOP"})
        assert proxy.channel.read_response(stop_id)["status"] == "PROCESSING"
        idle.expect_eof(timeout=5)  # an idle keep-alive client is let go at once
        backend.release.set()
        response = client.response()
        assert response.status == 200 and response.body == b"backend GET /hold"
        assert response.header("Connection") == "close"
        client.expect_eof(timeout=5)
    assert proxy.channel.read_response(stop_id, timeout=5)["status"] == "OK"


def test_soft_stop_serves_the_first_request_of_a_new_connection(proxy, make_http_backend):
    """A connection accepted before the listener closed, whose request had not arrived yet,
    is served (then closed): another worker or a rolling upgrade loses nothing."""
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as fresh:
        wait_sessions(proxy, 1)  # accepted, nothing sent yet
        stop_id = proxy.channel.send({"type": "SOFT_STOP"})
        assert proxy.channel.read_response(stop_id)["status"] == "PROCESSING"
        response = fresh.request(get_request("/late"))
        assert response.status == 200 and response.body == b"backend GET /late"
        assert response.header("Connection") == "close"
        fresh.expect_eof(timeout=5)
    assert proxy.channel.read_response(stop_id, timeout=5)["status"] == "OK"


def test_query_metrics(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    for _ in range(5):
        assert fetch(address, "/").status == 200
    assert fetch(address, "/", "nowhere.test").status == 404
    assert fetch(address, "/status/503").status == 503
    answer = proxy.request("QUERY_METRICS")
    assert answer["status"] == "OK"
    content = answer["content"]
    counters = content["counters"]
    assert counters["http.requests"] == 7
    assert counters["http.status.2xx"] == 5
    assert counters["http.status.4xx"] == 1
    assert counters["http.status.5xx"] == 1
    cluster = content["clusters"]["app"]["metrics"]
    assert cluster["http.status.2xx"] == 5 and cluster["http.status.5xx"] == 1
    times = cluster["request_time"]
    assert times["count"] == 6
    assert {"p50", "p90", "p99"} <= set(times)
    assert 0 < times["p50"] <= times["p90"] <= times["p99"]
    assert cluster["backend_response_time"]["count"] == 6
    # filtered: one cluster, one metric
    only = proxy.request("QUERY_METRICS", cluster_ids=["app"], metric_names=["http.status.2xx"])
    assert only["content"]["clusters"]["app"]["metrics"] == {"http.status.2xx": 5}


def test_access_log_json(proxy, make_http_backend, tmp_path):
    backend = make_http_backend("web")
    path = tmp_path / "access.log"
    logger = AccessLogger(f"file://{path}", "json")

    def install() -> None:
        proxy.worker.http.access_log = logger

    in_worker(proxy, install)
    try:
        address = http_app(proxy, [backend.address])
        with RawClient(address) as client:
            ok = client.request(get_request("/logged?q=1", headers=[("User-Agent", "t")]))
            client_address = "127.0.0.1:%d" % client.sock.getsockname()[1]
        missing = fetch(address, "/nope", "nowhere.test")
        assert ok.status == 200 and missing.status == 404

        def lines() -> list[dict]:
            return [json.loads(x) for x in path.read_text().splitlines()]

        # the worker writes the lines by itself, without anyone calling flush
        wait_for(lambda: path.exists() and len(lines()) == 2, what="two access log lines")
        first, second = lines()
        assert first["request_id"] == ok.header("Sozu-Id")
        assert first["status"] == 200 and first["method"] == "GET"
        assert first["path"] == "/logged?q=1" and first["authority"] == "app.test"
        assert first["cluster_id"] == "app" and first["backend_id"] == "app-0"
        assert first["backend_address"] == backend.address
        assert first["client"] == client_address
        assert first["protocol"] == "HTTP"
        assert first["bytes_out"] == len(ok.raw_head) + len(ok.body)
        assert first["request_time"] >= first["service_time"] >= 0
        assert second["status"] == 404 and second["request_id"] == missing.headers["Sozu-Id"]
        assert "cluster_id" not in second
    finally:
        in_worker(proxy, logger.close)
        wait_sessions(proxy, 0)
