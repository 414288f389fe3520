"""``backend_tls`` (TLS to backends) in the configuration file and on the command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pysozu.cli import request_for
from pysozu.command import make_request
from pysozu.config import ConfigError, load_config, parse_config

CLUSTER = """
[clusters.app]
protocol = "http"
backends = [{ address = "127.0.0.1:4443" }]
"""


def test_table_becomes_the_cluster_field(tmp_path: Path) -> None:
    path = tmp_path / "pysozu.toml"
    path.write_text(CLUSTER + """
[clusters.app.backend_tls]
ca_file = "certs/ca.pem"
server_name = "Backend.Test"
alpn_protocols = ["http/1.1"]
""")
    [cluster] = [r for r in load_config(path).requests if r.type == "ADD_CLUSTER"]
    assert cluster["backend_tls"] == {
        "verify": True, "ca_file": str(tmp_path / "certs" / "ca.pem"), "ca": None,
        "server_name": "backend.test", "alpn_protocols": ["http/1.1"],
    }


def test_absolute_ca_file_and_no_verify() -> None:
    config = parse_config(CLUSTER + """
[clusters.app.backend_tls]
verify = false
ca_file = "/etc/ssl/ca.pem"
""", base_dir="/srv")
    [cluster] = [r for r in config.requests if r.type == "ADD_CLUSTER"]
    assert cluster["backend_tls"]["ca_file"] == "/etc/ssl/ca.pem"
    assert cluster["backend_tls"]["verify"] is False


def test_no_table_no_tls() -> None:
    [cluster] = [r for r in parse_config(CLUSTER).requests if r.type == "ADD_CLUSTER"]
    assert cluster["backend_tls"] is None


@pytest.mark.parametrize(("table", "key", "reason"), [
    ('verify = "no"', "clusters.app.backend_tls.verify", "boolean"),
    ('ca = "x"\nca_file = "y"', "clusters.app.backend_tls.ca_file", "not both"),
    ('server_name = "*.test"', "clusters.app.backend_tls.server_name", "no wildcard"),
    ('alpn_protocols = ["h2"]', "clusters.app.backend_tls.alpn_protocols", "http/1.1"),
    ('cert = "x"', "clusters.app.backend_tls.cert", "unknown key"),
])
def test_errors(table: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CLUSTER + "\n[clusters.app.backend_tls]\n" + table + "\n", source="c.toml")
    assert info.value.key == key
    assert reason in info.value.reason


def test_tcp_cluster_refuses_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[clusters.t]\nprotocol = "tcp"\n[clusters.t.backend_tls]\nverify = true\n')
    assert "only valid for http clusters" in info.value.reason


@pytest.mark.parametrize(("argv", "expected"), [
    (["--backend-tls"], {}),
    (["--backend-tls-no-verify"], {"verify": False}),
    (["--backend-tls-server-name", "b.test"], {"server_name": "b.test"}),
    (["--backend-tls", "--backend-tls-ca", "ca.pem"], {"ca_file": os.path.abspath("ca.pem")}),
])
def test_cli_cluster_add(argv: list[str], expected: dict[str, object]) -> None:
    request_type, fields = request_for(["cluster", "add", "app", *argv])
    assert request_type == "ADD_CLUSTER"
    assert fields == {"cluster_id": "app", "backend_tls": expected}
    make_request("cli", request_type, **fields)  # and the worker would accept its shape


def test_cli_without_tls_options_sends_no_field() -> None:
    assert "backend_tls" not in request_for(["cluster", "add", "app"])[1]
