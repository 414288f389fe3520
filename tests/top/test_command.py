"""Tests for pysozu.command: addresses, request validation and defaults, responses."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysozu.command import (
    EVENT_KINDS,
    REQUEST_SPECS,
    CommandError,
    Request,
    event,
    failure,
    format_address,
    make_request,
    ok,
    parse_address,
    parse_request,
    parse_response,
    processing,
)

# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("10.1.2.3:65535", ("10.1.2.3", 65535)),
        ("127.0.0.1:080", ("127.0.0.1", 80)),
        ("[::1]:80", ("::1", 80)),
        ("[0:0:0:0:0:0:0:1]:443", ("::1", 443)),
        ("[2001:DB8::1]:8080", ("2001:db8::1", 8080)),
        ("localhost:8080", ("localhost", 8080)),
        ("LocalHost:1", ("localhost", 1)),
        ("backend-1.example.com:9000", ("backend-1.example.com", 9000)),
    ],
)
def test_parse_address_valid(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.3.4", "invalid address '1.2.3.4' (expected host:port)"),
        (":80", "invalid address ':80' (expected host:port)"),
        ("", "invalid address '' (expected host:port)"),
        ("1.2.3.4:", "invalid address '1.2.3.4:': port '' is not a number"),
        ("1.2.3.4:http", "invalid address '1.2.3.4:http': port 'http' is not a number"),
        ("1.2.3.4:-1", "invalid address '1.2.3.4:-1': port '-1' is not a number"),
        ("1.2.3.4:+1", "invalid address '1.2.3.4:+1': port '+1' is not a number"),
        ("1.2.3.4:65536", "invalid address '1.2.3.4:65536': port 65536 is out of range 0..65535"),
        ("::1:80", "invalid address '::1:80': write IPv6 addresses as [host]:port"),
        ("[::1]80", "invalid address '[::1]80' (expected host:port)"),
        ("[::1", "invalid address '[::1' (expected host:port)"),
        ("[zz]:80", "invalid address '[zz]:80': 'zz' is not an IPv6 address"),
        ("[1.2.3.4]:80", "invalid address '[1.2.3.4]:80': '1.2.3.4' is not an IPv6 address"),
        ("1.2.3.999:80", "invalid address '1.2.3.999:80': '1.2.3.999' is not an IP address"),
        ("256.0.0.1:80", "invalid address '256.0.0.1:80': '256.0.0.1' is not an IP address"),
        ("bad_host:80", "invalid address 'bad_host:80': 'bad_host' is not an IP address"),
        ("-lead.example:80", "'-lead.example' is not an IP address or host name"),
        ("a..b:80", "'a..b' is not an IP address or host name"),
        ("1.2.3.4:\uff180", "port '\uff180' is not a number"),
    ],
)
def test_parse_address_invalid(text: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_address(text)
    assert message in str(info.value)


def test_parse_address_rejects_non_strings() -> None:
    with pytest.raises(CommandError, match=r"invalid address 80 \(expected host:port\)"):
        parse_address(80)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 80, "127.0.0.1:80"),
        ("::1", 80, "[::1]:80"),
        ("localhost", 0, "localhost:0"),
    ],
)
def test_format_address(host: str, port: int, expected: str) -> None:
    assert format_address(host, port) == expected
    assert parse_address(expected) == (host, port)


@given(
    ip=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    port=st.integers(0, 65535),
)
def test_address_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    text = format_address(str(ip), port)
    assert parse_address(text) == (str(ip), port)
    # the normalised form is a fixed point
    assert format_address(*parse_address(text)) == text


# ---------------------------------------------------------------------------------------------
# Request validation
# ---------------------------------------------------------------------------------------------


def _backend(**extra: Any) -> dict[str, Any]:
    return {
        "id": "r1",
        "type": "ADD_BACKEND",
        "cluster_id": "app",
        "backend_id": "app-0",
        "address": "127.0.0.1:8000",
        **extra,
    }


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "a request must be a JSON object, not an array"),
        ("STATUS", "a request must be a JSON object, not a string"),
        (None, "a request must be a JSON object, not null"),
        (3, "a request must be a JSON object, not a number"),
        (True, "a request must be a JSON object, not a boolean"),
        ((1, 2), "a request must be a JSON object, not tuple"),
        ({"type": "STATUS"}, "missing field 'id'"),
        ({"id": "", "type": "STATUS"}, "field 'id' must be a non-empty string"),
        ({"id": 7, "type": "STATUS"}, "field 'id' must be a non-empty string"),
        ({"id": "r1"}, "missing field 'type'"),
        ({"id": "r1", "type": 12}, "field 'type' must be a string"),
        ({"id": "r1", "type": "FOO"}, "unknown request type 'FOO'"),
        ({"id": "r1", "type": "status"}, "unknown request type 'status'"),
        ({"id": "r1", "type": "STATUS", "x": 1}, "unknown field 'x' for STATUS"),
        ({"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "foo": 1}, None),
        ({"id": "r1", "type": "ADD_CLUSTER"}, "missing field 'cluster_id' for ADD_CLUSTER"),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": None},
            "field 'cluster_id' must be a string",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": ""},
            "field 'cluster_id' must not be empty",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "sticky_session": 1},
            "field 'sticky_session' must be a boolean",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "load_balancing": "FOO"},
            "field 'load_balancing' must be one of ROUND_ROBIN, RANDOM, LEAST_LOADED, "
            "POWER_OF_TWO (got 'FOO')",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "load_balancing": 1},
            "field 'load_balancing' must be a string",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "proxy_protocol": "SEND"},
            "field 'proxy_protocol' must be one of EXPECT_HEADER, SEND_HEADER, RELAY_HEADER",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "load_metric": "CPU"},
            "field 'load_metric' must be one of CONNECTIONS, REQUESTS, CONNECTION_TIME",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "answers": {"503": 1}},
            "field 'answers' must be an object of strings",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "authorized_hashes": "x"},
            "field 'authorized_hashes' must be a list of strings",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "retry_after": -1},
            "field 'retry_after' must be between 0 and 4294967295 (got -1)",
        ),
        (
            {"id": "r1", "type": "ADD_CLUSTER", "cluster_id": "a", "max_connections_per_ip": 2**64},
            "field 'max_connections_per_ip' must be between 0 and 18446744073709551615",
        ),
        (_backend(address="1.2.3.4"), "invalid address '1.2.3.4' (expected host:port)"),
        (_backend(address=8000), "field 'address' must be a string"),
        (_backend(backend_id=None), "field 'backend_id' must be a string"),
        (
            {k: v for k, v in _backend().items() if k != "address"},
            "missing field 'address' for ADD_BACKEND",
        ),
        (
            _backend(load_balancing_parameters={"weight": "10"}),
            "field 'load_balancing_parameters.weight' must be an integer",
        ),
        (
            _backend(load_balancing_parameters={"weight": 1.5}),
            "field 'load_balancing_parameters.weight' must be an integer",
        ),
        (
            _backend(load_balancing_parameters={"weight": True}),
            "field 'load_balancing_parameters.weight' must be an integer",
        ),
        (
            _backend(load_balancing_parameters={"weight": 2**31}),
            "field 'load_balancing_parameters.weight' must be between -2147483648 and 2147483647",
        ),
        (
            _backend(load_balancing_parameters={}),
            "missing field 'load_balancing_parameters.weight' for ADD_BACKEND",
        ),
        (
            _backend(load_balancing_parameters={"weight": 1, "x": 2}),
            "unknown field 'load_balancing_parameters.x' for ADD_BACKEND",
        ),
        (
            _backend(load_balancing_parameters=[1]),
            "field 'load_balancing_parameters' must be an object",
        ),
        (_backend(backup="yes"), "field 'backup' must be a boolean"),
        (_backend(sticky_id=5), "field 'sticky_id' must be a string"),
        (
            {"id": "r", "type": "ADD_TCP_LISTENER", "address": "1.2.3.4:80", "front_timeout": 1.0},
            "field 'front_timeout' must be an integer",
        ),
        (
            {"id": "r", "type": "ADD_TCP_LISTENER", "address": "1.2.3.4:80", "public_address": "x"},
            "field 'public_address': invalid address 'x' (expected host:port)",
        ),
        (
            {"id": "r", "type": "REMOVE_LISTENER", "address": "1.2.3.4:80"},
            "missing field 'proxy' for REMOVE_LISTENER",
        ),
        (
            {"id": "r", "type": "REMOVE_LISTENER", "address": "1.2.3.4:80", "proxy": "UDP"},
            "field 'proxy' must be one of HTTP, HTTPS, TCP (got 'UDP')",
        ),
        (
            {
                "id": "r",
                "type": "ACTIVATE_LISTENER",
                "address": "1.2.3.4:80",
                "proxy": "TCP",
                "to_scm": True,
            },
            "unknown field 'to_scm' for ACTIVATE_LISTENER",
        ),
        (
            {
                "id": "r",
                "type": "ADD_TCP_FRONTEND",
                "cluster_id": "a",
                "address": "1.2.3.4:80",
                "tags": {"k": None},
            },
            "field 'tags' must be an object of strings",
        ),
        ({"id": "r", "type": "SAVE_STATE"}, "missing field 'path' for SAVE_STATE"),
        ({"id": "r", "type": "LOAD_STATE", "path": ""}, "field 'path' must not be empty"),
        ({"id": "r", "type": "QUERY_CLUSTER_BY_ID"}, "missing field 'cluster_id'"),
    ],
)
def test_parse_request_errors(obj: Any, message: str | None) -> None:
    with pytest.raises(CommandError) as info:
        parse_request(obj)
    if message is None:
        message = "unknown field 'foo' for ADD_CLUSTER"
    assert message in str(info.value)


def test_exact_messages_from_the_brief() -> None:
    cases = {
        "missing field 'cluster_id' for ADD_BACKEND": {
            "id": "r",
            "type": "ADD_BACKEND",
            "backend_id": "b",
            "address": "1.2.3.4:1",
        },
        "unknown field 'foo' for ADD_CLUSTER": {
            "id": "r",
            "type": "ADD_CLUSTER",
            "cluster_id": "a",
            "foo": 1,
        },
        "unknown request type 'FOO'": {"id": "r", "type": "FOO"},
    }
    for message, obj in cases.items():
        with pytest.raises(CommandError) as info:
            parse_request(obj)
        assert str(info.value) == message


def test_command_error_is_a_value_error() -> None:
    assert issubclass(CommandError, ValueError)


# ---------------------------------------------------------------------------------------------
# Defaults and normalisation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected_fields"),
    [
        ({"type": "STATUS"}, {}),
        ({"type": "SOFT_STOP"}, {}),
        ({"type": "HARD_STOP"}, {}),
        ({"type": "LIST_LISTENERS"}, {}),
        ({"type": "QUERY_CLUSTERS_HASHES"}, {}),
        ({"type": "SAVE_STATE", "path": "/tmp/s"}, {"path": "/tmp/s"}),
        ({"type": "LOAD_STATE", "path": "s"}, {"path": "s"}),
        ({"type": "QUERY_CLUSTER_BY_ID", "cluster_id": "a"}, {"cluster_id": "a"}),
        ({"type": "REMOVE_CLUSTER", "cluster_id": "a"}, {"cluster_id": "a"}),
        (
            {"type": "ADD_CLUSTER", "cluster_id": "a"},
            {
                "cluster_id": "a",
                "sticky_session": False,
                "https_redirect": False,
                "proxy_protocol": None,
                "load_balancing": "ROUND_ROBIN",
                "load_metric": None,
                "answer_503": None,
                "http2": False,
                "answers": {},
                "https_redirect_port": None,
                "authorized_hashes": [],
                "www_authenticate": None,
                "max_connections_per_ip": None,
                "retry_after": None,
                "health_check": None,
                "backend_tls": None,
                "max_body_size": None,
            },
        ),
        (
            {"type": "ADD_BACKEND", "cluster_id": "a", "backend_id": "b", "address": "[::1]:80"},
            {
                "cluster_id": "a",
                "backend_id": "b",
                "address": "[::1]:80",
                "sticky_id": None,
                "load_balancing_parameters": None,
                "backup": None,
            },
        ),
        (
            {
                "type": "REMOVE_BACKEND",
                "cluster_id": "a",
                "backend_id": "b",
                "address": "[0::1]:80",
            },
            {"cluster_id": "a", "backend_id": "b", "address": "[::1]:80"},
        ),
        (
            {"type": "ADD_TCP_LISTENER", "address": "127.0.0.1:8080"},
            {
                "address": "127.0.0.1:8080",
                "public_address": None,
                "expect_proxy": False,
                "front_timeout": 60,
                "back_timeout": 30,
                "connect_timeout": 3,
                "active": False,
            },
        ),
        (
            {"type": "UPDATE_TCP_LISTENER", "address": "127.0.0.1:8080", "back_timeout": 5},
            {
                "address": "127.0.0.1:8080",
                "public_address": None,
                "expect_proxy": None,
                "front_timeout": None,
                "back_timeout": 5,
                "connect_timeout": None,
            },
        ),
        (
            {"type": "REMOVE_LISTENER", "address": "127.0.0.1:80", "proxy": "TCP"},
            {"address": "127.0.0.1:80", "proxy": "TCP"},
        ),
        (
            {"type": "ACTIVATE_LISTENER", "address": "127.0.0.1:80", "proxy": "TCP"},
            {"address": "127.0.0.1:80", "proxy": "TCP", "from_scm": False},
        ),
        (
            {"type": "DEACTIVATE_LISTENER", "address": "127.0.0.1:80", "proxy": "HTTP"},
            {"address": "127.0.0.1:80", "proxy": "HTTP", "to_scm": False},
        ),
        (
            {"type": "ADD_TCP_FRONTEND", "cluster_id": "a", "address": "127.0.0.1:80"},
            {"cluster_id": "a", "address": "127.0.0.1:80", "hostname": None, "tags": {}},
        ),
        (
            {
                "type": "REMOVE_TCP_FRONTEND",
                "cluster_id": "a",
                "address": "127.0.0.1:80",
                "tags": {"k": "v"},
            },
            {"cluster_id": "a", "address": "127.0.0.1:80", "hostname": None, "tags": {"k": "v"}},
        ),
    ],
)
def test_defaults_are_filled(obj: dict[str, Any], expected_fields: dict[str, Any]) -> None:
    request = parse_request({"id": "r1", **obj})
    assert request == Request("r1", obj["type"], expected_fields)
    assert request.fields == expected_fields  # every field of the type is present


def test_every_request_type_is_covered_by_the_defaults_table() -> None:
    covered = {
        "STATUS",
        "SOFT_STOP",
        "HARD_STOP",
        "LIST_LISTENERS",
        "QUERY_CLUSTERS_HASHES",
        "SAVE_STATE",
        "LOAD_STATE",
        "QUERY_CLUSTER_BY_ID",
        "REMOVE_CLUSTER",
        "ADD_CLUSTER",
        "ADD_BACKEND",
        "REMOVE_BACKEND",
        "ADD_TCP_LISTENER",
        "UPDATE_TCP_LISTENER",
        "REMOVE_LISTENER",
        "ACTIVATE_LISTENER",
        "DEACTIVATE_LISTENER",
        "ADD_TCP_FRONTEND",
        "REMOVE_TCP_FRONTEND",
        # HTTP and runtime requests: their defaults are in test_command_http.py
        "ADD_HTTP_LISTENER",
        "UPDATE_HTTP_LISTENER",
        "ADD_HTTP_FRONTEND",
        "REMOVE_HTTP_FRONTEND",
        "QUERY_CLUSTERS_BY_DOMAIN",
        "QUERY_METRICS",
        "CONFIGURE_METRICS",
        "LOGGING",
        "SET_HEALTH_CHECK",
        "REMOVE_HEALTH_CHECK",
        "QUERY_HEALTH_CHECKS",
        "SET_MAX_CONNECTIONS_PER_IP",
        "QUERY_MAX_CONNECTIONS_PER_IP",
        # HTTPS and certificates: their defaults are in test_command_https.py
        "ADD_HTTPS_LISTENER",
        "UPDATE_HTTPS_LISTENER",
        "ADD_HTTPS_FRONTEND",
        "REMOVE_HTTPS_FRONTEND",
        "ADD_CERTIFICATE",
        "REPLACE_CERTIFICATE",
        "REMOVE_CERTIFICATE",
        "QUERY_CERTIFICATES_FROM_WORKERS",
        # the main process's own requests: their tests are in test_main_process.py
        "LIST_WORKERS",
        "LIST_FRONTENDS",
        "SUBSCRIBE_EVENTS",
        "RELOAD_CONFIGURATION",
        "UPGRADE_WORKERS",
    }
    assert set(REQUEST_SPECS) == covered


def test_null_optional_fields_take_their_default() -> None:
    request = parse_request(
        {
            "id": "r",
            "type": "ADD_CLUSTER",
            "cluster_id": "a",
            "sticky_session": None,
            "load_balancing": None,
        }
    )
    assert request["sticky_session"] is False
    assert request["load_balancing"] == "ROUND_ROBIN"


def test_given_values_are_kept() -> None:
    request = make_request(
        "r9",
        "ADD_CLUSTER",
        cluster_id="app",
        sticky_session=True,
        proxy_protocol="RELAY_HEADER",
        load_balancing="POWER_OF_TWO",
        load_metric="CONNECTION_TIME",
        answers={"503": "busy"},
        retry_after=0,
    )
    assert request.id == "r9"
    assert request.type == "ADD_CLUSTER"
    assert request["sticky_session"] is True
    assert request["proxy_protocol"] == "RELAY_HEADER"
    assert request["load_balancing"] == "POWER_OF_TWO"
    assert request["load_metric"] == "CONNECTION_TIME"
    assert request["answers"] == {"503": "busy"}
    assert request["retry_after"] == 0


def test_to_dict_is_the_wire_form_and_round_trips() -> None:
    request = parse_request(
        _backend(address="[0:0::1]:8000", load_balancing_parameters={"weight": 5})
    )
    wire = request.to_dict()
    assert wire == {
        "id": "r1",
        "type": "ADD_BACKEND",
        "cluster_id": "app",
        "backend_id": "app-0",
        "address": "[::1]:8000",
        "sticky_id": None,
        "load_balancing_parameters": {"weight": 5},
        "backup": None,
    }
    assert parse_request(json.loads(json.dumps(wire))) == request


def test_to_dict_and_defaults_do_not_share_mutable_state() -> None:
    first = make_request("a", "ADD_CLUSTER", cluster_id="x")
    second = make_request("b", "ADD_CLUSTER", cluster_id="y")
    first.fields["answers"]["503"] = "changed"
    assert second["answers"] == {}
    assert make_request("c", "ADD_CLUSTER", cluster_id="z")["answers"] == {}
    wire = second.to_dict()
    wire["answers"]["x"] = "y"
    assert second["answers"] == {}


def test_parse_request_does_not_alias_its_input() -> None:
    tags = {"k": "v"}
    request = make_request("r", "ADD_TCP_FRONTEND", cluster_id="a", address="1.2.3.4:1", tags=tags)
    tags["k"] = "changed"
    assert request["tags"] == {"k": "v"}


def test_requests_are_hashable_and_frozen() -> None:
    request = make_request("r", "STATUS")
    assert hash(request) == hash(make_request("r", "STATUS"))
    with pytest.raises(AttributeError):
        request.id = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def test_response_helpers() -> None:
    assert ok("r1") == {"id": "r1", "status": "OK", "message": "", "content": None}
    assert ok("r1", "done", {"a": 1}) == {
        "id": "r1",
        "status": "OK",
        "message": "done",
        "content": {"a": 1},
    }
    assert processing("r2", "working") == {
        "id": "r2",
        "status": "PROCESSING",
        "message": "working",
        "content": None,
    }
    assert failure("r3", "nope") == {
        "id": "r3",
        "status": "FAILURE",
        "message": "nope",
        "content": None,
    }


def test_event() -> None:
    assert event("BACKEND_DOWN", cluster_id="app", backend_id="app-0", address="1.2.3.4:1") == {
        "id": "EVENT",
        "status": "PROCESSING",
        "message": "",
        "content": {
            "type": "EVENT",
            "kind": "BACKEND_DOWN",
            "cluster_id": "app",
            "backend_id": "app-0",
            "address": "1.2.3.4:1",
        },
    }
    assert {"BACKEND_UP", "NO_AVAILABLE_BACKENDS", "REMOVED_BACKEND_HAS_NO_CONNECTIONS"} <= (
        EVENT_KINDS
    )
    with pytest.raises(CommandError, match="unknown event kind 'BACKEND_SAD'"):
        event("BACKEND_SAD")


@pytest.mark.parametrize(
    "response",
    [ok("a", "m", [1]), processing("b"), failure("c", "x"), event("BACKEND_UP", cluster_id="c")],
)
def test_parse_response_accepts_what_the_helpers_build(response: dict[str, Any]) -> None:
    assert parse_response(json.loads(json.dumps(response))) == response


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "a response must be a JSON object, not an array"),
        ({"status": "OK", "message": ""}, "missing field 'id' in response"),
        ({"id": "a", "message": ""}, "missing field 'status' in response"),
        ({"id": "a", "status": "OK"}, "missing field 'message' in response"),
        ({"id": 1, "status": "OK", "message": ""}, "field 'id' of a response must be a string"),
        (
            {"id": "a", "status": "MAYBE", "message": ""},
            "field 'status' must be one of OK, PROCESSING, FAILURE (got 'MAYBE')",
        ),
        ({"id": "a", "status": "OK", "message": "", "x": 1}, "unknown field 'x' in response"),
    ],
)
def test_parse_response_errors(obj: Any, message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_response(obj)
    assert str(info.value) == message


def test_parse_response_fills_missing_content() -> None:
    assert parse_response({"id": "a", "status": "OK", "message": ""})["content"] is None


def test_event_id_is_reserved_for_events():
    import pytest

    from pysozu.command import CommandError, parse_request

    with pytest.raises(CommandError, match="reserved"):
        parse_request({"id": "EVENT", "type": "STATUS"})
