"""The command line's HTTP and runtime verbs: argument -> request mapping, usage errors and
rendering, all without a running proxy (``request_for`` builds what a verb would send)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pysozu.cli import CliError, _cluster_lines, _listener_lines, request_for
from pysozu.command import make_request

L = "127.0.0.1:8080"

MAPPINGS: list[tuple[list[str], str, dict[str, Any]]] = [
    # listeners
    (["listener", "add", L], "ADD_TCP_LISTENER", {"address": L, "active": True}),
    (["listener", "add", L, "--http"], "ADD_HTTP_LISTENER", {"address": L, "active": True}),
    (["listener", "add", L, "--protocol", "HTTP", "--inactive"], "ADD_HTTP_LISTENER",
     {"address": L, "active": False}),
    (["listener", "add", L, "--http", "--sticky-name", "LB", "--request-timeout", "4",
      "--front-timeout", "9", "--answer", "503=HTTP/1.1 503 Busy", "--answer", "404=a=b",
      "--sozu-id-header", "X-Id", "--elide-x-real-ip", "--send-x-real-ip", "--expect-proxy",
      "--public-address", "1.2.3.4:80"],
     "ADD_HTTP_LISTENER",
     {"address": L, "active": True, "sticky_name": "LB", "request_timeout": 4,
      "front_timeout": 9, "answers": {"503": "HTTP/1.1 503 Busy", "404": "a=b"},
      "sozu_id_header": "X-Id", "elide_x_real_ip": True, "send_x_real_ip": True,
      "expect_proxy": True, "public_address": "1.2.3.4:80"}),
    (["listener", "update", L, "--http", "--no-send-x-real-ip", "--answer", "503="],
     "UPDATE_HTTP_LISTENER", {"address": L, "send_x_real_ip": False, "answers": {"503": ""}}),
    (["listener", "update", L, "--http", "--max-body-size", "1024"],
     "UPDATE_HTTP_LISTENER", {"address": L, "max_body_size": 1024}),
    (["listener", "update", L, "--back-timeout", "2"], "UPDATE_TCP_LISTENER",
     {"address": L, "back_timeout": 2}),
    (["listener", "remove", L, "--http"], "REMOVE_LISTENER", {"address": L, "proxy": "HTTP"}),
    (["listener", "remove", L], "REMOVE_LISTENER", {"address": L, "proxy": "TCP"}),
    (["listener", "activate", L, "--protocol", "http"], "ACTIVATE_LISTENER",
     {"address": L, "proxy": "HTTP"}),
    (["listener", "deactivate", L, "--http"], "DEACTIVATE_LISTENER",
     {"address": L, "proxy": "HTTP"}),
    (["listener", "list"], "LIST_LISTENERS", {}),
    # frontends
    (["frontend", "add", "app", L, "--tag", "a=b"], "ADD_TCP_FRONTEND",
     {"cluster_id": "app", "address": L, "tags": {"a": "b"}}),
    (["frontend", "remove", "app", L], "REMOVE_TCP_FRONTEND", {"cluster_id": "app", "address": L}),
    # SNI passthrough: a TCP frontend with a host name
    (["frontend", "add", "app", L, "--hostname", "a.test"], "ADD_TCP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "a.test", "tags": {}}),
    (["frontend", "add", "app", L, "--hostname", "*.example.com", "--tag", "k=v"],
     "ADD_TCP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "*.example.com", "tags": {"k": "v"}}),
    (["frontend", "remove", "app", L, "--hostname", "a.test"], "REMOVE_TCP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "a.test"}),
    (["frontend", "add", "app", L, "--http", "--hostname", "example.com"], "ADD_HTTP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "example.com",
      "path": {"kind": "PREFIX", "value": ""}, "tags": {}}),
    (["frontend", "add", "app", L, "--http", "--hostname", "*.example.com", "--path", "^/v1",
      "--path-type", "regex", "--method", "GET", "--position", "pre", "--tag", "t=1",
      "--redirect", "permanent-redirect", "--redirect-scheme", "use-https",
      "--redirect-template", "T", "--rewrite-host", "h", "--rewrite-path", "/p",
      "--rewrite-port", "8443", "--required-auth", "--header", "request:X-A=1",
      "--header", "RESPONSE:Server=", "--header", "both:X-B=a:b=c"],
     "ADD_HTTP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "*.example.com",
      "path": {"kind": "REGEX", "value": "^/v1"}, "method": "GET", "position": "PRE",
      "tags": {"t": "1"}, "redirect": "PERMANENT_REDIRECT", "redirect_scheme": "USE_HTTPS",
      "redirect_template": "T", "rewrite_host": "h", "rewrite_path": "/p", "rewrite_port": 8443,
      "required_auth": True,
      "headers": [{"position": "REQUEST", "key": "X-A", "val": "1"},
                  {"position": "RESPONSE", "key": "Server", "val": ""},
                  {"position": "BOTH", "key": "X-B", "val": "a:b=c"}]}),
    (["frontend", "add", "-", L, "--http", "--hostname", "admin.test", "--redirect",
      "unauthorized"], "ADD_HTTP_FRONTEND",
     {"address": L, "hostname": "admin.test", "path": {"kind": "PREFIX", "value": ""},
      "tags": {}, "redirect": "UNAUTHORIZED"}),
    (["frontend", "remove", "app", L, "--http", "--hostname", "a.test", "--path", "/x",
      "--path-type", "equals", "--method", "POST", "--position", "post"],
     "REMOVE_HTTP_FRONTEND",
     {"cluster_id": "app", "address": L, "hostname": "a.test",
      "path": {"kind": "EQUALS", "value": "/x"}, "method": "POST", "position": "POST"}),
    (["frontend", "remove", "-", L, "--http", "--hostname", "a.test"], "REMOVE_HTTP_FRONTEND",
     {"address": L, "hostname": "a.test", "path": {"kind": "PREFIX", "value": ""}}),
    # clusters
    (["cluster", "add", "web", "--https-redirect", "--https-redirect-port", "8443", "--http2",
      "--answer", "503=busy", "--authorized-hash", "u:" + "a" * 64, "--www-authenticate", "R",
      "--max-connections-per-ip", "3", "--retry-after", "0", "--sticky-session",
      "--max-body-size", "0"],
     "ADD_CLUSTER",
     {"cluster_id": "web", "https_redirect": True, "https_redirect_port": 8443, "http2": True,
      "answers": {"503": "busy"}, "authorized_hashes": ["u:" + "a" * 64],
      "www_authenticate": "R", "max_connections_per_ip": 3, "retry_after": 0,
      "sticky_session": True, "max_body_size": 0}),
    (["cluster", "show", "web"], "QUERY_CLUSTER_BY_ID", {"cluster_id": "web"}),
    # queries, metrics, logging, health checks, limits
    (["query", "domain", "example.com"], "QUERY_CLUSTERS_BY_DOMAIN", {"hostname": "example.com"}),
    (["query", "domain", "example.com", "--path", "/api"], "QUERY_CLUSTERS_BY_DOMAIN",
     {"hostname": "example.com", "path": "/api"}),
    (["metrics"], "QUERY_METRICS",
     {"list": False, "cluster_ids": [], "backend_ids": [], "metric_names": [],
      "no_clusters": False, "workers": False}),
    (["metrics", "--cluster", "a", "--cluster", "b", "--backend", "a-0", "--metric", "bytes_in",
      "--list", "--no-clusters", "--workers"], "QUERY_METRICS",
     {"list": True, "cluster_ids": ["a", "b"], "backend_ids": ["a-0"],
      "metric_names": ["bytes_in"], "no_clusters": True, "workers": True}),
    (["metrics", "--enable"], "CONFIGURE_METRICS", {"configuration": "ENABLED"}),
    (["metrics", "--disable"], "CONFIGURE_METRICS", {"configuration": "DISABLED"}),
    (["metrics", "--clear"], "CONFIGURE_METRICS", {"configuration": "CLEAR"}),
    (["logging", "debug"], "LOGGING", {"filter": "debug"}),
    (["logging", "info,pysozu.worker=trace"], "LOGGING", {"filter": "info,pysozu.worker=trace"}),
    (["health-check", "set", "app", "--uri", "/health"], "SET_HEALTH_CHECK",
     {"cluster_id": "app", "config": {"uri": "/health"}}),
    (["health-check", "set", "app", "--uri", "/up", "--interval", "2", "--probe-timeout", "1",
      "--healthy-threshold", "4", "--unhealthy-threshold", "5", "--expected-status", "204"],
     "SET_HEALTH_CHECK",
     {"cluster_id": "app", "config": {"uri": "/up", "interval": 2, "timeout": 1,
                                      "healthy_threshold": 4, "unhealthy_threshold": 5,
                                      "expected_status": 204}}),
    (["health-check", "remove", "app"], "REMOVE_HEALTH_CHECK", {"cluster_id": "app"}),
    (["health-check", "list"], "QUERY_HEALTH_CHECKS", {}),
    (["health-check", "list", "app"], "QUERY_HEALTH_CHECKS", {"cluster_id": "app"}),
    (["max-connections-per-ip", "0"], "SET_MAX_CONNECTIONS_PER_IP", {"limit": 0}),
    (["max-connections-per-ip"], "QUERY_MAX_CONNECTIONS_PER_IP", {}),
    # connection options may come anywhere; they never reach the request
    (["-s", "/tmp/x.sock", "--json", "logging", "warn", "--timeout", "3"], "LOGGING",
     {"filter": "warn"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "request_type", "fields"), MAPPINGS, ids=[" ".join(m[0][:3]) for m in MAPPINGS]
)
def test_arguments_map_to_requests(
    argv: list[str], request_type: str, fields: dict[str, Any]
) -> None:
    assert request_for(argv) == (request_type, fields)
    make_request("cli", request_type, **fields)  # and the worker would accept its shape


def test_relative_answer_files_are_sent_absolute(tmp_path: Any) -> None:
    _, fields = request_for(["listener", "add", L, "--http", "--answer", "404=file://a/404.http"])
    assert fields["answers"] == {"404": "file://" + os.path.abspath("a/404.http")}
    _, fields = request_for(["cluster", "add", "c", "--answer", "503=file:///srv/503.http"])
    assert fields["answers"] == {"503": "file:///srv/503.http"}


USAGE_ERRORS: list[tuple[list[str], str]] = [
    (["listener", "add", L, "--sticky-name", "x"], "--sticky-name needs --protocol http"),
    (["listener", "add", L, "--answer", "503=x"], "--answer needs --protocol http"),
    (["listener", "update", L, "--request-timeout", "1"], "--request-timeout needs --protocol"),
    (["listener", "update", L, "--http"], "nothing to update"),
    (["listener", "add", L, "--protocol", "udp"], "invalid choice 'udp'"),
    (["listener", "add", L, "--http", "--protocol", "tcp"], "not allowed with argument"),
    (["listener", "add", L, "--http", "--answer", "503"], "an answer is CODE=TEMPLATE"),
    (["frontend", "add", "app", L, "--method", "GET"], "--method needs --protocol http"),
    (["frontend", "add", "app", L, "--header", "request:X=1"], "--header needs --protocol http"),
    (["frontend", "add", "app", L, "--required-auth"], "--required-auth needs --protocol http"),
    (["frontend", "remove", "app", L, "--path", "/"], "--path needs --protocol http"),
    (["frontend", "add", "app", L, "--http"], "--hostname is required for an HTTP frontend"),
    (["frontend", "add", "-", L], "a TCP frontend needs a cluster"),
    (["frontend", "add", "app", L, "--http", "--hostname", "a", "--header", "X=1"],
     "a header edit is POSITION:KEY=VALUE"),
    (["frontend", "add", "app", L, "--http", "--hostname", "a", "--header", "top:X=1"],
     "a header edit is POSITION:KEY=VALUE"),
    (["frontend", "add", "app", L, "--http", "--hostname", "a", "--path-type", "glob"],
     "invalid choice 'glob'"),
    (["frontend", "add", "app", L, "--http", "--hostname", "a", "--redirect", "moved"],
     "invalid choice 'moved'"),
    (["frontend", "remove", "app", L, "--http", "--hostname", "a", "--redirect", "found"],
     "unrecognized arguments: --redirect"),
    (["metrics", "--clear", "--cluster", "a"], "take no query option"),
    (["metrics", "--enable", "--disable"], "not allowed with argument"),
    (["logging"], "the following arguments are required: LEVEL"),
    (["health-check", "set", "app"], "the following arguments are required: --uri"),
    (["health-check", "set", "app", "--uri", "/", "--interval", "-1"], "must not be negative"),
    (["max-connections-per-ip", "-3"], "must not be negative"),
    (["query", "domain"], "the following arguments are required: HOSTNAME"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"), USAGE_ERRORS, ids=[" ".join(u[0]) for u in USAGE_ERRORS]
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        request_for(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: pysozu" in err
    assert message in err


def test_verbs_without_one_request() -> None:
    for argv in (["state", "list"], ["stop"], ["status"]):
        with pytest.raises(CliError, match="does not send one request"):
            request_for(argv)


def test_values_the_worker_checks_are_passed_through() -> None:
    """The CLI does not duplicate the command layer's rules: the worker's FAILURE says why."""
    request_type, fields = request_for(
        ["frontend", "add", "app", L, "--http", "--hostname", "bad host"]
    )
    with pytest.raises(ValueError, match="must not contain spaces"):
        make_request("cli", request_type, **fields)


def test_rendering_of_http_listeners_and_clusters() -> None:
    listeners = {
        "http_listeners": {
            L: {
                "active": True,
                "front_timeout": 60,
                "back_timeout": 30,
                "connect_timeout": 3,
                "request_timeout": 10,
                "sticky_name": "LB",
                "answers": {"503": "x", "404": "y"},
            }
        },
        "tcp_listeners": {},
    }
    lines = _listener_lines(listeners)
    assert lines == [
        "HTTP listeners (1):",
        f"  {L}  active, timeouts front 60s, back 30s, connect 3s, request 10s, "
        "sticky cookie LB, custom answers 404 503",
        "TCP listeners (0):",
    ]
    front = make_request(
        "r",
        "ADD_HTTP_FRONTEND",
        cluster_id="web",
        address=L,
        hostname="example.com",
        path={"kind": "EQUALS", "value": "/x"},
        method="GET",
        position="PRE",
        redirect="PERMANENT",
        required_auth=True,
        headers=[{"position": "REQUEST", "key": "X", "val": ""}],
        tags={"k": "v"},
    ).fields
    plain = make_request("r", "ADD_HTTP_FRONTEND", cluster_id="web", address=L, hostname="a.test")
    config = make_request(
        "r", "ADD_CLUSTER", cluster_id="web", https_redirect=True, health_check={"uri": "/h"}
    ).fields
    lines = _cluster_lines(
        "web", {"configuration": config, "http_frontends": [front, plain.fields]}, None
    )
    assert lines == [
        "cluster web: ROUND_ROBIN, redirects to HTTPS",
        "  health check /h every 10s (timeout 5s)",
        f"  http frontend example.com path equals /x on {L}, method GET, position PRE, "
        "redirect PERMANENT, basic auth, 1 header edit(s), k=v",
        f"  http frontend a.test on {L}",
        "  no backend",
    ]
