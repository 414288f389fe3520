"""Tests for the HTTP and runtime request types of pysozu.command: defaults, each refusal with
its message, and the public field rules that pysozu.config reuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pysozu.command import (
    ANSWER_CODES,
    REQUEST_SPECS,
    CommandError,
    Request,
    check_answers,
    check_authorized_hash,
    check_header_value,
    check_log_filter,
    make_request,
    normalise_hostname,
    parse_request,
)
from pysozu.protocols.answers import ANSWER_STATUSES

HTTP_TYPES = {
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
}

FRONTEND_DEFAULTS: dict[str, Any] = {
    "cluster_id": None,
    "address": "127.0.0.1:80",
    "hostname": "example.com",
    "path": {"kind": "PREFIX", "value": ""},
    "method": None,
    "position": "TREE",
    "tags": {},
    "redirect": "FORWARD",
    "redirect_scheme": "USE_SAME",
    "redirect_template": None,
    "rewrite_host": None,
    "rewrite_path": None,
    "rewrite_port": None,
    "required_auth": False,
    "headers": [],
}

#: The HTTP/2 fields of an HTTP(S) listener: Sōzu's defaults (lib/src/protocol/mux/h2.rs), but
#: the HPACK table we advertise (4096, the protocol's) and pysozu's own window and frame size.
H2_DEFAULTS: dict[str, Any] = {
    "h2c": True,
    "h2_max_concurrent_streams": 100,
    "h2_initial_window_size": 65535,
    "h2_initial_connection_window": 1048576,
    "h2_max_frame_size": 16384,
    "h2_max_header_list_size": 65536,
    "h2_max_header_table_size": 4096,
    "h2_max_header_fields": 128,
    "h2_max_rst_stream_per_window": 100,
    "h2_max_ping_per_window": 100,
    "h2_max_settings_per_window": 50,
    "h2_max_empty_data_per_window": 100,
    "h2_max_window_update_stream0_per_window": 100,
    "h2_max_continuation_frames": 20,
    "h2_max_glitch_count": 100,
    "h2_max_rst_stream_lifetime": 10000,
    "h2_max_rst_stream_abusive_lifetime": 50,
    "h2_max_rst_stream_emitted_lifetime": 500,
    "h2_graceful_shutdown_deadline_seconds": 5,
}

# ---------------------------------------------------------------------------------------------
# Defaults: every field present, Sōzu's defaults (command/src/config.rs, command.proto)
# ---------------------------------------------------------------------------------------------

DEFAULTS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"type": "ADD_HTTP_LISTENER", "address": "0.0.0.0:8080"},
        {
            "address": "0.0.0.0:8080",
            "public_address": None,
            "expect_proxy": False,
            "sticky_name": "SOZUBALANCEID",
            "front_timeout": 60,
            "back_timeout": 30,
            "connect_timeout": 3,
            "request_timeout": 10,
            "answers": {},
            "sozu_id_header": "Sozu-Id",
            "elide_x_real_ip": False,
            "send_x_real_ip": False,
            "max_body_size": 0,
            **H2_DEFAULTS,
            "active": False,
        },
    ),
    (
        {"type": "UPDATE_HTTP_LISTENER", "address": "[0::1]:80", "request_timeout": 4},
        {
            "address": "[::1]:80",
            "public_address": None,
            "expect_proxy": None,
            "sticky_name": None,
            "front_timeout": None,
            "back_timeout": None,
            "connect_timeout": None,
            "request_timeout": 4,
            "answers": None,
            "sozu_id_header": None,
            "elide_x_real_ip": None,
            "send_x_real_ip": None,
            "max_body_size": None,
            **dict.fromkeys(H2_DEFAULTS),
        },
    ),
    (
        {"type": "ADD_HTTP_FRONTEND", "address": "127.0.0.1:80", "hostname": "example.com"},
        FRONTEND_DEFAULTS,
    ),
    (
        {
            "type": "REMOVE_HTTP_FRONTEND",
            "cluster_id": "app",
            "address": "127.0.0.1:80",
            "hostname": "Example.COM",
            "path": {"value": "/api"},
        },
        {
            **FRONTEND_DEFAULTS,
            "cluster_id": "app",
            "path": {"kind": "PREFIX", "value": "/api"},
        },
    ),
    (
        {"type": "QUERY_CLUSTERS_BY_DOMAIN", "hostname": "Example.com"},
        {"hostname": "example.com", "path": None},
    ),
    (
        {"type": "QUERY_METRICS"},
        {
            "list": False,
            "cluster_ids": [],
            "backend_ids": [],
            "metric_names": [],
            "no_clusters": False,
            "workers": False,
        },
    ),
    ({"type": "CONFIGURE_METRICS", "configuration": "CLEAR"}, {"configuration": "CLEAR"}),
    ({"type": "LOGGING", "filter": "debug"}, {"filter": "debug"}),
    (
        {"type": "SET_HEALTH_CHECK", "cluster_id": "app", "config": {"uri": "/health"}},
        {
            "cluster_id": "app",
            "config": {
                "uri": "/health",
                "interval": 10,
                "timeout": 5,
                "healthy_threshold": 3,
                "unhealthy_threshold": 3,
                "expected_status": 0,
            },
        },
    ),
    ({"type": "REMOVE_HEALTH_CHECK", "cluster_id": "app"}, {"cluster_id": "app"}),
    ({"type": "QUERY_HEALTH_CHECKS"}, {"cluster_id": None}),
    ({"type": "QUERY_HEALTH_CHECKS", "cluster_id": "app"}, {"cluster_id": "app"}),
    ({"type": "SET_MAX_CONNECTIONS_PER_IP", "limit": 0}, {"limit": 0}),
    ({"type": "QUERY_MAX_CONNECTIONS_PER_IP"}, {}),
]


@pytest.mark.parametrize(("obj", "expected"), DEFAULTS, ids=lambda v: v.get("type", ""))
def test_defaults_are_filled(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    request = parse_request({"id": "r1", **obj})
    assert request == Request("r1", obj["type"], expected)
    wire = json.loads(json.dumps(request.to_dict()))
    assert parse_request(wire) == request  # normalised values are fixed points


def test_every_new_type_has_a_defaults_row() -> None:
    assert {obj["type"] for obj, _ in DEFAULTS} == HTTP_TYPES
    assert set(REQUEST_SPECS) >= HTTP_TYPES


def test_cluster_http_fields_and_health_check_defaults() -> None:
    request = make_request(
        "r",
        "ADD_CLUSTER",
        cluster_id="app",
        answers={"503": "HTTP/1.1 503 Busy\r\n\r\n", "404": "file:///srv/404.http"},
        sticky_session=True,
        https_redirect=True,
        https_redirect_port=8443,
        authorized_hashes=["alice:" + "AB" * 32],
        www_authenticate="staff",
        max_connections_per_ip=4,
        retry_after=0,
        load_metric="REQUESTS",
        health_check={"uri": "/up", "expected_status": 204},
    )
    assert request["authorized_hashes"] == ["alice:" + "ab" * 32]  # hex lower-cased
    assert request["health_check"] == {
        "uri": "/up",
        "interval": 10,
        "timeout": 5,
        "healthy_threshold": 3,
        "unhealthy_threshold": 3,
        "expected_status": 204,
    }
    assert request["answers"]["404"] == "file:///srv/404.http"  # kept as written: no I/O


def test_full_http_frontend_is_kept() -> None:
    fields = {
        "cluster_id": "app",
        "address": "127.0.0.1:80",
        "hostname": "*.Example.com",
        "path": {"kind": "REGEX", "value": "^/api/v[0-9]+"},
        "method": "GET",
        "position": "PRE",
        "tags": {"team": "web"},
        "redirect": "PERMANENT_REDIRECT",
        "redirect_scheme": "USE_HTTPS",
        "redirect_template": "HTTP/1.1 308 Moved\r\nLocation: %REDIRECT_LOCATION\r\n\r\n",
        "rewrite_host": "$HOST[1].internal",
        "rewrite_path": "/v2$PATH[1]",
        "rewrite_port": 8443,
        "required_auth": True,
        "headers": [
            {"position": "REQUEST", "key": "X-Forwarded-Proto", "val": "https"},
            {"position": "RESPONSE", "key": "Server", "val": ""},
            {"position": "BOTH", "key": "X-Trace", "val": "a\tb"},
        ],
    }
    request = make_request("r", "ADD_HTTP_FRONTEND", **fields)
    assert request.fields == {**fields, "hostname": "*.example.com"}


# ---------------------------------------------------------------------------------------------
# Refusals, each with its message
# ---------------------------------------------------------------------------------------------


def front(**extra: Any) -> dict[str, Any]:
    return {
        "id": "r",
        "type": "ADD_HTTP_FRONTEND",
        "cluster_id": "app",
        "address": "127.0.0.1:80",
        "hostname": "example.com",
        **extra,
    }


def listener(**extra: Any) -> dict[str, Any]:
    return {"id": "r", "type": "ADD_HTTP_LISTENER", "address": "127.0.0.1:80", **extra}


def update(**extra: Any) -> dict[str, Any]:
    return {"id": "r", "type": "UPDATE_HTTP_LISTENER", "address": "127.0.0.1:80", **extra}


def health(**config: Any) -> dict[str, Any]:
    return {"id": "r", "type": "SET_HEALTH_CHECK", "cluster_id": "app", "config": config}


def cluster(**extra: Any) -> dict[str, Any]:
    return {"id": "r", "type": "ADD_CLUSTER", "cluster_id": "app", **extra}


ERRORS: list[tuple[str, dict[str, Any], str]] = [
    # listeners
    ("listener bad answer code", listener(answers={"200": "x"}),
     "field 'answers': no answer for status '200' (answers exist for 301, 302, 308, 400, 401, "
     "404, 408, 413, 414, 421, 429, 431, 501, 502, 503, 504, 505, 507)"),
    ("listener empty answer", listener(answers={"503": ""}),
     "field 'answers': the answer template for 503 must not be empty"),
    ("listener file answer without path", listener(answers={"404": "file://"}),
     "field 'answers': the answer template for 404 names no file (file://PATH)"),
    ("listener answers not strings", listener(answers={"503": 3}),
     "field 'answers' must be an object of strings"),
    ("listener bad sticky name", listener(sticky_name="my cookie"),
     "field 'sticky_name': cookie name 'my cookie' is not a token"),
    ("listener empty sticky name", listener(sticky_name=""),
     "field 'sticky_name': cookie name '' is not a token"),
    ("listener bad id header", listener(sozu_id_header="Sozu:Id"),
     "field 'sozu_id_header': header name 'Sozu:Id' is not a token"),
    ("listener bad request timeout", listener(request_timeout=-1),
     "field 'request_timeout' must be between 0 and 4294967295 (got -1)"),
    ("listener bad x-real-ip flag", listener(send_x_real_ip="yes"),
     "field 'send_x_real_ip' must be a boolean"),
    ("listener h2 knob out of range", listener(h2_max_frame_size=100),
     "field 'h2_max_frame_size': must be between 16384 and 16777215 (got 100)"),
    ("listener unknown h2 knob", listener(h2_stream_shrink_ratio=2),
     "unknown field 'h2_stream_shrink_ratio' for ADD_HTTP_LISTENER"),
    ("update bad answer code", update(answers={"999": "x"}),
     "field 'answers': no answer for status '999'"),
    ("update active", update(active=True), "unknown field 'active' for UPDATE_HTTP_LISTENER"),
    ("update missing address", {"id": "r", "type": "UPDATE_HTTP_LISTENER"},
     "missing field 'address' for UPDATE_HTTP_LISTENER"),
    # frontends: host names
    ("missing hostname", {k: v for k, v in front().items() if k != "hostname"},
     "missing field 'hostname' for ADD_HTTP_FRONTEND"),
    ("empty hostname", front(hostname=""), "field 'hostname': must not be empty"),
    ("hostname with space", front(hostname="exa mple.com"),
     "field 'hostname': host name 'exa mple.com' must not contain spaces or control characters"),
    ("hostname with CR", front(hostname="a.com\r\nX: y"),
     "must not contain spaces or control characters"),
    ("hostname with port", front(hostname="example.com:8080"),
     "field 'hostname': host name 'example.com:8080' must not contain a port"),
    ("hostname bad label", front(hostname="exa$mple.com"),
     "field 'hostname': 'exa$mple.com' is not a valid host name"),
    ("hostname empty label", front(hostname="a..com"), "'a..com' is not a valid host name"),
    ("hostname trailing dot", front(hostname="a.com."), "'a.com.' is not a valid host name"),
    ("hostname too long", front(hostname=("a" * 63 + ".") * 4 + "com"),
     "is not a valid host name"),
    ("hostname inner wildcard", front(hostname="www.*.com"),
     "a wildcard is only allowed as the whole first label"),
    ("hostname partial wildcard", front(hostname="*www.example.com"),
     "a wildcard is only allowed as the whole first label"),
    ("hostname unterminated regex", front(hostname="/[a-z]+.example.com"),
     "has an unterminated regular expression"),
    ("hostname regex does not compile", front(hostname="/(a/.example.com"),
     "field 'hostname': host name '/(a/.example.com': invalid regular expression '(a'"),
    ("hostname empty regex", front(hostname="//.example.com"), "has an empty regular expression"),
    # frontends: path, method, enums
    ("bad regex path", front(path={"kind": "REGEX", "value": "/api/(v1"}),
     "field 'path': invalid regular expression '/api/(v1': missing ), unterminated subpattern"),
    ("path with space", front(path={"value": "/a b"}),
     "field 'path': path '/a b' must not contain spaces or control characters"),
    ("bad path kind", front(path={"kind": "GLOB", "value": "/"}),
     "field 'path.kind' must be one of PREFIX, REGEX, EQUALS (got 'GLOB')"),
    ("path not an object", front(path="/api"), "field 'path' must be an object"),
    ("unknown path field", front(path={"value": "/", "type": "PREFIX"}),
     "unknown field 'path.type' for ADD_HTTP_FRONTEND"),
    ("bad method", front(method="GET POST"),
     "field 'method': method 'GET POST' is not a token"),
    ("empty method", front(method=""), "field 'method': method '' is not a token"),
    ("bad position", front(position="MIDDLE"),
     "field 'position' must be one of PRE, TREE, POST (got 'MIDDLE')"),
    ("bad redirect", front(redirect="MOVED"),
     "field 'redirect' must be one of FORWARD, PERMANENT, FOUND, PERMANENT_REDIRECT, "
     "UNAUTHORIZED (got 'MOVED')"),
    ("bad redirect scheme", front(redirect_scheme="https"),
     "field 'redirect_scheme' must be one of USE_SAME, USE_HTTP, USE_HTTPS (got 'https')"),
    ("empty cluster id", front(cluster_id=""), "field 'cluster_id' must not be empty"),
    ("rewrite host with CRLF", front(rewrite_host="a\r\nb"),
     "field 'rewrite_host': 'a\\r\\nb' must not contain CR, LF, NUL or other control characters"),
    ("rewrite path with NUL", front(rewrite_path="/a\x00"),
     "field 'rewrite_path': '/a\\x00' must not contain CR, LF, NUL"),
    ("rewrite port 0", front(rewrite_port=0),
     "field 'rewrite_port': must be a port between 1 and 65535 (got 0)"),
    ("rewrite port too big", front(rewrite_port=70000),
     "field 'rewrite_port': must be a port between 1 and 65535 (got 70000)"),
    ("required_auth not bool", front(required_auth=1), "field 'required_auth' must be a boolean"),
    ("tags not strings", front(tags={"a": 1}), "field 'tags' must be an object of strings"),
    # frontends: headers
    ("headers not a list", front(headers={"X": "y"}), "field 'headers' must be a list of objects"),
    ("header not an object", front(headers=["X: y"]), "field 'headers' must be a list of objects"),
    ("header missing position", front(headers=[{"key": "X", "val": "y"}]),
     "missing field 'headers[0].position' for ADD_HTTP_FRONTEND"),
    ("header missing val", front(headers=[{"position": "REQUEST", "key": "X"}]),
     "missing field 'headers[0].val' for ADD_HTTP_FRONTEND"),
    ("header unspecified position",
     front(headers=[{"position": "HEADER_POSITION_UNSPECIFIED", "key": "X", "val": ""}]),
     "field 'headers[0].position' must be one of REQUEST, RESPONSE, BOTH"),
    ("header key not a token",
     front(headers=[{"position": "BOTH", "key": "X", "val": "1"},
                    {"position": "BOTH", "key": "Bad Key", "val": "1"}]),
     "field 'headers[1].key': header name 'Bad Key' is not a token"),
    ("header key with colon", front(headers=[{"position": "BOTH", "key": "X:", "val": "1"}]),
     "header name 'X:' is not a token"),
    ("header empty key", front(headers=[{"position": "BOTH", "key": "", "val": "1"}]),
     "field 'headers[0].key': header name '' is not a token"),
    ("header value CRLF",
     front(headers=[{"position": "REQUEST", "key": "X", "val": "a\r\nInjected: 1"}]),
     "field 'headers[0].val': header value 'a\\r\\nInjected: 1' must not contain CR, LF, NUL"),
    ("header value LF", front(headers=[{"position": "REQUEST", "key": "X", "val": "a\nb"}]),
     "must not contain CR, LF, NUL or other control characters"),
    ("header value NUL", front(headers=[{"position": "REQUEST", "key": "X", "val": "a\x00"}]),
     "must not contain CR, LF, NUL or other control characters"),
    ("header value DEL", front(headers=[{"position": "REQUEST", "key": "X", "val": "a\x7f"}]),
     "must not contain CR, LF, NUL or other control characters"),
    ("header unknown field",
     front(headers=[{"position": "REQUEST", "key": "X", "val": "", "value": "y"}]),
     "unknown field 'headers[0].value' for ADD_HTTP_FRONTEND"),
    ("remove frontend bad hostname",
     {**front(hostname="a b"), "type": "REMOVE_HTTP_FRONTEND"},
     "field 'hostname': host name 'a b' must not contain spaces"),
    # clusters
    ("cluster bad answer code", cluster(answers={"500": "x"}),
     "field 'answers': no answer for status '500'"),
    ("cluster bad authorized hash", cluster(authorized_hashes=["alice:secret"]),
     "field 'authorized_hashes': credential 'alice:secret' must be USER:SHA256"),
    ("cluster hash without user", cluster(authorized_hashes=[":" + "a" * 64]),
     "credential ':aaaa"),
    ("cluster realm with quote", cluster(www_authenticate='a"b'),
     "field 'www_authenticate': realm 'a\"b' must not contain '\"' or '\\'"),
    ("cluster realm with CRLF", cluster(www_authenticate="a\r\nb"),
     "field 'www_authenticate': 'a\\r\\nb' must not contain CR, LF"),
    ("cluster redirect port 0", cluster(https_redirect_port=0),
     "field 'https_redirect_port': must be a port between 1 and 65535 (got 0)"),
    ("cluster health check without uri", cluster(health_check={}),
     "missing field 'health_check.uri' for ADD_CLUSTER"),
    ("cluster health check zero interval", cluster(health_check={"uri": "/", "interval": 0}),
     "field 'health_check.interval': must be greater than 0"),
    # health checks
    ("health check missing config", {"id": "r", "type": "SET_HEALTH_CHECK", "cluster_id": "a"},
     "missing field 'config' for SET_HEALTH_CHECK"),
    ("health check relative uri", health(uri="health"),
     "field 'config.uri': the probe URI must start with '/' (got 'health')"),
    ("health check uri CRLF", health(uri="/h\r\nHost: evil"),
     "field 'config.uri': the probe URI '/h\\r\\nHost: evil' must not contain spaces or control"),
    ("health check uri space", health(uri="/a b"), "must not contain spaces or control characters"),
    ("health check zero timeout", health(uri="/", timeout=0),
     "field 'config.timeout': must be greater than 0"),
    ("health check zero healthy", health(uri="/", healthy_threshold=0),
     "field 'config.healthy_threshold': must be greater than 0"),
    ("health check zero unhealthy", health(uri="/", unhealthy_threshold=0),
     "field 'config.unhealthy_threshold': must be greater than 0"),
    ("health check bad status", health(uri="/", expected_status=42),
     "field 'config.expected_status': must be 0 (any 2xx) or a status between 100 and 599"),
    ("health check status too big", health(uri="/", expected_status=600),
     "between 100 and 599 (got 600)"),
    ("health check unknown field", health(uri="/", rise=2),
     "unknown field 'config.rise' for SET_HEALTH_CHECK"),
    ("remove health check without cluster", {"id": "r", "type": "REMOVE_HEALTH_CHECK"},
     "missing field 'cluster_id' for REMOVE_HEALTH_CHECK"),
    ("query health checks empty id", {"id": "r", "type": "QUERY_HEALTH_CHECKS", "cluster_id": ""},
     "field 'cluster_id' must not be empty"),
    # limits, metrics, logging, queries
    ("limit missing", {"id": "r", "type": "SET_MAX_CONNECTIONS_PER_IP"},
     "missing field 'limit' for SET_MAX_CONNECTIONS_PER_IP"),
    ("limit negative", {"id": "r", "type": "SET_MAX_CONNECTIONS_PER_IP", "limit": -1},
     "field 'limit' must be between 0 and 18446744073709551615 (got -1)"),
    ("limit not an int", {"id": "r", "type": "SET_MAX_CONNECTIONS_PER_IP", "limit": "5"},
     "field 'limit' must be an integer"),
    ("limit sozu's name", {"id": "r", "type": "SET_MAX_CONNECTIONS_PER_IP", "value": 5},
     "unknown field 'value' for SET_MAX_CONNECTIONS_PER_IP"),
    ("metrics bad list", {"id": "r", "type": "QUERY_METRICS", "cluster_ids": "app"},
     "field 'cluster_ids' must be a list of strings"),
    ("metrics bad flag", {"id": "r", "type": "QUERY_METRICS", "list": "yes"},
     "field 'list' must be a boolean"),
    ("configure metrics missing", {"id": "r", "type": "CONFIGURE_METRICS"},
     "missing field 'configuration' for CONFIGURE_METRICS"),
    ("configure metrics bad", {"id": "r", "type": "CONFIGURE_METRICS", "configuration": "ON"},
     "field 'configuration' must be one of ENABLED, DISABLED, CLEAR (got 'ON')"),
    ("logging missing", {"id": "r", "type": "LOGGING"}, "missing field 'filter' for LOGGING"),
    ("logging empty", {"id": "r", "type": "LOGGING", "filter": " "},
     "field 'filter': must not be empty"),
    ("logging bad level", {"id": "r", "type": "LOGGING", "filter": "loud"},
     "field 'filter': invalid log level in 'loud' (choose from off, error, warn, info, debug, "
     "trace)"),
    ("logging bad module level", {"id": "r", "type": "LOGGING", "filter": "info,a=loud"},
     "invalid log level in 'a=loud'"),
    ("logging two equals", {"id": "r", "type": "LOGGING", "filter": "a=b=c"},
     "field 'filter': log directive 'a=b=c' has more than one '='"),
    ("logging no module", {"id": "r", "type": "LOGGING", "filter": "=info"},
     "field 'filter': log directive '=info' names no module"),
    ("logging two slashes", {"id": "r", "type": "LOGGING", "filter": "info/a/b"},
     "field 'filter': log filter 'info/a/b' has more than one '/'"),
    ("logging bad regex", {"id": "r", "type": "LOGGING", "filter": "info/(x"},
     "field 'filter': invalid regular expression '(x'"),
    ("logging only commas", {"id": "r", "type": "LOGGING", "filter": ",,"},
     "field 'filter': log filter ',,' names no level"),
    ("logging control char", {"id": "r", "type": "LOGGING", "filter": "info\n"},
     "must not contain control characters"),
    ("logging not a string", {"id": "r", "type": "LOGGING", "filter": 3},
     "field 'filter' must be a string"),
    ("domain missing", {"id": "r", "type": "QUERY_CLUSTERS_BY_DOMAIN"},
     "missing field 'hostname' for QUERY_CLUSTERS_BY_DOMAIN"),
    ("domain bad", {"id": "r", "type": "QUERY_CLUSTERS_BY_DOMAIN", "hostname": "a:80"},
     "field 'hostname': host name 'a:80' must not contain a port"),
    ("domain bad path", {"id": "r", "type": "QUERY_CLUSTERS_BY_DOMAIN", "hostname": "a",
                         "path": 1},
     "field 'path' must be a string"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_refusals(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_request(obj)
    assert message in str(info.value)


# ---------------------------------------------------------------------------------------------
# Field rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("*", "*"),
        ("*.Example.com", "*.example.com"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("my_host.internal", "my_host.internal"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("/[a-z]+/.Example.com", "/[a-z]+/.Example.com"),  # regex labels are kept verbatim
        ("/.*/", "/.*/"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalise_hostname(hostname: str, expected: str) -> None:
    assert normalise_hostname(hostname) == expected
    assert normalise_hostname(expected) == expected  # a fixed point


def test_answer_codes_are_sozus_default_answers_and_the_parsers() -> None:
    assert ANSWER_CODES == (
        "301", "302", "308", "400", "401", "404", "408", "413", "414", "421", "429", "431",
        "501", "502", "503", "504", "505", "507",
    )  # fmt: skip
    assert tuple(str(s) for s in ANSWER_STATUSES) == ANSWER_CODES  # every template overridable
    assert check_answers({code: "x" for code in ANSWER_CODES}) == {c: "x" for c in ANSWER_CODES}
    assert check_answers({"503": ""}, allow_empty=True) == {"503": ""}


def test_update_answers_may_be_empty_to_keep_the_current_one() -> None:
    request = make_request("r", "UPDATE_HTTP_LISTENER", address="1.2.3.4:1", answers={"503": ""})
    assert request["answers"] == {"503": ""}


@pytest.mark.parametrize(
    "spec",
    [
        "info",
        "DEBUG",
        "off",
        "warn,pysozu.worker=debug",
        "pysozu.http=",
        "trace/access",
        "error,,",
        "/only-a-regex",
    ],
)
def test_log_filters(spec: str) -> None:
    assert check_log_filter(spec) == spec
    assert make_request("r", "LOGGING", filter=spec)["filter"] == spec


def test_header_value_allows_tab_and_text() -> None:
    assert check_header_value("a\tb; q=1, ü") == "a\tb; q=1, ü"
    assert check_header_value("") == ""  # empty: delete the header


def test_authorized_hash_normalises_hex() -> None:
    assert check_authorized_hash("bob:" + "F" * 64) == "bob:" + "f" * 64
    with pytest.raises(CommandError, match="must be USER:SHA256"):
        check_authorized_hash("bob:" + "f" * 63)


def test_frontends_differing_only_in_hostname_case_are_the_same() -> None:
    a = make_request("r", "ADD_HTTP_FRONTEND", address="1.2.3.4:80", hostname="A.example")
    b = make_request("r", "ADD_HTTP_FRONTEND", address="1.2.3.4:80", hostname="a.EXAMPLE")
    assert a == b
