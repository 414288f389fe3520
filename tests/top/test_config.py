"""Tests for pysozu.config: Sōzu's config.toml layout, defaults, and error positions."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

import pytest

from pysozu.command import Request, make_request, parse_request
from pysozu.config import (
    DEFAULT_CONFIG_TOML,
    ConfigError,
    FileConfig,
    ServerConfig,
    default_config,
    load_config,
    parse_config,
)
from pysozu.state import ConfigState


def parse(text: str) -> FileConfig:
    return parse_config(textwrap.dedent(text), source="test.toml")


def summary(requests: list[Request]) -> list[tuple[str, str]]:
    return [(r.type, r.fields.get("cluster_id") or r.fields["address"]) for r in requests]


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_server_defaults() -> None:
    server = parse("").server
    assert server == ServerConfig()
    expected = {
        "command_socket": "./pysozu.sock",
        "max_connections": 10_000,
        "buffer_size": 16_393,
        "max_buffers": 1_000,
        "min_buffers": 1,
        "zombie_check_interval": 1_800,
        "accept_queue_timeout": 60,
        "front_timeout": 60,
        "back_timeout": 30,
        "connect_timeout": 3,
        "request_timeout": 10,
        "log_level": "info",
        "log_target": "stdout",
        "max_command_buffer_size": 2_000_000,
        "command_buffer_size": 1_000_000,
        "worker_count": os.cpu_count() or 1,
        "activate_listeners": True,
        "saved_state": None,
        "max_connections_per_ip": 0,
        "retry_after": 60,
    }
    for key, value in expected.items():
        assert getattr(server, key) == value, key
    assert parse("").requests == []
    assert parse("").demo_backend is False


def test_server_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServerConfig().max_connections = 1  # type: ignore[misc]


def test_default_config() -> None:
    config = default_config()
    assert config.demo_backend is True
    assert config.server.command_socket == "./pysozu.sock"
    assert summary(config.requests) == [
        ("ADD_HTTP_LISTENER", "127.0.0.1:8080"),
        ("ADD_CLUSTER", "demo"),
        ("ADD_HTTP_FRONTEND", "demo"),
        ("ADD_BACKEND", "demo"),
        ("ADD_BACKEND", "demo"),
        ("ACTIVATE_LISTENER", "127.0.0.1:8080"),
    ]
    assert config.requests[1]["load_balancing"] == "ROUND_ROBIN"
    frontend = config.requests[2]
    assert (frontend["address"], frontend["hostname"], frontend["position"]) == (
        "127.0.0.1:8080", "*", "PRE")
    assert [r["address"] for r in config.requests[3:5]] == ["127.0.0.1:8081", "127.0.0.1:8082"]
    state = ConfigState.from_requests(config.requests)
    assert state.http_listeners["127.0.0.1:8080"]["active"] is True
    assert "demo" in DEFAULT_CONFIG_TOML
    assert parse_config(DEFAULT_CONFIG_TOML) == config


def test_server_keys_are_read() -> None:
    config = parse(
        """
        command_socket = "/run/p.sock"
        max_connections = 5
        buffer_size = 32768
        max_buffers = 10
        min_buffers = 2
        front_timeout = 11
        back_timeout = 12
        connect_timeout = 13
        request_timeout = 14
        zombie_check_interval = 15
        accept_queue_timeout = 16
        log_level = "debug"
        log_target = "stderr"
        access_logs_target = "file:///tmp/a"
        command_buffer_size = 100
        max_command_buffer_size = 200
        worker_count = 2
        saved_state = "/tmp/state"
        automatic_state_save = true
        activate_listeners = false
        max_connections_per_ip = 3
        retry_after = 0
        evict_on_queue_full = true
        worker_automatic_restart = false
        worker_timeout = 5
        handle_process_affinity = true
        ctl_command_timeout = 9
        pid_file_path = "/run/p.pid"
        log_colored = true
        disable_cluster_metrics = true
        demo_backend = true
        """
    )
    assert config.server == ServerConfig(
        command_socket="/run/p.sock",
        max_connections=5,
        buffer_size=32768,
        max_buffers=10,
        min_buffers=2,
        front_timeout=11,
        back_timeout=12,
        connect_timeout=13,
        request_timeout=14,
        zombie_check_interval=15,
        accept_queue_timeout=16,
        log_level="debug",
        log_target="stderr",
        access_logs_target="file:///tmp/a",
        command_buffer_size=100,
        max_command_buffer_size=200,
        worker_count=2,
        saved_state="/tmp/state",
        automatic_state_save=True,
        activate_listeners=False,
        max_connections_per_ip=3,
        retry_after=0,
        evict_on_queue_full=True,
        worker_automatic_restart=False,
        worker_timeout=5,
        handle_process_affinity=True,
        ctl_command_timeout=9,
        pid_file_path="/run/p.pid",
        log_colored=True,
        disable_cluster_metrics=True,
    )
    assert config.demo_backend is True


def test_min_buffers_is_clamped_to_max_buffers_like_sozu() -> None:
    assert parse("min_buffers = 50\nmax_buffers = 10").server.min_buffers == 10


# ---------------------------------------------------------------------------------------------
# Listeners and clusters
# ---------------------------------------------------------------------------------------------

SOZU_STYLE = """
front_timeout = 20

[[listeners]]
protocol = "tcp"
address = "0.0.0.0:8081"
back_timeout = 7

[[listeners]]
protocol = "tcp"
address = "[::1]:9000"
public_address = "1.2.3.4:81"

[clusters]

[clusters.TcpTest]
protocol = "tcp"
load_balancing = "random"
load_metric = "connections"
frontends = [
    { address = "0.0.0.0:8081", tags = { owner = "John", uuid = "3f74" } }
]
backends = [
    { address = "127.0.0.1:4000", weight = 100 },
{ address = "127.0.0.1:4001", weight = 50, backend_id = "named", sticky_id = "s", backup = true },
]

[clusters.other]
protocol = "TCP"
frontends = [{ address = "127.0.0.1:7000" }]
backends = [{ address = "[::1]:4000" }]
"""


def test_sozu_style_file() -> None:
    config = parse_config(SOZU_STYLE)
    assert summary(config.requests) == [
        ("ADD_TCP_LISTENER", "0.0.0.0:8081"),
        ("ADD_TCP_LISTENER", "[::1]:9000"),
        ("ADD_TCP_LISTENER", "127.0.0.1:7000"),  # created for a frontend with no listener
        ("ADD_CLUSTER", "TcpTest"),
        ("ADD_TCP_FRONTEND", "TcpTest"),
        ("ADD_BACKEND", "TcpTest"),
        ("ADD_BACKEND", "TcpTest"),
        ("ADD_CLUSTER", "other"),
        ("ADD_TCP_FRONTEND", "other"),
        ("ADD_BACKEND", "other"),
        ("ACTIVATE_LISTENER", "0.0.0.0:8081"),
        ("ACTIVATE_LISTENER", "[::1]:9000"),
        ("ACTIVATE_LISTENER", "127.0.0.1:7000"),
    ]
    assert [r.id for r in config.requests] == [f"CONFIG-{i}" for i in range(13)]
    by_id = {
        (r.type, r.fields.get("cluster_id"), r.fields.get("address")): r for r in config.requests
    }
    first = by_id[("ADD_TCP_LISTENER", None, "0.0.0.0:8081")]
    assert first.fields == {
        "address": "0.0.0.0:8081",
        "public_address": None,
        "expect_proxy": False,
        "front_timeout": 20,  # the server-wide value
        "back_timeout": 7,
        "connect_timeout": 3,
        "active": False,
    }
    assert by_id[("ADD_TCP_LISTENER", None, "[::1]:9000")]["public_address"] == "1.2.3.4:81"
    assert by_id[("ADD_TCP_LISTENER", None, "127.0.0.1:7000")]["front_timeout"] == 20
    cluster = by_id[("ADD_CLUSTER", "TcpTest", None)]
    assert cluster["load_balancing"] == "RANDOM"
    assert cluster["load_metric"] == "CONNECTIONS"
    assert cluster["proxy_protocol"] is None
    front = by_id[("ADD_TCP_FRONTEND", "TcpTest", "0.0.0.0:8081")]
    assert front["tags"] == {"owner": "John", "uuid": "3f74"}
    backends = [r for r in config.requests if r.type == "ADD_BACKEND"]
    assert backends[0].fields == {
        "cluster_id": "TcpTest",
        "backend_id": "TcpTest-0",
        "address": "127.0.0.1:4000",
        "sticky_id": None,
        "load_balancing_parameters": {"weight": 100},
        "backup": None,
    }
    assert backends[1].fields == {
        "cluster_id": "TcpTest",
        "backend_id": "named",
        "address": "127.0.0.1:4001",
        "sticky_id": "s",
        "load_balancing_parameters": {"weight": 50},
        "backup": True,
    }
    assert backends[2]["backend_id"] == "other-0"
    assert backends[2]["load_balancing_parameters"] == {"weight": 100}
    # the requests apply cleanly, in order
    state = ConfigState.from_requests(config.requests)
    assert all(listener["active"] for listener in state.tcp_listeners.values())


def test_activate_listeners_false_leaves_listeners_inactive() -> None:
    config = parse_config("activate_listeners = false\n" + SOZU_STYLE)
    assert "ACTIVATE_LISTENER" not in {r.type for r in config.requests}


def test_array_of_tables_and_inline_cluster_layouts() -> None:
    config = parse(
        """
        [clusters]
        inline = { protocol = "tcp", frontends = [{ address = "127.0.0.1:1" }] }

        [clusters.app]
        protocol = "tcp"

        [[clusters.app.frontends]]
        address = "127.0.0.1:2"
        tags = { a = "b" }

        [[clusters.app.backends]]
        address = "10.0.0.1:1"
        """
    )
    assert summary(config.requests)[:6] == [
        ("ADD_TCP_LISTENER", "127.0.0.1:1"),
        ("ADD_TCP_LISTENER", "127.0.0.1:2"),
        ("ADD_CLUSTER", "inline"),
        ("ADD_TCP_FRONTEND", "inline"),
        ("ADD_CLUSTER", "app"),
        ("ADD_TCP_FRONTEND", "app"),
    ]


@pytest.mark.parametrize(
    ("cluster_keys", "expect_proxy", "expected"),
    [
        ("", False, None),
        ("send_proxy = false", False, None),
        ("send_proxy = true", False, "SEND_HEADER"),
        ("", True, "EXPECT_HEADER"),
        ("send_proxy = true", True, "RELAY_HEADER"),
        ('proxy_protocol = "expect"', False, "EXPECT_HEADER"),
        ('proxy_protocol = "Send"', False, "SEND_HEADER"),
        ('proxy_protocol = "relay"', False, "RELAY_HEADER"),
        ('proxy_protocol = "EXPECT_HEADER"', False, "EXPECT_HEADER"),
        ('proxy_protocol = "send_header"', False, "SEND_HEADER"),
        ('proxy_protocol = "RELAY_HEADER"', True, "RELAY_HEADER"),
    ],
)
def test_proxy_protocol(cluster_keys: str, expect_proxy: bool, expected: str | None) -> None:
    config = parse_config(
        f"""
[[listeners]]
protocol = "tcp"
address = "127.0.0.1:1"
expect_proxy = {str(expect_proxy).lower()}

[clusters.c]
protocol = "tcp"
{cluster_keys}
frontends = [{{ address = "127.0.0.1:1" }}]
"""
    )
    (cluster,) = [r for r in config.requests if r.type == "ADD_CLUSTER"]
    assert cluster["proxy_protocol"] == expected


def test_cluster_pass_through_keys() -> None:
    config = parse(
        """
        [clusters.c]
        protocol = "tcp"
        sticky_session = true
        https_redirect = true
        max_connections_per_ip = 4
        retry_after = 9
        load_balancing = "POWER_OF_TWO"
        load_metric = "CONNECTION_TIME"
        """
    )
    assert config.requests == [
        make_request(
            "CONFIG-0",
            "ADD_CLUSTER",
            cluster_id="c",
            sticky_session=True,
            https_redirect=True,
            max_connections_per_ip=4,
            retry_after=9,
            load_balancing="POWER_OF_TWO",
            load_metric="CONNECTION_TIME",
        )
    ]


# ---------------------------------------------------------------------------------------------
# Errors: message names the key and the line
# ---------------------------------------------------------------------------------------------

LISTENER = '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:1"\n'

ERRORS: list[tuple[str, str, str | None, int | None, str]] = [
    ("unknown top-level key", "log_level = 'info'\nfoo = 1\n", "foo", 2, "unknown key"),
    ("bad int", "max_connections = '10'\n", "max_connections", 1, "must be an integer"),
    ("bool for int", "max_connections = true\n", "max_connections", 1, "must be an integer"),
    ("float for int", "\n\nbuffer_size = 1.5\n", "buffer_size", 3, "must be an integer"),
    ("zero max_connections", "max_connections = 0", "max_connections", 1,
     "must be between 1 and 9223372036854775807 (got 0)"),
    ("negative timeout", "front_timeout = -1", "front_timeout", 1,
     "must be between 0 and 4294967295 (got -1)"),
    ("huge timeout", "connect_timeout = 4294967296", "connect_timeout", 1,
     "must be between 0 and 4294967295"),
    ("bad string", "command_socket = 1", "command_socket", 1, "must be a string"),
    ("empty string", "command_socket = ''", "command_socket", 1, "must not be empty"),
    ("bad bool", "activate_listeners = 'yes'", "activate_listeners", 1, "must be a boolean"),
    ("bad demo_backend", "demo_backend = 1", "demo_backend", 1, "must be a boolean"),
    ("command buffers", "command_buffer_size = 10\nmax_command_buffer_size = 5\n",
     "command_buffer_size", 1, "command_buffer_size must not exceed max_command_buffer_size"),
    ("command buffer default max", "command_buffer_size = 3000000", "command_buffer_size", 1,
     "must not exceed"),
    ("listeners not an array", "listeners = 5", "listeners", 1, "must be an array of tables"),
    ("listener not a table", "listeners = [1]", "listeners[0]", 1, "must be a table"),
    ("listener without protocol", "\n[[listeners]]\naddress = '1.2.3.4:1'\n", "listeners[0]", 2,
     "missing key 'protocol' for a listener"),
    ("https listener without address", '[[listeners]]\nprotocol = "HTTPS"\n',
     "listeners[0]", 1, "missing key 'address' for a listener"),
    ("udp listener", '[[listeners]]\nprotocol = "udp"\n', "listeners[0].protocol", 2,
     "udp listeners are not supported yet"),
    ("weird protocol", '[[listeners]]\nprotocol = "sctp"\n', "listeners[0].protocol", 2,
     "must be 'tcp', 'http' or 'https' (got 'sctp')"),
    ("protocol not a string", '[[listeners]]\nprotocol = 6\n', "listeners[0].protocol", 2,
     "must be a string"),
    ("listener without address", '[[listeners]]\nprotocol = "tcp"\n', "listeners[0]", 1,
     "missing key 'address' for a listener"),
    ("unknown listener key", LISTENER + "colour = 'x'\n", "listeners[0].colour", 4,
     "unknown key for a tcp listener"),
    ("http listener key on tcp", LISTENER + "sticky_name = 'x'\n", "listeners[0].sticky_name",
     4, "only valid for http listeners"),
    ("bad listener address", '[[listeners]]\nprotocol = "tcp"\naddress = "1.2.3.4"\n',
     "listeners[0].address", 3, "invalid address '1.2.3.4' (expected host:port)"),
    ("address not a string", '[[listeners]]\nprotocol = "tcp"\naddress = 80\n',
     "listeners[0].address", 3, "must be a string"),
    ("duplicate listener", LISTENER + LISTENER, "listeners[1].address", 6,
     "another listener already uses 127.0.0.1:1"),
    ("duplicate listener, other spelling",
     LISTENER + '[[listeners]]\nprotocol = "tcp"\naddress = "127.000.0.1:01"\n', None, None,
     "127.000.0.1"),
    ("public address with expect_proxy",
     LISTENER + "expect_proxy = true\npublic_address = '1.1.1.1:1'\n",
     "listeners[0].public_address", 5, "public_address is incompatible with expect_proxy"),
    ("bad listener timeout", LISTENER + "back_timeout = 'x'\n", "listeners[0].back_timeout", 4,
     "must be an integer"),
    ("clusters not a table", "clusters = 1", "clusters", 1, "must be a table of clusters"),
    ("cluster not a table", "[clusters]\napp = 1\n", "clusters.app", 2, "must be a table"),
    ("empty cluster name", '[clusters.""]\nprotocol = "tcp"\n', 'clusters.""', 1,
     "a cluster name must not be empty"),
    ("cluster without protocol", "[clusters.app]\nbackends = []\n", "clusters.app", 1,
     "missing key 'protocol' for a cluster"),
    ("https cluster", '[clusters.app]\nprotocol = "https"\n', "clusters.app.protocol", 2,
     "must be 'tcp' or 'http' (got 'https'): HTTPS frontends belong to http clusters"),
    ("unknown cluster key", '[clusters.app]\nprotocol = "tcp"\ncolour = true\n',
     "clusters.app.colour", 3, "unknown key for a tcp cluster"),
    ("http cluster key on tcp", '[clusters.app]\nprotocol = "tcp"\nhttp2 = true\n',
     "clusters.app.http2", 3, "only valid for http clusters"),
    ("bad load balancing", '[clusters.app]\nprotocol = "tcp"\nload_balancing = "HRW"\n',
     "clusters.app.load_balancing", 3,
     "must be one of ROUND_ROBIN, RANDOM, LEAST_LOADED, POWER_OF_TWO (got 'HRW')"),
    ("bad load metric", '[clusters.app]\nprotocol = "tcp"\nload_metric = 1\n',
     "clusters.app.load_metric", 3, "must be a string"),
    ("bad sticky_session", '[clusters.app]\nprotocol = "tcp"\nsticky_session = "no"\n',
     "clusters.app.sticky_session", 3, "must be a boolean"),
    ("bad proxy_protocol", '[clusters.app]\nprotocol = "tcp"\nproxy_protocol = "both"\n',
     "clusters.app.proxy_protocol", 3, "must be one of EXPECT_HEADER, SEND_HEADER, RELAY_HEADER"),
    ("send_proxy and proxy_protocol",
     '[clusters.app]\nprotocol = "tcp"\nsend_proxy = true\nproxy_protocol = "send"\n',
     "clusters.app.proxy_protocol", 4, "give either send_proxy or proxy_protocol, not both"),
    ("bad send_proxy", '[clusters.app]\nprotocol = "tcp"\nsend_proxy = 1\n',
     "clusters.app.send_proxy", 3, "must be a boolean"),
    ("frontends not an array", '[clusters.app]\nprotocol = "tcp"\nfrontends = "x"\n',
     "clusters.app.frontends", 3, "must be an array of tables"),
    ("frontend not a table", '[clusters.app]\nprotocol = "tcp"\nfrontends = ["1.1.1.1:1"]\n',
     "clusters.app.frontends[0]", 3, "must be a table (a tcp frontend)"),
    ("backend not a table", '[clusters.app]\nprotocol = "tcp"\nbackends = [\n  1,\n]\n',
     "clusters.app.backends[0]", 4, "must be a table (a backend)"),
    ("frontend without address", '[clusters.app]\nprotocol = "tcp"\nfrontends = [{}]\n',
     "clusters.app.frontends[0]", 3, "missing key 'address' for a frontend"),
    ("http frontend key",
     '[clusters.app]\nprotocol = "tcp"\nfrontends = [\n  { address = "1.1.1.1:1" },\n'
     '  { address = "1.1.1.1:2", path = "/x" },\n]\n',
     "clusters.app.frontends[1].path", 5, "only valid for http frontends"),
    ("unknown frontend key", '[clusters.app]\nprotocol = "tcp"\nfrontends = [{ address = '
     '"1.1.1.1:1", colour = "red" }]\n', "clusters.app.frontends[0].colour", 3,
     "unknown key for a tcp frontend"),
    ("bad tag", '[clusters.app]\nprotocol = "tcp"\n[[clusters.app.frontends]]\n'
     'address = "1.1.1.1:1"\ntags = { a = 1 }\n', "clusters.app.frontends[0].tags.a", 5,
     "must be a string"),
    ("tags not a table", '[clusters.app]\nprotocol = "tcp"\n[[clusters.app.frontends]]\n'
     'address = "1.1.1.1:1"\ntags = "x"\n', "clusters.app.frontends[0].tags", 5,
     "must be a table of strings"),
    ("frontend twice in a cluster", '[clusters.app]\nprotocol = "tcp"\nfrontends = [\n'
     '  { address = "1.1.1.1:1" },\n  { address = "1.1.1.1:1" },\n]\n',
     "clusters.app.frontends[1].address", 5, "this cluster already has a frontend on 1.1.1.1:1"),
    ("frontend in two clusters", '[clusters.a]\nprotocol = "tcp"\nfrontends = [{ address = '
     '"1.1.1.1:1" }]\n[clusters.b]\nprotocol = "tcp"\nfrontends = [{ address = "1.1.1.1:1" }]\n',
     "clusters.b.frontends[0].address", 6, "cluster 'a' already has a frontend on 1.1.1.1:1"),
    ("mixed expect_proxy", LISTENER + 'expect_proxy = true\n[clusters.a]\nprotocol = "tcp"\n'
     'frontends = [{ address = "127.0.0.1:1" }, { address = "127.0.0.1:2" }]\n',
     "clusters.a.frontends", 7, "frontends mix listeners with and without expect_proxy"),
    ("backend without address", '[clusters.app]\nprotocol = "tcp"\n\n[[clusters.app.backends]]\n'
     'weight = 1\n', "clusters.app.backends[0]", 4, "missing key 'address' for a backend"),
    ("backend weight type", '[clusters.app]\nprotocol = "tcp"\nbackends = [\n'
     '  { address = "1.1.1.1:1" },\n  { address = "1.1.1.1:2", weight = "heavy" },\n]\n',
     "clusters.app.backends[1].weight", 5, "must be an integer"),
    ("backend weight range", '[clusters.app]\nprotocol = "tcp"\n[[clusters.app.backends]]\n'
     'address = "1.1.1.1:1"\nweight = 256\n', "clusters.app.backends[0].weight", 5,
     "must be between 0 and 255 (got 256)"),
    ("backend bad address", '[clusters.app]\nprotocol = "tcp"\nbackends = [{ address = "x:y" }]\n',
     "clusters.app.backends[0].address", 3, "port 'y' is not a number"),
    ("backend unknown key", '[clusters.app]\nprotocol = "tcp"\nbackends = [{ address = '
     '"1.1.1.1:1", sticky = "s" }]\n', "clusters.app.backends[0].sticky", 3,
     "unknown key for a backend"),
    ("backend bad backup", '[clusters.app]\nprotocol = "tcp"\nbackends = [{ address = '
     '"1.1.1.1:1", backup = "no" }]\n', "clusters.app.backends[0].backup", 3,
     "must be a boolean"),
    ("backend empty sticky id", '[clusters.app]\nprotocol = "tcp"\nbackends = [{ address = '
     '"1.1.1.1:1", sticky_id = "" }]\n', "clusters.app.backends[0].sticky_id", 3,
     "must not be empty"),
    ("duplicate backend id", '[clusters.app]\nprotocol = "tcp"\nbackends = [\n'
     '  { address = "1.1.1.1:1", backend_id = "x" },\n'
     '  { address = "1.1.1.1:2", backend_id = "x" },\n]\n',
     "clusters.app.backends[1].backend_id", 5, "backend id 'x' is used twice"),
    ("default backend id collision", '[clusters.app]\nprotocol = "tcp"\nbackends = [\n'
     '  { address = "1.1.1.1:1", backend_id = "app-1" },\n  { address = "1.1.1.1:2" },\n]\n',
     "clusters.app.backends[1].backend_id", 5, "backend id 'app-1' is used twice"),
    ("duplicate backend address", '[clusters.app]\nprotocol = "tcp"\nbackends = [\n'
     '  { address = "1.1.1.1:1" },\n  { address = "1.1.1.1:1" },\n]\n',
     "clusters.app.backends[1].address", 5, "backend address 1.1.1.1:1 is used twice"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "line", "reason"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(text: str, key: str | None, line: int | None, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg.toml")
    error = info.value
    assert reason in error.reason
    if key is not None:
        assert error.key == key
        assert error.line == line
        assert str(error) == f"cfg.toml:{line}: {key}: {error.reason}"
    assert str(error).startswith("cfg.toml")


def test_duplicate_listener_in_another_spelling_is_caught() -> None:
    text = LISTENER + '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:01"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == "listeners[1].address"
    assert info.value.line == 6


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a = 1\nb = \n", 2),
        ("[[listeners]\n", 1),
        ('x = "unterminated\n', 1),
        ("a = 1\na = 2\n", 2),
        ("x = ", 1),
    ],
)
def test_toml_syntax_errors(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bad.toml")
    assert info.value.line == line
    assert info.value.key is None
    assert str(info.value).startswith(f"bad.toml:{line}: invalid TOML: ")


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
    error = ConfigError("boom")
    assert str(error) == "<string>: boom"
    assert (error.key, error.line, error.source) == (None, None, "<string>")


# ---------------------------------------------------------------------------------------------
# Line numbers survive tricky TOML
# ---------------------------------------------------------------------------------------------

TRICKY = '''\
# [clusters.app] in a comment
log_target = """
[clusters.app]
weight = "x"
"""
access_logs_target = 'a = [ { b } ] # not a comment'

[clusters.app]
protocol = "tcp"   # comment [with] brackets
frontends = [  # the frontends
    { address = "1.1.1.1:1", tags = { "k.k" = "v" } },
]

[[clusters.app.backends]]
address = "1.1.1.1:1"

[[clusters.app.backends]]
"address" = "1.1.1.1:2"
weight = BAD
'''


@pytest.mark.parametrize(
    ("replacement", "key", "line"),
    [
        ('"x"', "clusters.app.backends[1].weight", 19),
        ("3\nextra = 1", "clusters.app.backends[1].extra", 20),
        ("3\n[clusters.app.backends.sub]\nk = 1", "clusters.app.backends[1].sub", 20),
    ],
)
def test_line_numbers_in_tricky_toml(replacement: str, key: str, line: int) -> None:
    assert parse_config(TRICKY.replace("BAD", "3")).server.log_target.startswith("[clusters")
    with pytest.raises(ConfigError) as info:
        parse_config(TRICKY.replace("BAD", replacement))
    assert info.value.key == key
    assert info.value.line == line


def test_strings_ending_in_extra_quotes_are_located() -> None:
    text = "log_target = \"\"\"a\"\"\"\"\"\nlog_level = '''b'''''\n\nfoo = 1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.key, info.value.line) == ("foo", 4)


def test_position_scanner_gives_up_quietly_on_unexpected_text() -> None:
    from pysozu.config import _Positions

    for text in ("[[", "a = ", "a = [1, 2", "= 1", 'a = """x', "a.b", "a = {", "a = 'x"):
        positions = _Positions(text)  # must not raise
        assert positions.line(("zzz",)) is None
    assert _Positions("a = 1\nb = [1, 2").line(("a",)) == 1  # what was found before is kept


def test_dotted_and_quoted_keys_are_located() -> None:
    text = '[clusters]\napp.protocol = "tcp"\napp.frontends = [{ address = "1.1.1.1:1" }]\n'
    text += 'app."load_balancing" = "NONE"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == "clusters.app.load_balancing"
    assert info.value.line == 4


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def test_load_config_resolves_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "pysozu.toml"
    path.parent.mkdir()
    path.write_text(
        'command_socket = "./run/p.sock"\nsaved_state = "state.json"\n' + LISTENER,
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.server.command_socket == str(tmp_path / "conf" / "run" / "p.sock")
    assert config.server.saved_state == str(tmp_path / "conf" / "state.json")
    assert summary(config.requests) == [
        ("ADD_TCP_LISTENER", "127.0.0.1:1"),
        ("ACTIVATE_LISTENER", "127.0.0.1:1"),
    ]


def test_load_config_keeps_absolute_paths(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('command_socket = "/run/p.sock"\n', encoding="utf-8")
    assert load_config(path).server.command_socket == "/run/p.sock"
    assert load_config(path).server.saved_state is None


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("\n\nmax_buffers = 'many'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:3: max_buffers: must be an integer"
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "bin.toml")


def test_requests_are_valid_wire_requests() -> None:
    config = parse_config(SOZU_STYLE)
    for request in config.requests:
        assert parse_request(request.to_dict()) == request


def test_metrics_table_and_access_log_keys() -> None:
    config = parse(
        'access_logs_target = "file:///tmp/x.log"\naccess_logs_format = "json"\n'
        '[metrics]\naddress = "127.0.0.1:8125"\nprefix = "px"\ntagged_metrics = false\n'
    )
    server = config.server
    assert (server.metrics_address, server.metrics_prefix, server.metrics_tagged) == (
        "127.0.0.1:8125", "px", False)
    assert (server.access_logs_target, server.access_logs_format) == ("file:///tmp/x.log", "json")


@pytest.mark.parametrize("text,fragment", [
    ('[metrics]\nfoo = 1\n', ":2: metrics.foo: unknown key"),
    ('access_logs_format = "xml"\n', ":1: access_logs_format: must be 'ascii' or 'json'"),
    ('[metrics]\naddress = "nope"\n', ":2: metrics.address: invalid address"),
    ('metrics_address = "1.2.3.4:5"\n', ":1: metrics_address: unknown key"),
    ('metrics = 3\n', ":1: metrics: must be a table"),
])
def test_metrics_table_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert fragment in str(e.value)
