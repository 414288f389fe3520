"""Tests for pysozu.state.ConfigState: checks, apply, rebuild, diff, files and digests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysozu.command import Request, make_request
from pysozu.state import STATE_SEPARATOR, ConfigState, StateError


def req(request_type: str, **fields: Any) -> Request:
    return make_request("t", request_type, **fields)


L1, L2, L3 = "127.0.0.1:8080", "127.0.0.1:8081", "[::1]:9000"
B1, B2, B3 = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"


def cluster(cluster_id: str = "app", **fields: Any) -> Request:
    return req("ADD_CLUSTER", cluster_id=cluster_id, **fields)


def backend(
    cluster_id: str = "app", backend_id: str = "b1", address: str = B1, **f: Any
) -> Request:
    return req("ADD_BACKEND", cluster_id=cluster_id, backend_id=backend_id, address=address, **f)


def listener(address: str = L1, **fields: Any) -> Request:
    return req("ADD_TCP_LISTENER", address=address, **fields)


def frontend(cluster_id: str = "app", address: str = L1, **fields: Any) -> Request:
    return req("ADD_TCP_FRONTEND", cluster_id=cluster_id, address=address, **fields)


def populated() -> ConfigState:
    return ConfigState.from_requests(
        [
            listener(L1),
            listener(L2, expect_proxy=True, front_timeout=5),
            req("ACTIVATE_LISTENER", address=L1, proxy="TCP"),
            cluster("app", load_balancing="RANDOM"),
            cluster("db"),
            frontend("app", L1, tags={"owner": "me"}),
            frontend("db", L2),
            backend("app", "b2", B2, load_balancing_parameters={"weight": 10}),
            backend("app", "b1", B1, sticky_id="s1"),
            backend("db", "d1", B3, backup=True),
        ]
    )


# ---------------------------------------------------------------------------------------------
# check: every refusal, with its message, changes nothing
# ---------------------------------------------------------------------------------------------

CHECK_ERRORS: list[tuple[str, list[Request], Request, str]] = [
    ("remove unknown cluster", [], req("REMOVE_CLUSTER", cluster_id="x"),
     "cluster 'x' not found (REMOVE_CLUSTER)"),
    ("backend for unknown cluster", [], backend("nope"),
     "cluster 'nope' not found (ADD_BACKEND 'b1')"),
    ("duplicate backend id", [cluster(), backend()], backend(address=B2),
     "backend 'b1' already exists in cluster 'app' with address 10.0.0.1:80"),
    ("duplicate backend address", [cluster(), backend()], backend(backend_id="b2"),
     "address 10.0.0.1:80 is already used by backend 'b1' in cluster 'app'"),
    ("remove unknown backend", [cluster(), backend()],
     req("REMOVE_BACKEND", cluster_id="app", backend_id="b1", address=B2),
     "backend 'b1' with address 10.0.0.2:80 not found in cluster 'app'"),
    ("remove backend of unknown cluster", [],
     req("REMOVE_BACKEND", cluster_id="zz", backend_id="b1", address=B1),
     "backend 'b1' with address 10.0.0.1:80 not found in cluster 'zz'"),
    ("duplicate listener", [listener()], listener(front_timeout=1),
     "a TCP listener already exists on 127.0.0.1:8080"),
    ("update unknown listener", [], req("UPDATE_TCP_LISTENER", address=L1, back_timeout=1),
     "TCP listener 127.0.0.1:8080 not found"),
    ("remove unknown listener", [listener(L2)], req("REMOVE_LISTENER", address=L1, proxy="TCP"),
     "TCP listener 127.0.0.1:8080 not found"),
    ("remove listener of the wrong protocol", [listener()],
     req("REMOVE_LISTENER", address=L1, proxy="HTTP"), "HTTP listener 127.0.0.1:8080 not found"),
    ("activate unknown listener", [], req("ACTIVATE_LISTENER", address=L1, proxy="TCP"),
     "TCP listener 127.0.0.1:8080 not found"),
    ("deactivate unknown listener", [], req("DEACTIVATE_LISTENER", address=L3, proxy="TCP"),
     "TCP listener [::1]:9000 not found"),
    ("frontend for unknown cluster", [], frontend("nope"),
     "cluster 'nope' not found (ADD_TCP_FRONTEND 127.0.0.1:8080)"),
    ("second frontend on an address", [cluster("a"), cluster("b"), frontend("a")], frontend("b"),
     "a TCP frontend already exists on 127.0.0.1:8080 (cluster 'a')"),
    ("identical frontend", [cluster("a"), frontend("a")], frontend("a"),
     "a TCP frontend already exists on 127.0.0.1:8080 (cluster 'a')"),
    ("remove unknown frontend", [cluster()],
     req("REMOVE_TCP_FRONTEND", cluster_id="app", address=L1),
     "TCP frontend 127.0.0.1:8080 not found for cluster 'app'"),
    ("remove frontend of another cluster", [cluster("a"), cluster("b"), frontend("a")],
     req("REMOVE_TCP_FRONTEND", cluster_id="b", address=L1),
     "TCP frontend 127.0.0.1:8080 not found for cluster 'b'"),
    ("unhandled type", [], Request("t", "UPGRADE_MAIN", {}),
     "request type 'UPGRADE_MAIN' is not handled by ConfigState"),
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
        state.check(request_)
    assert str(info.value) == message
    with pytest.raises(StateError) as info:
        state.apply(request_)
    assert str(info.value) == message
    assert state.hash() == before
    assert state == snapshot


def test_state_error_is_a_value_error() -> None:
    assert issubclass(StateError, ValueError)


@pytest.mark.parametrize(
    "request_",
    [
        req("STATUS"),
        req("SOFT_STOP"),
        req("HARD_STOP"),
        req("SAVE_STATE", path="/tmp/x"),
        req("LOAD_STATE", path="/tmp/x"),
        req("QUERY_CLUSTER_BY_ID", cluster_id="unknown"),
        req("QUERY_CLUSTERS_HASHES"),
        req("LIST_LISTENERS"),
    ],
    ids=lambda r: r.type,
)
def test_passive_requests_are_accepted_and_ignored(request_: Request) -> None:
    state = populated()
    before = state.hash()
    state.check(request_)
    assert state.apply(request_) is False
    assert state.hash() == before


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------


def test_apply_reports_changes() -> None:
    state = ConfigState()
    assert state.apply(cluster()) is True
    assert state.apply(cluster()) is False  # identical re-add
    assert state.apply(cluster(sticky_session=True)) is True  # upsert replaces the config
    assert state.clusters["app"]["sticky_session"] is True

    assert state.apply(backend()) is True
    assert state.apply(backend()) is False
    assert state.apply(backend(load_balancing_parameters={"weight": 3})) is True
    assert state.backends("app")[0]["load_balancing_parameters"] == {"weight": 3}
    assert len(state.backends("app")) == 1

    assert state.apply(listener()) is True
    assert state.apply(req("ACTIVATE_LISTENER", address=L1, proxy="TCP")) is True
    assert state.apply(req("ACTIVATE_LISTENER", address=L1, proxy="TCP")) is False
    assert state.tcp_listeners[L1]["active"] is True
    assert state.apply(req("DEACTIVATE_LISTENER", address=L1, proxy="TCP")) is True
    assert state.apply(req("DEACTIVATE_LISTENER", address=L1, proxy="TCP")) is False
    assert state.tcp_listeners[L1]["active"] is False


def test_update_listener_applies_only_given_fields() -> None:
    state = ConfigState.from_requests([listener(public_address="1.2.3.4:80", back_timeout=7)])
    assert state.apply(req("UPDATE_TCP_LISTENER", address=L1, front_timeout=9)) is True
    assert state.tcp_listeners[L1] == {
        "address": L1,
        "public_address": "1.2.3.4:80",
        "expect_proxy": False,
        "front_timeout": 9,
        "back_timeout": 7,
        "connect_timeout": 3,
        "active": False,
    }
    assert state.apply(req("UPDATE_TCP_LISTENER", address=L1, front_timeout=9)) is False
    assert state.apply(req("UPDATE_TCP_LISTENER", address=L1)) is False
    update = req(
        "UPDATE_TCP_LISTENER",
        address=L1,
        expect_proxy=True,
        public_address="5.6.7.8:1",
        connect_timeout=1,
        back_timeout=2,
    )
    assert state.apply(update) is True
    assert state.tcp_listeners[L1] == {
        "address": L1,
        "public_address": "5.6.7.8:1",
        "expect_proxy": True,
        "front_timeout": 9,
        "back_timeout": 2,
        "connect_timeout": 1,
        "active": False,
    }


def test_remove_requests() -> None:
    state = populated()
    assert state.apply(req("REMOVE_BACKEND", cluster_id="app", backend_id="b1", address=B1))
    assert [b["backend_id"] for b in state.backends("app")] == ["b2"]
    assert state.apply(req("REMOVE_TCP_FRONTEND", cluster_id="app", address=L1))
    assert (L1, "") not in state.tcp_frontends
    assert state.apply(req("REMOVE_LISTENER", address=L1, proxy="TCP"))
    assert L1 not in state.tcp_listeners
    assert state.apply(req("REMOVE_BACKEND", cluster_id="app", backend_id="b2", address=B2))
    assert state.backends("app") == []
    # an emptied cluster hashes like one that never had backends
    fresh = ConfigState.from_requests([cluster("app", load_balancing="RANDOM")])
    assert state.cluster_hashes()["app"] == fresh.cluster_hashes()["app"]


def test_remove_cluster_drops_its_backends_and_frontends() -> None:
    state = populated()
    assert state.apply(req("REMOVE_CLUSTER", cluster_id="app")) is True
    assert "app" not in state.clusters
    assert state.backends("app") == []
    assert (L1, "") not in state.tcp_frontends
    assert state.tcp_frontends[(L2, "")]["cluster_id"] == "db"
    assert [b["backend_id"] for b in state.backends("db")] == ["d1"]
    assert L1 in state.tcp_listeners  # listeners are not owned by clusters
    # re-adding the cluster starts empty
    state.apply(cluster("app"))
    assert state.backends("app") == []
    assert state.query_cluster("app")["tcp_frontends"] == []


def test_backends_are_kept_sorted() -> None:
    state = ConfigState.from_requests(
        [cluster(), backend(backend_id="z", address=B1), backend(backend_id="a", address=B2)]
    )
    assert [b["backend_id"] for b in state.backends("app")] == ["a", "z"]


def test_add_listener_records_the_active_flag_as_given() -> None:
    state = ConfigState.from_requests([listener(active=True)])
    assert state.tcp_listeners[L1]["active"] is True
    generated = state.generate_requests()
    assert [r.type for r in generated] == ["ADD_TCP_LISTENER", "ACTIVATE_LISTENER"]
    assert generated[0]["active"] is False
    assert ConfigState.from_requests(generated) == state


# ---------------------------------------------------------------------------------------------
# generate_requests, queries, accessors
# ---------------------------------------------------------------------------------------------


def test_generate_requests_order_and_ids() -> None:
    state = populated()
    generated = state.generate_requests()
    assert [r.id for r in generated] == [f"SAVE-{i}" for i in range(len(generated))]
    assert [(r.type, r.fields.get("cluster_id") or r.fields.get("address")) for r in generated] == [
        ("ADD_TCP_LISTENER", L1),
        ("ADD_TCP_LISTENER", L2),
        ("ADD_CLUSTER", "app"),
        ("ADD_CLUSTER", "db"),
        ("ADD_TCP_FRONTEND", "app"),
        ("ADD_TCP_FRONTEND", "db"),
        ("ADD_BACKEND", "app"),
        ("ADD_BACKEND", "app"),
        ("ADD_BACKEND", "db"),
        ("ACTIVATE_LISTENER", L1),
    ]
    assert all(not r["active"] for r in generated if r.type == "ADD_TCP_LISTENER")
    rebuilt = ConfigState.from_requests(generated)
    assert rebuilt == state
    assert rebuilt.hash() == state.hash()
    assert state.generate_requests() == generated  # deterministic
    assert ConfigState().generate_requests() == []


def test_query_cluster_and_list_listeners() -> None:
    state = populated()
    info = state.query_cluster("app")
    assert set(info) == {"configuration", "http_frontends", "https_frontends", "tcp_frontends",
                         "backends"}
    assert info["http_frontends"] == []
    assert info["configuration"]["load_balancing"] == "RANDOM"
    assert info["tcp_frontends"] == [
        {"cluster_id": "app", "address": L1, "hostname": None, "tags": {"owner": "me"}}
    ]
    assert [b["backend_id"] for b in info["backends"]] == ["b1", "b2"]
    assert info["backends"][0]["sticky_id"] == "s1"
    with pytest.raises(StateError, match="cluster 'nope' not found"):
        state.query_cluster("nope")

    listeners = state.list_listeners()
    assert list(listeners) == ["http_listeners", "https_listeners", "tcp_listeners"]
    assert listeners["http_listeners"] == {}
    assert listeners["tcp_listeners"][L1]["active"] is True
    assert listeners["tcp_listeners"][L2]["expect_proxy"] is True
    assert listeners["tcp_listeners"][L2]["front_timeout"] == 5
    assert ConfigState().list_listeners() == {"http_listeners": {}, "https_listeners": {},
                                              "tcp_listeners": {}}


def test_accessors_return_copies() -> None:
    state = populated()
    before = state.hash()
    state.clusters["app"]["sticky_session"] = True
    state.backends("app")[0]["backend_id"] = "evil"
    state.tcp_listeners[L1]["active"] = False
    state.tcp_frontends[(L1, "")]["cluster_id"] = "db"
    state.query_cluster("app")["configuration"]["http2"] = True
    state.list_listeners()["tcp_listeners"][L1]["active"] = False
    assert state.hash() == before


def test_state_does_not_alias_request_fields() -> None:
    request = cluster(answers={"503": "x"})
    state = ConfigState.from_requests([request])
    request.fields["answers"]["503"] = "changed"
    assert state.clusters["app"]["answers"] == {"503": "x"}


def test_copy_is_independent() -> None:
    state = populated()
    other = state.copy()
    assert other == state
    other.apply(req("REMOVE_CLUSTER", cluster_id="db"))
    assert other != state
    assert "db" in state.clusters


def test_repr_and_equality() -> None:
    assert "clusters=2" in repr(populated())
    assert populated() == populated()
    assert populated() != ConfigState()
    assert (ConfigState() == object()) is False


# ---------------------------------------------------------------------------------------------
# Digests
# ---------------------------------------------------------------------------------------------


def test_hash_is_order_independent() -> None:
    requests = populated().generate_requests()
    shuffled = [
        *requests[:4],
        requests[7],
        requests[6],
        requests[5],
        requests[4],
        requests[8],
        requests[9],
    ]
    other = ConfigState.from_requests(shuffled)
    assert other.hash() == populated().hash()
    assert other.cluster_hashes() == populated().cluster_hashes()


def test_hash_format_and_sensitivity() -> None:
    state = populated()
    digest = state.hash()
    assert len(digest) == 64
    int(digest, 16)
    assert ConfigState().hash() != digest
    state.apply(req("UPDATE_TCP_LISTENER", address=L2, back_timeout=99))
    assert state.hash() != digest


def test_cluster_hashes_cover_config_frontends_and_backends() -> None:
    base = populated()
    hashes = base.cluster_hashes()
    assert set(hashes) == {"app", "db"}
    assert all(isinstance(h, int) and 0 <= h < 2**64 for h in hashes.values())
    assert hashes["app"] != hashes["db"]

    changes = [
        cluster("app", load_balancing="RANDOM", sticky_session=True),
        backend("app", "b1", B1, sticky_id="other"),
        req("REMOVE_TCP_FRONTEND", cluster_id="app", address=L1),
        backend("app", "b9", "10.9.9.9:1"),
    ]
    for change in changes:
        state = populated()
        state.apply(change)
        new = state.cluster_hashes()
        assert new["app"] != hashes["app"], change
        assert new["db"] == hashes["db"], change
    # listeners are not part of any cluster
    state = populated()
    state.apply(req("DEACTIVATE_LISTENER", address=L1, proxy="TCP"))
    assert state.cluster_hashes() == hashes
    assert state.hash() != base.hash()


# ---------------------------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------------------------


def apply_all(state: ConfigState, requests: list[Request]) -> ConfigState:
    result = state.copy()
    for request in requests:
        result.apply(request)  # raises if the diff is not valid in order
    return result


DIFF_CASES: list[tuple[str, list[Request], list[Request], list[str]]] = [
    ("empty to empty", [], [], []),
    ("add everything", [], populated().generate_requests(),
     ["ADD_TCP_LISTENER", "ADD_TCP_LISTENER", "ADD_CLUSTER", "ADD_CLUSTER", "ADD_TCP_FRONTEND",
      "ADD_TCP_FRONTEND", "ADD_BACKEND", "ADD_BACKEND", "ADD_BACKEND", "ACTIVATE_LISTENER"]),
    ("remove everything", populated().generate_requests(), [],
     ["REMOVE_TCP_FRONTEND", "REMOVE_TCP_FRONTEND", "REMOVE_BACKEND", "REMOVE_BACKEND",
      "REMOVE_BACKEND", "REMOVE_CLUSTER", "REMOVE_CLUSTER", "DEACTIVATE_LISTENER",
      "REMOVE_LISTENER", "REMOVE_LISTENER"]),
    ("listener timeouts change", [listener(front_timeout=1)], [listener(front_timeout=2)],
     ["UPDATE_TCP_LISTENER"]),
    ("listener public address set", [listener()], [listener(public_address="1.1.1.1:1")],
     ["UPDATE_TCP_LISTENER"]),
    ("listener public address unset", [listener(public_address="1.1.1.1:1", active=True)],
     [listener(active=True)],
     ["DEACTIVATE_LISTENER", "REMOVE_LISTENER", "ADD_TCP_LISTENER", "ACTIVATE_LISTENER"]),
    ("listener activated", [listener()], [listener(active=True)], ["ACTIVATE_LISTENER"]),
    ("listener deactivated and changed", [listener(active=True)], [listener(back_timeout=1)],
     ["DEACTIVATE_LISTENER", "UPDATE_TCP_LISTENER"]),
    ("cluster config change", [cluster()], [cluster(load_balancing="LEAST_LOADED")],
     ["ADD_CLUSTER"]),
    ("backend weight change", [cluster(), backend()],
     [cluster(), backend(load_balancing_parameters={"weight": 1})], ["ADD_BACKEND"]),
    ("backend moves", [cluster(), backend()], [cluster(), backend(address=B2)],
     ["REMOVE_BACKEND", "ADD_BACKEND"]),
    ("backend renamed", [cluster(), backend()], [cluster(), backend(backend_id="b2")],
     ["REMOVE_BACKEND", "ADD_BACKEND"]),
    ("frontend changes cluster", [cluster("a"), cluster("b"), frontend("a")],
     [cluster("a"), cluster("b"), frontend("b")], ["REMOVE_TCP_FRONTEND", "ADD_TCP_FRONTEND"]),
    ("frontend tags change", [cluster(), frontend()], [cluster(), frontend(tags={"k": "v"})],
     ["REMOVE_TCP_FRONTEND", "ADD_TCP_FRONTEND"]),
    ("cluster replaced", [cluster("a"), frontend("a"), backend("a")],
     [cluster("b"), frontend("b"), backend("b")],
     ["REMOVE_TCP_FRONTEND", "REMOVE_BACKEND", "REMOVE_CLUSTER", "ADD_CLUSTER",
      "ADD_TCP_FRONTEND", "ADD_BACKEND"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b", "types"), [c[1:] for c in DIFF_CASES], ids=[c[0] for c in DIFF_CASES]
)
def test_diff(a: list[Request], b: list[Request], types: list[str]) -> None:
    state_a, state_b = ConfigState.from_requests(a), ConfigState.from_requests(b)
    diff = state_a.diff(state_b)
    assert [r.type for r in diff] == types
    assert [r.id for r in diff] == [f"DIFF-{i}" for i in range(len(diff))]
    result = apply_all(state_a, diff)
    assert result == state_b
    assert result.hash() == state_b.hash()
    assert state_b.diff(state_b) == []


def test_diff_update_carries_only_changed_fields() -> None:
    a = ConfigState.from_requests([listener(front_timeout=1, back_timeout=2)])
    b = ConfigState.from_requests([listener(front_timeout=1, back_timeout=3, expect_proxy=True)])
    (update,) = a.diff(b)
    assert update.fields == {
        "address": L1,
        "public_address": None,
        "expect_proxy": True,
        "front_timeout": None,
        "back_timeout": 3,
        "connect_timeout": None,
    }


# Hypothesis: random states built from a small pool of names, so collisions are common.
_CLUSTERS = ["c0", "c1", "c2"]
_BACKEND_IDS = ["b0", "b1", "b2"]
_ADDRESSES = ["10.0.0.1:1", "10.0.0.2:2", "[::1]:3", "127.0.0.1:4"]

_cluster_request = st.builds(
    lambda c, lb, sticky, pp: cluster(
        c, load_balancing=lb, sticky_session=sticky, proxy_protocol=pp
    ),
    st.sampled_from(_CLUSTERS),
    st.sampled_from(["ROUND_ROBIN", "RANDOM"]),
    st.booleans(),
    st.sampled_from([None, "SEND_HEADER"]),
)
_backend_request = st.builds(
    lambda c, b, a, w, s, bk: backend(
        c,
        b,
        a,
        load_balancing_parameters=None if w is None else {"weight": w},
        sticky_id=s,
        backup=bk,
    ),
    st.sampled_from(_CLUSTERS),
    st.sampled_from(_BACKEND_IDS),
    st.sampled_from(_ADDRESSES),
    st.none() | st.integers(0, 3),
    st.none() | st.just("sticky"),
    st.none() | st.booleans(),
)
_listener_request = st.builds(
    lambda a, pub, ep, ft, act: listener(
        a, public_address=pub, expect_proxy=ep, front_timeout=ft, active=act
    ),
    st.sampled_from(_ADDRESSES),
    st.none() | st.sampled_from(_ADDRESSES),
    st.booleans(),
    st.integers(0, 2),
    st.booleans(),
)
_frontend_request = st.builds(
    lambda c, a, t: frontend(c, a, tags=t),
    st.sampled_from(_CLUSTERS),
    st.sampled_from(_ADDRESSES),
    st.sampled_from([{}, {"k": "v"}]),
)
_ANSWERS = [{}, {"503": "x"}, {"503": "y", "404": "z"}]
_http_listener_request = st.builds(
    lambda a, pub, sticky, answers, rt, act: req(
        "ADD_HTTP_LISTENER",
        address=a,
        public_address=pub,
        sticky_name=sticky,
        answers=answers,
        request_timeout=rt,
        active=act,
    ),
    st.sampled_from(_ADDRESSES),
    st.none() | st.sampled_from(_ADDRESSES),
    st.sampled_from(["A", "B"]),
    st.sampled_from(_ANSWERS),
    st.integers(0, 2),
    st.booleans(),
)
_http_listener_update = st.builds(
    lambda a, sticky, answers, rt: req(
        "UPDATE_HTTP_LISTENER", address=a, sticky_name=sticky, answers=answers, request_timeout=rt
    ),
    st.sampled_from(_ADDRESSES),
    st.none() | st.sampled_from(["A", "C"]),
    st.none() | st.sampled_from([*_ANSWERS, {"503": ""}, {"502": "w"}]),
    st.none() | st.integers(0, 2),
)


def _http_frontend(request_type: str) -> st.SearchStrategy[Request]:
    return st.builds(
        lambda c, a, host, path, method, position, tags, redirect, headers: req(
            request_type,
            cluster_id=c,
            address=a,
            hostname=host,
            path={"kind": path[0], "value": path[1]},
            method=method,
            position=position,
            tags=tags,
            redirect=redirect,
            headers=headers,
        ),
        st.none() | st.sampled_from(_CLUSTERS),
        st.sampled_from(_ADDRESSES[:2]),
        st.sampled_from(["a.test", "B.test", "*.a.test"]),
        st.sampled_from([("PREFIX", ""), ("PREFIX", "/x"), ("EQUALS", "/x"), ("REGEX", "^/y")]),
        st.sampled_from([None, "GET"]),
        st.sampled_from(["TREE", "PRE"]),
        st.sampled_from([{}, {"k": "v"}]),
        st.sampled_from(["FORWARD", "PERMANENT"]),
        st.sampled_from([[], [{"position": "REQUEST", "key": "X-A", "val": ""}]]),
    )


_health_check_request = st.builds(
    lambda c, uri, interval: req(
        "SET_HEALTH_CHECK", cluster_id=c, config={"uri": uri, "interval": interval}
    ),
    st.sampled_from(_CLUSTERS),
    st.sampled_from(["/a", "/b"]),
    st.integers(1, 2),
)
_any_request = st.one_of(
    _cluster_request,
    _backend_request,
    _backend_request,
    _listener_request,
    _frontend_request,
    _frontend_request,
    _http_listener_request,
    _http_listener_update,
    _http_frontend("ADD_HTTP_FRONTEND"),
    _http_frontend("ADD_HTTP_FRONTEND"),
    _http_frontend("REMOVE_HTTP_FRONTEND"),
    _health_check_request,
    st.builds(lambda c: req("REMOVE_HEALTH_CHECK", cluster_id=c), st.sampled_from(_CLUSTERS)),
    st.builds(lambda n: req("SET_MAX_CONNECTIONS_PER_IP", limit=n), st.integers(0, 2)),
    st.builds(lambda c: req("REMOVE_CLUSTER", cluster_id=c), st.sampled_from(_CLUSTERS)),
    st.builds(
        lambda a, on, proxy: req(
            "ACTIVATE_LISTENER" if on else "DEACTIVATE_LISTENER", address=a, proxy=proxy
        ),
        st.sampled_from(_ADDRESSES),
        st.booleans(),
        st.sampled_from(["TCP", "HTTP"]),
    ),
    st.builds(
        lambda a, proxy: req("REMOVE_LISTENER", address=a, proxy=proxy),
        st.sampled_from(_ADDRESSES),
        st.sampled_from(["TCP", "HTTP"]),
    ),
)


def build_state(requests: list[Request]) -> ConfigState:
    state = ConfigState()
    for request in requests:
        try:
            state.apply(request)
        except StateError:
            pass
    return state


# Clusters first (in random number), so that backends and frontends usually find theirs.
_states = st.builds(
    lambda clusters, rest: build_state([cluster(c) for c in clusters] + rest),
    st.lists(st.sampled_from(_CLUSTERS), unique=True),
    st.lists(_any_request, min_size=3, max_size=30),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_states, b=_states)
def test_diff_property(a: ConfigState, b: ConfigState) -> None:
    diff = a.diff(b)
    result = apply_all(a, diff)
    assert result.hash() == b.hash()
    assert result == b
    assert result.diff(b) == []
    assert result.cluster_hashes() == b.cluster_hashes()


@settings(max_examples=150, deadline=None)
@given(state=_states)
def test_generate_requests_property(state: ConfigState) -> None:
    rebuilt = ConfigState.from_requests(state.generate_requests())
    assert rebuilt == state
    assert rebuilt.hash() == state.hash()
    assert ConfigState().diff(state) != [] or state == ConfigState()


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    state = populated()
    path = tmp_path / "state.json"
    count = state.save(path)
    requests = ConfigState.load(path)
    assert count == len(requests) == len(state.generate_requests())
    assert requests == state.generate_requests()
    loaded = ConfigState.from_requests(requests)
    assert loaded.hash() == state.hash()
    assert loaded == state
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_save_file_format(tmp_path: Path) -> None:
    path = tmp_path / "state"
    populated().save(path)
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith(STATE_SEPARATOR)
    entries = raw.split(STATE_SEPARATOR)[:-1]
    assert len(entries) == 10
    first = json.loads(entries[0])
    assert first["id"] == "SAVE-0"
    assert first["type"] == "ADD_TCP_LISTENER"
    assert first["address"] == L1


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    populated().save(path)
    assert ConfigState().save(path) == 0
    assert path.read_text() == ""
    assert ConfigState.load(path) == []


@pytest.mark.parametrize("suffix", ["", "\n\0", "\n\0\n\0", "\n", "\0\0", "  \n"], ids=repr)
def test_load_is_tolerant_of_trailing_separators(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "state"
    text = (
        json.dumps({"id": "a", "type": "STATUS"})
        + "\n\0"
        + json.dumps({"id": "b", "type": "ADD_CLUSTER", "cluster_id": "x"})
    )
    path.write_text(text + suffix, encoding="utf-8")
    assert [r.id for r in ConfigState.load(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "type": "STATUS"}\n\0{oops\n\0', "entry 2: invalid JSON"),
        ('{"id": "a", "type": "NOPE"}\n\0', "entry 1: unknown request type 'NOPE'"),
        (
            '{"id": "a", "type": "STATUS"}\n\0{"id": "b", "type": "ADD_CLUSTER"}\n\0',
            "entry 2: missing field 'cluster_id' for ADD_CLUSTER",
        ),
        ("[1, 2]\n\0", "entry 1: a request must be a JSON object, not an array"),
    ],
)
def test_load_errors_name_the_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad-state"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StateError) as info:
        ConfigState.load(path)
    assert message in str(info.value)
    assert "bad-state" in str(info.value)


def test_load_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot read state file"):
        ConfigState.load(tmp_path / "missing")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(StateError, match="cannot read state file"):
        ConfigState.load(binary)


def test_failed_save_keeps_the_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state"
    ConfigState().save(path)

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("pysozu.state.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        populated().save(path)
    assert path.read_text() == ""
    assert list(tmp_path.iterdir()) == [path]


def test_save_to_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        populated().save(tmp_path / "nope" / "state")
