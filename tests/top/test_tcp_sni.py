"""SNI passthrough outside the proxy loop: the ``hostname`` of TCP frontends in requests, in
the configuration state (its key is ``(address, hostname or "")``), in the TOML file and on
the command line, and the routing table of ``TcpProxy``."""

from __future__ import annotations

from typing import Any

import pytest

from pysozu.cli import _cluster_lines, request_for
from pysozu.command import CommandError, make_request, normalise_sni_hostname
from pysozu.config import ConfigError, parse_config
from pysozu.protocols.sni import SniRoutes
from pysozu.protocols.tcp import TcpProxy
from pysozu.state import ConfigState, StateError

L1, L2 = "127.0.0.1:8443", "127.0.0.1:9443"


def req(request_type: str, **fields: Any) -> Any:
    return make_request("t", request_type, **fields)


def front(cluster_id: str, address: str = L1, **fields: Any) -> Any:
    return req("ADD_TCP_FRONTEND", cluster_id=cluster_id, address=address, **fields)


def remove(cluster_id: str, address: str = L1, **fields: Any) -> Any:
    return req("REMOVE_TCP_FRONTEND", cluster_id=cluster_id, address=address, **fields)


def sni_state() -> ConfigState:
    return ConfigState.from_requests(
        [
            req("ADD_TCP_LISTENER", address=L1),
            req("ADD_CLUSTER", cluster_id="a"),
            req("ADD_CLUSTER", cluster_id="b"),
            req("ADD_CLUSTER", cluster_id="d"),
            front("a", hostname="a.test"),
            front("b", hostname="*.b.test"),
            front("d"),
            front("a", L2),
        ]
    )


# -- command validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a.test", "a.test"),
        ("A.Test", "a.test"),
        ("*.Example.COM", "*.example.com"),
        ("bücher.test", "xn--bcher-kva.test"),
    ],
)
def test_hostnames_are_normalised(given: str, expected: str) -> None:
    assert normalise_sni_hostname(given) == expected
    assert front("a", hostname=given)["hostname"] == expected


@pytest.mark.parametrize(
    ("hostname", "message"),
    [
        ("*", "'*' is not a TCP frontend host name"),
        ("/a.*/.test", "takes no regular expression"),
        ("/x/", "takes no regular expression"),
        ("", "must not be empty"),
        ("a.*.test", "a wildcard is only allowed as the whole first label"),
        ("a.test:443", "must not contain a port"),
        ("a test", "must not contain spaces"),
        ("a..test", "is not a valid host name"),
    ],
)
def test_bad_hostnames_are_refused(hostname: str, message: str) -> None:
    with pytest.raises(CommandError, match="field 'hostname'") as info:
        front("a", hostname=hostname)
    assert message in str(info.value)
    with pytest.raises(CommandError):
        remove("a", hostname=hostname)


def test_hostname_is_optional_and_defaults_to_none() -> None:
    assert front("a").fields == {"cluster_id": "a", "address": L1, "hostname": None, "tags": {}}
    assert remove("a")["hostname"] is None
    with pytest.raises(CommandError, match="field 'hostname' must be a string"):
        front("a", hostname=3)


# -- state ---------------------------------------------------------------------------------------


def test_frontends_are_keyed_by_address_and_hostname() -> None:
    state = sni_state()
    assert sorted(state.tcp_frontends) == [
        (L1, ""), (L1, "*.b.test"), (L1, "a.test"), (L2, ""),
    ]  # fmt: skip
    assert state.tcp_frontends[(L1, "a.test")]["cluster_id"] == "a"
    assert [f["hostname"] for f in state.query_cluster("a")["tcp_frontends"]] == ["a.test", None]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            front("b", hostname="a.test"),
            "a TCP frontend already exists on 127.0.0.1:8443 for a.test (cluster 'a')",
        ),
        (front("b", hostname="A.TEST"), "already exists on 127.0.0.1:8443 for a.test"),
        (front("b"), "a TCP frontend already exists on 127.0.0.1:8443 (cluster 'd')"),
        (
            front("x", hostname="c.test"),
            "cluster 'x' not found (ADD_TCP_FRONTEND 127.0.0.1:8443 for c.test)",
        ),
        (
            remove("a", hostname="c.test"),
            "TCP frontend 127.0.0.1:8443 for c.test not found for cluster 'a'",
        ),
        (remove("b", hostname="a.test"), "not found for cluster 'b'"),
        (remove("a", L2, hostname="a.test"), "TCP frontend 127.0.0.1:9443 for a.test not found"),
        (remove("a"), "TCP frontend 127.0.0.1:8443 not found for cluster 'a'"),
    ],
)
def test_refusals_name_the_hostname(request_: Any, message: str) -> None:
    state = sni_state()
    before = state.hash()
    with pytest.raises(StateError) as info:
        state.apply(request_)
    assert message in str(info.value)
    assert state.hash() == before


def test_remove_by_hostname_leaves_the_other_routes() -> None:
    state = sni_state()
    assert state.apply(remove("a", hostname="A.test"))
    assert sorted(state.tcp_frontends) == [(L1, ""), (L1, "*.b.test"), (L2, "")]
    assert state.apply(remove("d"))
    assert sorted(state.tcp_frontends) == [(L1, "*.b.test"), (L2, "")]
    # the same host name on another address is another frontend
    assert state.apply(front("a", L2, hostname="a.test"))


def test_remove_cluster_drops_its_sni_frontends() -> None:
    state = sni_state()
    state.apply(req("REMOVE_CLUSTER", cluster_id="a"))
    assert sorted(state.tcp_frontends) == [(L1, ""), (L1, "*.b.test")]


def test_generate_requests_and_diff_round_trip() -> None:
    state = sni_state()
    rebuilt = ConfigState.from_requests(state.generate_requests())
    assert rebuilt == state
    assert rebuilt.hash() == state.hash()
    assert rebuilt.cluster_hashes() == state.cluster_hashes()

    other = sni_state()
    other.apply(remove("a", hostname="a.test"))
    other.apply(front("d", hostname="a.test"))
    other.apply(front("b", L2, hostname="b.test"))
    diff = state.diff(other)
    assert [(r.type, r["cluster_id"], r["hostname"]) for r in diff] == [
        ("REMOVE_TCP_FRONTEND", "a", "a.test"),
        ("ADD_TCP_FRONTEND", "d", "a.test"),
        ("ADD_TCP_FRONTEND", "b", "b.test"),
    ]
    for request in diff:
        state.apply(request)
    assert state == other
    assert state.hash() == other.hash()


def test_hostname_changes_the_hashes() -> None:
    plain = ConfigState.from_requests([req("ADD_CLUSTER", cluster_id="a"), front("a")])
    named = ConfigState.from_requests(
        [req("ADD_CLUSTER", cluster_id="a"), front("a", hostname="a.test")]
    )
    assert plain.hash() != named.hash()
    assert plain.cluster_hashes() != named.cluster_hashes()


def test_state_files_keep_hostnames(tmp_path: Any) -> None:
    state = sni_state()
    path = tmp_path / "state"
    state.save(path)
    loaded = ConfigState.from_requests(ConfigState.load(path))
    assert loaded == state
    assert loaded.tcp_frontends[(L1, "*.b.test")]["cluster_id"] == "b"


# -- TcpProxy routing table ----------------------------------------------------------------------


def test_sni_routes_match_exact_then_one_label_wildcard() -> None:
    routes = SniRoutes()
    assert not routes
    routes.add("*.example.com", "wild")
    routes.add("www.example.com", "www")
    assert routes
    assert routes.match("www.example.com") == "www"
    assert routes.match("a.example.com") == "wild"
    assert routes.match("example.com") is None
    assert routes.match("a.b.example.com") is None
    assert routes.match(".example.com") is None
    routes.remove("www.example.com")
    assert routes.match("www.example.com") == "wild"
    routes.remove_cluster("wild")
    assert not routes


def test_tcp_proxy_keeps_plain_listeners_plain() -> None:
    proxy = TcpProxy.__new__(TcpProxy)  # the tables only: no server needed
    proxy.frontends, proxy.sni_routes, proxy.clusters = {}, {}, {}
    proxy.add_frontend(L1, "plain")
    assert proxy.sni_routes == {}
    proxy.add_frontend(L1, "a", "a.test")
    proxy.add_frontend(L1, "w", "*.test")
    assert proxy.route_sni(L1, "a.test") == "a"
    assert proxy.route_sni(L1, "b.test") == "w"
    assert proxy.route_sni(L1, "other.example") == "plain"
    assert proxy.route_sni(L1, None) == "plain"
    proxy.remove_frontend(L1)
    assert proxy.route_sni(L1, "other.example") is None
    proxy.remove_frontend(L1, "a.test")
    proxy.remove_frontend(L1, "*.test")
    assert proxy.sni_routes == {}  # back to a plain listener
    proxy.add_frontend(L2, "a", "a.test")
    proxy.add_frontend(L2, "b", "b.test")
    proxy.remove_cluster("a")
    assert proxy.route_sni(L2, "a.test") is None
    assert proxy.route_sni(L2, "b.test") == "b"


# -- configuration file --------------------------------------------------------------------------

CONFIG = """\
[clusters.a]
protocol = "tcp"
frontends = [{ address = "127.0.0.1:8443", hostname = "A.Test" }]
backends = [{ address = "127.0.0.1:9001" }]

[clusters.b]
protocol = "tcp"
frontends = [
  { address = "127.0.0.1:8443", hostname = "*.b.test", tags = { k = "v" } },
  { address = "127.0.0.1:8443" },
]
backends = [{ address = "127.0.0.1:9002" }]
"""


def test_config_file_frontends_with_hostnames() -> None:
    config = parse_config(CONFIG)
    fronts = [r.fields for r in config.requests if r.type == "ADD_TCP_FRONTEND"]
    assert fronts == [
        {"cluster_id": "a", "address": L1, "hostname": "a.test", "tags": {}},
        {"cluster_id": "b", "address": L1, "hostname": "*.b.test", "tags": {"k": "v"}},
        {"cluster_id": "b", "address": L1, "hostname": None, "tags": {}},
    ]
    # one default listener for the address, whatever the number of frontends on it
    assert [r["address"] for r in config.requests if r.type == "ADD_TCP_LISTENER"] == [L1]
    state = ConfigState.from_requests(config.requests)
    assert sorted(state.tcp_frontends) == [(L1, ""), (L1, "*.b.test"), (L1, "a.test")]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (CONFIG.replace('"A.Test"', '"*"'), "clusters.a.frontends[0].hostname",
         "'*' is not a TCP frontend host name"),
        (CONFIG.replace('"A.Test"', '"/a/"'), "clusters.a.frontends[0].hostname",
         "takes no regular expression"),
        (CONFIG.replace('"A.Test"', "3"), "clusters.a.frontends[0].hostname", "must be a string"),
        (CONFIG.replace('"A.Test"', '"*.B.test"'), "clusters.b.frontends[0].address",
         "cluster 'a' already has a frontend on 127.0.0.1:8443 for *.b.test"),
        (CONFIG + '[clusters.c]\nprotocol = "tcp"\nfrontends = [{ address = "127.0.0.1:8443" }]\n',
         "clusters.c.frontends[0].address",
         "cluster 'b' already has a frontend on 127.0.0.1:8443"),
        (CONFIG.replace('{ address = "127.0.0.1:8443" }',
                        '{ address = "127.0.0.1:8443", hostname = "*.b.test" }'),
         "clusters.b.frontends[1].address",
         "this cluster already has a frontend on 127.0.0.1:8443 for *.b.test"),
    ],
)  # fmt: skip
def test_config_file_hostname_errors(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg.toml")
    assert info.value.key == key
    assert reason in info.value.reason


# -- command line --------------------------------------------------------------------------------


def test_cli_tcp_frontend_with_hostname() -> None:
    assert request_for(["frontend", "add", "a", L1, "--hostname", "a.test"]) == (
        "ADD_TCP_FRONTEND",
        {"cluster_id": "a", "address": L1, "hostname": "a.test", "tags": {}},
    )
    assert request_for(["frontend", "remove", "a", L1, "--hostname", "*.a.test"]) == (
        "REMOVE_TCP_FRONTEND",
        {"cluster_id": "a", "address": L1, "hostname": "*.a.test"},
    )
    # the worker's rules decide what a host name may be
    request_type, fields = request_for(["frontend", "add", "a", L1, "--hostname", "*"])
    with pytest.raises(CommandError, match="is not a TCP frontend host name"):
        make_request("cli", request_type, **fields)


def test_cli_cluster_lines_show_hostnames() -> None:
    config = make_request("r", "ADD_CLUSTER", cluster_id="a").fields
    fronts = [front("a", hostname="a.test", tags={"k": "v"}).fields, front("a", L2).fields]
    lines = _cluster_lines("a", {"configuration": config, "tcp_frontends": fronts}, None)
    assert lines[1:3] == [f"  frontend {L1} for a.test k=v", f"  frontend {L2}"]
