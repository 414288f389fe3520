"""ConfigState with HTTP listeners, HTTP frontends, health checks and the per-IP limit:
refusals, apply, queries, digests, rebuild, diff and state files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pysozu.command import Request, make_request
from pysozu.state import STATE_SEPARATOR, ConfigState, StateError


def req(request_type: str, **fields: Any) -> Request:
    return make_request("t", request_type, **fields)


H1, H2, T1 = "0.0.0.0:80", "[::]:8080", "127.0.0.1:9000"
B1, B2 = "10.0.0.1:80", "10.0.0.2:80"


def cluster(cluster_id: str = "app", **fields: Any) -> Request:
    return req("ADD_CLUSTER", cluster_id=cluster_id, **fields)


def http_listener(address: str = H1, **fields: Any) -> Request:
    return req("ADD_HTTP_LISTENER", address=address, **fields)


def front(
    cluster_id: str | None = "app",
    hostname: str = "example.com",
    path: str = "",
    kind: str = "PREFIX",
    address: str = H1,
    **fields: Any,
) -> Request:
    return req(
        "ADD_HTTP_FRONTEND",
        cluster_id=cluster_id,
        address=address,
        hostname=hostname,
        path={"kind": kind, "value": path},
        **fields,
    )


def remove_front(request: Request, **changes: Any) -> Request:
    return req("REMOVE_HTTP_FRONTEND", **{**request.fields, **changes})


def health(cluster_id: str = "app", uri: str = "/health", **config: Any) -> Request:
    return req("SET_HEALTH_CHECK", cluster_id=cluster_id, config={"uri": uri, **config})


def populated() -> ConfigState:
    return ConfigState.from_requests(
        [
            http_listener(H1, answers={"503": "busy"}, active=True),
            http_listener(H2, sticky_name="S", request_timeout=4),
            req("ADD_TCP_LISTENER", address=T1),
            req("SET_MAX_CONNECTIONS_PER_IP", limit=20),
            cluster("app", sticky_session=True, answers={"404": "nope"}),
            cluster("api", https_redirect=True),
            cluster("tcp"),
            front("app", "example.com"),
            front("app", "example.com", "/static", tags={"k": "v"}),
            front("api", "example.com", "/api", method="POST", position="PRE"),
            front("api", "*.example.com", "^/v[0-9]+/", kind="REGEX", address=H2),
            front(None, "admin.example.com", redirect="UNAUTHORIZED"),
            req("ADD_TCP_FRONTEND", cluster_id="tcp", address=T1),
            health("app", interval=2),
            req("ADD_BACKEND", cluster_id="app", backend_id="a1", address=B1),
            req("ADD_BACKEND", cluster_id="api", backend_id="p1", address=B2),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

CHECK_ERRORS: list[tuple[str, list[Request], Request, str]] = [
    ("http listener on a tcp address", [req("ADD_TCP_LISTENER", address=H1)], http_listener(),
     "a TCP listener already exists on 0.0.0.0:80"),
    ("duplicate http listener", [http_listener()], http_listener(sticky_name="X"),
     "a HTTP listener already exists on 0.0.0.0:80"),
    ("update unknown http listener", [req("ADD_TCP_LISTENER", address=H1)],
     req("UPDATE_HTTP_LISTENER", address=H1, request_timeout=1),
     "HTTP listener 0.0.0.0:80 not found"),
    ("remove http listener as tcp", [http_listener()],
     req("REMOVE_LISTENER", address=H1, proxy="TCP"), "TCP listener 0.0.0.0:80 not found"),
    ("remove https listener", [http_listener()],
     req("REMOVE_LISTENER", address=H1, proxy="HTTPS"), "HTTPS listener 0.0.0.0:80 not found"),
    ("activate unknown http listener", [],
     req("ACTIVATE_LISTENER", address=H1, proxy="HTTP"), "HTTP listener 0.0.0.0:80 not found"),
    ("frontend for unknown cluster", [], front("nope"),
     "cluster 'nope' not found (ADD_HTTP_FRONTEND example.com PREFIX '' on 0.0.0.0:80)"),
    ("duplicate frontend", [cluster(), front()], front(),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 already exists (cluster 'app')"),
    ("same rule for another cluster", [cluster("a"), cluster("b"), front("a", path="/x")],
     front("b", path="/x", tags={"other": "tags"}),
     "HTTP frontend example.com PREFIX '/x' on 0.0.0.0:80 already exists (cluster 'a')"),
    ("same rule, hostname in another case", [cluster(), front()], front(hostname="EXAMPLE.com"),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 already exists"),
    ("duplicate deny route", [front(None, redirect="UNAUTHORIZED")], front(None),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 already exists (no cluster)"),
    ("duplicate with method and position",
     [cluster(), front(method="GET", position="POST")], front(method="GET", position="POST"),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80, method GET, position POST already "
     "exists (cluster 'app')"),
    ("remove unknown frontend", [cluster()], remove_front(front()),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 not found for cluster 'app'"),
    ("remove frontend of another cluster", [cluster("a"), cluster("b"), front("a")],
     remove_front(front("b")),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 not found for cluster 'b'"),
    ("remove deny route naming a cluster", [cluster(), front(None)], remove_front(front("app")),
     "not found for cluster 'app'"),
    ("remove frontend without its cluster", [cluster(), front()], remove_front(front(None)),
     "HTTP frontend example.com PREFIX '' on 0.0.0.0:80 not found for no cluster"),
    ("remove frontend with another path kind", [cluster(), front(path="/a")],
     remove_front(front(path="/a", kind="EQUALS")),
     "HTTP frontend example.com EQUALS '/a' on 0.0.0.0:80 not found for cluster 'app'"),
    ("remove frontend with another method", [cluster(), front()],
     remove_front(front(method="GET")), "method GET not found for cluster 'app'"),
    ("remove frontend in another position", [cluster(), front()],
     remove_front(front(position="PRE")), "position PRE not found for cluster 'app'"),
    ("health check for unknown cluster", [], health("nope"),
     "cluster 'nope' not found (SET_HEALTH_CHECK)"),
    ("remove health check of unknown cluster", [],
     req("REMOVE_HEALTH_CHECK", cluster_id="nope"),
     "cluster 'nope' not found (REMOVE_HEALTH_CHECK)"),
    ("remove missing health check", [cluster()], req("REMOVE_HEALTH_CHECK", cluster_id="app"),
     "cluster 'app' has no health check"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "request_", "message"),
    [case[1:] for case in CHECK_ERRORS],
    ids=[case[0] for case in CHECK_ERRORS],
)
def test_check_refuses(setup: list[Request], request_: Request, message: str) -> None:
    state = ConfigState.from_requests(setup)
    before, snapshot = state.hash(), state.copy()
    with pytest.raises(StateError) as info:
        state.apply(request_)
    assert message in str(info.value)
    assert state.hash() == before
    assert state == snapshot


def test_frontends_do_not_need_their_listener() -> None:
    """Sōzu's state.rs does not tie a frontend to a listener (it may arrive later)."""
    state = ConfigState.from_requests([cluster(), front(address="10.9.9.9:80")])
    assert state.http_listeners == {}
    assert [f["address"] for f in state.http_frontends] == ["10.9.9.9:80"]


@pytest.mark.parametrize(
    "request_",
    [
        req("QUERY_CLUSTERS_BY_DOMAIN", hostname="example.com"),
        req("QUERY_METRICS"),
        req("CONFIGURE_METRICS", configuration="DISABLED"),
        req("LOGGING", filter="debug"),
        req("QUERY_HEALTH_CHECKS"),
        req("QUERY_MAX_CONNECTIONS_PER_IP"),
    ],
    ids=lambda r: r.type,
)
def test_queries_and_runtime_settings_leave_the_state_alone(request_: Request) -> None:
    state = populated()
    before = state.hash()
    state.check(request_)
    assert state.apply(request_) is False
    assert state.hash() == before


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------


def test_http_listener_add_update_and_answers_merge() -> None:
    state = ConfigState.from_requests([http_listener(answers={"503": "busy", "404": "gone"})])
    assert state.apply(req("UPDATE_HTTP_LISTENER", address=H1)) is False
    update = req(
        "UPDATE_HTTP_LISTENER",
        address=H1,
        request_timeout=3,
        sticky_name="LB",
        answers={"503": "", "502": "bad"},  # "" keeps 503's template
        send_x_real_ip=True,
    )
    assert state.apply(update) is True
    assert state.http_listeners[H1] == {
        **http_listener().fields,
        "request_timeout": 3,
        "sticky_name": "LB",
        "answers": {"503": "busy", "404": "gone", "502": "bad"},
        "send_x_real_ip": True,
    }
    assert state.apply(update) is False  # same patch again: nothing changes
    assert state.apply(req("ACTIVATE_LISTENER", address=H1, proxy="HTTP")) is True
    assert state.http_listeners[H1]["active"] is True
    assert state.apply(req("REMOVE_LISTENER", address=H1, proxy="HTTP")) is True
    assert state.http_listeners == {}


def test_update_does_not_alias_the_request() -> None:
    state = ConfigState.from_requests([http_listener()])
    update = req("UPDATE_HTTP_LISTENER", address=H1, answers={"503": "x"})
    state.apply(update)
    update.fields["answers"]["503"] = "changed"
    assert state.http_listeners[H1]["answers"] == {"503": "x"}


def test_frontends_are_keyed_by_their_whole_rule() -> None:
    """Address, host, path kind and value, method and position make a rule; the cluster,
    tags and actions do not."""
    rules = [
        front(),
        front(path="/a"),
        front(path="/a", kind="EQUALS"),
        front(path="/a", kind="REGEX"),
        front(method="GET"),
        front(position="PRE"),
        front(position="POST"),
        front(hostname="other.example.com"),
        front(address=H2),
    ]
    state = ConfigState.from_requests([cluster(), *rules])
    assert len(state.http_frontends) == len(rules)
    for rule in rules:
        assert state.apply(remove_front(rule, tags={"ignored": "on removal"})) is True
    assert state.http_frontends == []


def test_remove_cluster_drops_http_frontends_and_health_check() -> None:
    state = populated()
    assert state.apply(req("REMOVE_CLUSTER", cluster_id="app")) is True
    assert all(f["cluster_id"] != "app" for f in state.http_frontends)
    # sorted by rule: address, then host name, path…
    assert [f["cluster_id"] for f in state.http_frontends] == [None, "api", "api"]
    assert "app" not in state.health_checks()
    state.apply(cluster("app"))
    assert state.query_cluster("app")["http_frontends"] == []
    assert state.query_cluster("app")["configuration"]["health_check"] is None


def test_health_check_set_replace_remove() -> None:
    state = ConfigState.from_requests([cluster()])
    assert state.health_checks() == {}
    assert state.apply(health(interval=2)) is True
    assert state.apply(health(interval=2)) is False
    expected = {
        "uri": "/health",
        "interval": 2,
        "timeout": 5,
        "healthy_threshold": 3,
        "unhealthy_threshold": 3,
        "expected_status": 0,
    }
    assert state.health_checks() == {"app": expected}
    assert state.clusters["app"]["health_check"] == expected
    assert state.apply(health(uri="/up")) is True
    assert state.health_checks("app")["app"]["uri"] == "/up"
    assert state.health_checks("other") == {}
    assert state.apply(req("REMOVE_HEALTH_CHECK", cluster_id="app")) is True
    assert state.health_checks() == {}


def test_add_cluster_replaces_the_health_check_as_sozu_does() -> None:
    state = ConfigState.from_requests([cluster(), health()])
    state.apply(cluster(sticky_session=True))
    assert state.health_checks() == {}
    state.apply(cluster(health_check={"uri": "/inline"}))
    assert state.health_checks()["app"]["uri"] == "/inline"


def test_max_connections_per_ip() -> None:
    state = ConfigState()
    assert state.max_connections_per_ip == 0
    assert state.apply(req("SET_MAX_CONNECTIONS_PER_IP", limit=0)) is False
    assert state.apply(req("SET_MAX_CONNECTIONS_PER_IP", limit=5)) is True
    assert state.max_connections_per_ip == 5
    assert state.apply(req("SET_MAX_CONNECTIONS_PER_IP", limit=5)) is False
    assert state.generate_requests()[0].fields == {"limit": 5}
    assert state.apply(req("SET_MAX_CONNECTIONS_PER_IP", limit=0)) is True
    assert state.generate_requests() == []


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def test_list_listeners_and_query_cluster() -> None:
    state = populated()
    listeners = state.list_listeners()
    assert list(listeners) == ["http_listeners", "https_listeners", "tcp_listeners"]
    assert list(listeners["http_listeners"]) == sorted([H1, H2])
    assert listeners["http_listeners"][H1]["answers"] == {"503": "busy"}
    assert listeners["http_listeners"][H1]["active"] is True
    assert listeners["http_listeners"][H2]["request_timeout"] == 4
    assert list(listeners["tcp_listeners"]) == [T1]

    info = state.query_cluster("api")
    assert list(info) == ["configuration", "http_frontends", "https_frontends", "tcp_frontends",
                          "backends"]
    assert [(f["hostname"], f["path"]["value"]) for f in info["http_frontends"]] == [
        ("example.com", "/api"),  # sorted by rule: 0.0.0.0:80 comes before [::]:8080
        ("*.example.com", "^/v[0-9]+/"),
    ]
    assert info["tcp_frontends"] == []
    assert state.query_cluster("tcp")["http_frontends"] == []
    assert state.query_cluster("app")["configuration"]["health_check"]["interval"] == 2


@pytest.mark.parametrize(
    ("hostname", "path", "expected"),
    [
        ("example.com", None, ["api", "app"]),
        ("EXAMPLE.com", None, ["api", "app"]),  # spelled as the frontends are
        ("example.com", "/api", ["api"]),
        ("example.com", "/static", ["app"]),
        ("example.com", "", ["app"]),
        ("example.com", "/stat", []),  # the rule is compared, not matched (Sōzu)
        ("*.example.com", None, ["api"]),  # a wildcard frontend is found by its spelling
        ("www.example.com", None, []),
        ("admin.example.com", None, []),  # a route with no cluster is nobody's
        ("nothing.test", None, []),
    ],
)
def test_query_clusters_by_domain(hostname: str, path: str | None, expected: list[str]) -> None:
    infos = populated().query_clusters_by_domain(hostname, path)
    assert [info["configuration"]["cluster_id"] for info in infos] == expected
    for info in infos:
        assert info == populated().query_cluster(info["configuration"]["cluster_id"])


def test_query_clusters_by_domain_refuses_bad_names() -> None:
    with pytest.raises(StateError, match="hostname: host name 'a b' must not contain spaces"):
        populated().query_clusters_by_domain("a b")


def test_accessors_return_copies() -> None:
    state = populated()
    before = state.hash()
    state.http_listeners[H1]["answers"]["503"] = "evil"
    state.http_frontends[0]["headers"].append({"position": "REQUEST", "key": "X", "val": ""})
    state.health_checks()["app"]["uri"] = "/evil"
    state.query_clusters_by_domain("example.com")[0]["http_frontends"][0]["hostname"] = "x"
    state.list_listeners()["http_listeners"][H2]["sticky_name"] = "evil"
    assert state.hash() == before


def test_repr_counts_http_frontends() -> None:
    assert "http_frontends=5" in repr(populated())


# ---------------------------------------------------------------------------------------------
# Rebuild, digests, files
# ---------------------------------------------------------------------------------------------


def test_generate_requests_order() -> None:
    generated = populated().generate_requests()
    assert [r.type for r in generated] == [
        "ADD_HTTP_LISTENER",
        "ADD_HTTP_LISTENER",
        "ADD_TCP_LISTENER",
        "SET_MAX_CONNECTIONS_PER_IP",
        "ADD_CLUSTER",
        "ADD_CLUSTER",
        "ADD_CLUSTER",
        "ADD_TCP_FRONTEND",
        *["ADD_HTTP_FRONTEND"] * 5,
        "ADD_BACKEND",
        "ADD_BACKEND",
        "ACTIVATE_LISTENER",
    ]
    assert generated[-1].fields == {"address": H1, "proxy": "HTTP", "from_scm": False}
    assert all(not r["active"] for r in generated if r.type == "ADD_HTTP_LISTENER")
    rebuilt = ConfigState.from_requests(generated)
    assert rebuilt == populated()
    assert rebuilt.hash() == populated().hash()
    assert rebuilt.cluster_hashes() == populated().cluster_hashes()


def test_hash_is_order_independent() -> None:
    generated = populated().generate_requests()
    fronts = [r for r in generated if r.type == "ADD_HTTP_FRONTEND"]
    others = [r for r in generated if r.type != "ADD_HTTP_FRONTEND"]
    reordered = ConfigState.from_requests(
        [*others[:-1], *reversed(fronts), others[-1]]  # activation stays last
    )
    assert reordered.hash() == populated().hash()
    assert reordered.cluster_hashes() == populated().cluster_hashes()


def test_hash_covers_http_state() -> None:
    base = populated()
    changes = [
        req("UPDATE_HTTP_LISTENER", address=H2, sticky_name="Z"),
        req("UPDATE_HTTP_LISTENER", address=H1, answers={"502": "x"}),
        req("SET_MAX_CONNECTIONS_PER_IP", limit=1),
        remove_front(front(None, "admin.example.com")),
        front(None, "new.example.com"),
        req("REMOVE_HEALTH_CHECK", cluster_id="app"),
    ]
    for change in changes:
        state = populated()
        state.apply(change)
        assert state.hash() != base.hash(), change.type


def test_cluster_hashes_cover_http_frontends_and_health_checks() -> None:
    hashes = populated().cluster_hashes()
    for change, touched in [
        (front("app", path="/new"), "app"),
        (remove_front(front("api", "example.com", "/api", method="POST", position="PRE")), "api"),
        (health("api"), "api"),
        (health("app", interval=3), "app"),
        (req("REMOVE_HEALTH_CHECK", cluster_id="app"), "app"),
    ]:
        state = populated()
        state.apply(change)
        new = state.cluster_hashes()
        assert new[touched] != hashes[touched], change
        assert {k: v for k, v in new.items() if k != touched} == {
            k: v for k, v in hashes.items() if k != touched
        }, change
    # listeners, routes without a cluster and the per-IP limit belong to no cluster
    state = populated()
    state.apply(front(None, "deny.example.com"))
    state.apply(req("SET_MAX_CONNECTIONS_PER_IP", limit=3))
    state.apply(req("UPDATE_HTTP_LISTENER", address=H1, request_timeout=1))
    assert state.cluster_hashes() == hashes


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    state = populated()
    path = tmp_path / "state"
    count = state.save(path)
    requests = ConfigState.load(path)
    assert count == len(requests) == len(state.generate_requests())
    assert requests == state.generate_requests()
    loaded = ConfigState.from_requests(requests)
    assert loaded == state
    assert loaded.hash() == state.hash()
    entries = path.read_text(encoding="utf-8").split(STATE_SEPARATOR)[:-1]
    first_front = next(json.loads(e) for e in entries if "ADD_HTTP_FRONTEND" in e)
    assert first_front["path"] == {"kind": "PREFIX", "value": ""}
    assert "headers" in first_front


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------


def apply_all(state: ConfigState, requests: list[Request]) -> ConfigState:
    result = state.copy()
    for request in requests:
        result.apply(request)
    return result


DIFF_CASES: list[tuple[str, list[Request], list[Request], list[str]]] = [
    ("add everything", [], populated().generate_requests(),
     [r.type for r in populated().generate_requests()]),
    ("remove everything", populated().generate_requests(), [],
     ["REMOVE_TCP_FRONTEND", *["REMOVE_HTTP_FRONTEND"] * 5, "REMOVE_BACKEND", "REMOVE_BACKEND",
      "REMOVE_CLUSTER", "REMOVE_CLUSTER", "REMOVE_CLUSTER", "DEACTIVATE_LISTENER",
      "REMOVE_LISTENER", "REMOVE_LISTENER", "REMOVE_LISTENER", "SET_MAX_CONNECTIONS_PER_IP"]),
    ("http listener options", [http_listener()],
     [http_listener(request_timeout=1, sticky_name="S")], ["UPDATE_HTTP_LISTENER"]),
    ("answer added and changed", [http_listener(answers={"503": "a"})],
     [http_listener(answers={"503": "b", "404": "c"})], ["UPDATE_HTTP_LISTENER"]),
    ("answer dropped", [http_listener(answers={"503": "a"}, active=True)],
     [http_listener(active=True)],
     ["DEACTIVATE_LISTENER", "REMOVE_LISTENER", "ADD_HTTP_LISTENER", "ACTIVATE_LISTENER"]),
    ("tcp listener becomes http", [req("ADD_TCP_LISTENER", address=H1)], [http_listener()],
     ["REMOVE_LISTENER", "ADD_HTTP_LISTENER"]),
    ("frontend tags change", [cluster(), front()], [cluster(), front(tags={"a": "b"})],
     ["REMOVE_HTTP_FRONTEND", "ADD_HTTP_FRONTEND"]),
    ("frontend moves cluster", [cluster("a"), cluster("b"), front("a")],
     [cluster("a"), cluster("b"), front("b")], ["REMOVE_HTTP_FRONTEND", "ADD_HTTP_FRONTEND"]),
    ("frontend added", [cluster()], [cluster(), front(path="/x")], ["ADD_HTTP_FRONTEND"]),
    ("health check added", [cluster()], [cluster(), health()], ["ADD_CLUSTER"]),
    ("health check removed", [cluster(), health()], [cluster()], ["ADD_CLUSTER"]),
    ("limit set", [], [req("SET_MAX_CONNECTIONS_PER_IP", limit=9)],
     ["SET_MAX_CONNECTIONS_PER_IP"]),
    ("cluster replaced with its frontends", [cluster("a"), front("a"), health("a")],
     [cluster("b"), front("b")],
     ["REMOVE_HTTP_FRONTEND", "REMOVE_CLUSTER", "ADD_CLUSTER", "ADD_HTTP_FRONTEND"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "types"), [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES]
)
def test_diff(a: list[Request], b: list[Request], types: list[str]) -> None:
    state_a, state_b = ConfigState.from_requests(a), ConfigState.from_requests(b)
    diff = state_a.diff(state_b)
    assert [r.type for r in diff] == types
    result = apply_all(state_a, diff)
    assert result == state_b
    assert result.hash() == state_b.hash()
    assert result.cluster_hashes() == state_b.cluster_hashes()
    assert state_b.diff(state_b) == []


def test_diff_update_carries_only_changed_answers() -> None:
    a = ConfigState.from_requests([http_listener(answers={"503": "a", "404": "same"})])
    b = ConfigState.from_requests([http_listener(answers={"503": "b", "404": "same"})])
    (update,) = a.diff(b)
    assert update["answers"] == {"503": "b"}
    assert update["sticky_name"] is None
