"""ADD_CLUSTER's ``backend_tls`` (TLS to backends): defaults, normalisation, refusals, the
worker's context building, and the state (save, load, diff) keeping the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pysozu.command import CommandError, make_request, parse_request
from pysozu.protocols.tls_backend import BackendTls, BackendTlsError
from pysozu.state import ConfigState
from tests.e2e.https_helpers import make_ca


def cluster(**backend_tls: Any) -> dict[str, Any]:
    fields: dict[str, Any] = make_request("r", "ADD_CLUSTER", cluster_id="app",
                                          backend_tls=backend_tls).fields
    return fields


def test_defaults_are_filled() -> None:
    assert cluster()["backend_tls"] == {
        "verify": True, "ca_file": None, "ca": None, "server_name": None,
        "alpn_protocols": ["http/1.1"],
    }
    assert make_request("r", "ADD_CLUSTER", cluster_id="app").fields["backend_tls"] is None


@pytest.mark.parametrize(("name", "expected"), [
    ("Backend.Example.COM", "backend.example.com"),
    ("127.0.0.1", "127.0.0.1"),
    ("[::1]", "::1"),
    ("0:0::1", "::1"),
])
def test_server_name_is_normalised(name: str, expected: str) -> None:
    assert cluster(server_name=name)["backend_tls"]["server_name"] == expected


@pytest.mark.parametrize(("fields", "message"), [
    ({"ca": "PEM", "ca_file": "ca.pem"}, "not both"),
    ({"alpn_protocols": ["h2"]}, "only 'http/1.1'"),
    ({"alpn_protocols": ["http/1.1", "spdy"]}, "only 'http/1.1'"),
    ({"server_name": "*.example.com"}, "no wildcard"),
    ({"server_name": "bad name"}, "spaces"),
    ({"server_name": "example.com:443"}, "port"),
    ({"server_name": ""}, "must not be empty"),
    ({"ca_file": ""}, "must not be empty"),
    ({"verify": "yes"}, "must be a boolean"),
    ({"cert": "x"}, "unknown field 'backend_tls.cert'"),
])
def test_refusals(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("*", r"\*").replace("(", r"\(")):
        cluster(**fields)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(CommandError, match="backend_tls"):
        make_request("r", "ADD_CLUSTER", cluster_id="app", backend_tls="yes")


def test_context_building_and_cache(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    fields = cluster(ca_file=str(ca.path), server_name="b.test")["backend_tls"]
    first = BackendTls.build(fields)
    assert BackendTls.build(fields, first) is first  # same settings: same context
    again = BackendTls.build(dict(fields, server_name="c.test"), first)
    assert again is not first and again.context is not first.context
    inline = BackendTls.build(cluster(ca=ca.pem + ca.pem)["backend_tls"])
    assert inline.config.ca == ca.pem + ca.pem
    assert BackendTls.build(cluster(verify=False)["backend_tls"]).config.verify is False


@pytest.mark.parametrize(("fields", "message"), [
    ({"ca_file": "/nonexistent/ca.pem"}, "cannot read ca_file"),
    ({"ca": "hello"}, "not a PEM certificate bundle"),
    ({"ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
     "not a PEM certificate bundle"),
])
def test_bad_ca_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendTlsError, match=message):
        BackendTls.build(cluster(**fields)["backend_tls"])


def test_state_keeps_the_field_through_save_load_and_diff(tmp_path: Path) -> None:
    plain = ConfigState.from_requests([make_request("a", "ADD_CLUSTER", cluster_id="app")])
    tls = ConfigState.from_requests([
        make_request("a", "ADD_CLUSTER", cluster_id="app",
                     backend_tls={"ca_file": "/etc/ca.pem", "server_name": "b.test"}),
    ])
    path = tmp_path / "state.json"
    tls.save(path)
    loaded = ConfigState.from_requests(ConfigState.load(path))
    assert loaded == tls
    assert loaded.clusters["app"]["backend_tls"]["server_name"] == "b.test"
    assert loaded.hash() != plain.hash()
    [change] = plain.diff(tls)
    assert change.type == "ADD_CLUSTER"
    assert change["backend_tls"]["ca_file"] == "/etc/ca.pem"
    [back] = tls.diff(plain)
    assert back.type == "ADD_CLUSTER" and back["backend_tls"] is None


def test_http2_with_backend_tls_is_refused() -> None:
    # h2 over TLS to backends is not spoken: the cluster would silently get HTTP/1.1
    with pytest.raises(CommandError, match="http2 with backend_tls is not supported"):
        parse_request({"id": "r", "type": "ADD_CLUSTER", "cluster_id": "c", "http2": True,
                       "backend_tls": {"verify": False}})
    assert parse_request({"id": "r", "type": "ADD_CLUSTER", "cluster_id": "c",
                          "http2": True})["http2"] is True
