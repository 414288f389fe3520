"""HTTP listeners, clusters and frontends in the TOML configuration (Sōzu's layout), with
errors that name the key and its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pysozu.command import Request, parse_request
from pysozu.config import ConfigError, load_config, parse_config
from pysozu.state import ConfigState
from tests.top.test_command_http import H2_DEFAULTS

HTTP_STYLE = """
front_timeout = 20
request_timeout = 7

[[listeners]]
protocol = "http"
address = "0.0.0.0:8080"
sticky_name = "LB"
sozu_id_header = "X-Edge-Id"
send_x_real_ip = true
max_body_size = 1048576
answers = { "503" = "HTTP/1.1 503 Busy\\r\\n\\r\\n", "404" = "" }

[[listeners]]
protocol = "tcp"
address = "0.0.0.0:9000"

[clusters.web]
protocol = "http"
load_balancing = "least_loaded"
load_metric = "requests"
sticky_session = true
https_redirect = true
https_redirect_port = 8443
http2 = true
authorized_hashes = ["alice:ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"]
www_authenticate = "staff"
max_connections_per_ip = 10
retry_after = 5
max_body_size = 0
answers = { "502" = "bad gateway" }
backends = [{ address = "127.0.0.1:4000" }]

[clusters.web.health_check]
uri = "/health"
interval = 2
expected_status = 204

[[clusters.web.frontends]]
address = "0.0.0.0:8080"
hostname = "Example.com"

[[clusters.web.frontends]]
address = "0.0.0.0:8080"
hostname = "example.com"
path = "/api"
path_type = "regex"
method = "POST"
position = "pre"
tags = { team = "api" }

[[clusters.web.frontends]]
address = "0.0.0.0:8081"
hostname = "*.example.com"
redirect = "permanent-redirect"
redirect_scheme = "use-https"
redirect_template = "HTTP/1.1 308 Moved\\r\\nLocation: %REDIRECT_LOCATION\\r\\n\\r\\n"
rewrite_host = "$HOST[1].internal"
rewrite_path = "/v2$PATH[1]"
rewrite_port = 8443
required_auth = true

[[clusters.web.frontends.headers]]
position = "request"
key = "X-Forwarded-Proto"
value = "https"

[[clusters.web.frontends.headers]]
position = "Response"
key = "Server"
value = ""

[clusters.raw]
protocol = "tcp"
frontends = [{ address = "0.0.0.0:9000" }]
health_check = { uri = "/" }
"""


def by_type(requests: list[Request], request_type: str) -> list[Request]:
    return [r for r in requests if r.type == request_type]


def test_http_style_file() -> None:
    config = parse_config(HTTP_STYLE)
    kinds = [
        (r.type, r.fields.get("cluster_id") or r.fields.get("address")) for r in config.requests
    ]
    assert kinds == [
        ("ADD_HTTP_LISTENER", "0.0.0.0:8080"),
        ("ADD_TCP_LISTENER", "0.0.0.0:9000"),
        ("ADD_HTTP_LISTENER", "0.0.0.0:8081"),  # a default listener for a frontend
        ("ADD_CLUSTER", "web"),
        ("ADD_HTTP_FRONTEND", "web"),
        ("ADD_HTTP_FRONTEND", "web"),
        ("ADD_HTTP_FRONTEND", "web"),
        ("ADD_BACKEND", "web"),
        ("ADD_CLUSTER", "raw"),
        ("ADD_TCP_FRONTEND", "raw"),
        ("ACTIVATE_LISTENER", "0.0.0.0:8080"),
        ("ACTIVATE_LISTENER", "0.0.0.0:9000"),
        ("ACTIVATE_LISTENER", "0.0.0.0:8081"),
    ]  # fmt: skip
    listener, tcp, default = config.requests[:3]
    assert listener.fields == {
        "address": "0.0.0.0:8080",
        "public_address": None,
        "expect_proxy": False,
        "sticky_name": "LB",
        "front_timeout": 20,  # the server-wide values
        "back_timeout": 30,
        "connect_timeout": 3,
        "request_timeout": 7,
        "answers": {"503": "HTTP/1.1 503 Busy\r\n\r\n"},  # an empty template is skipped
        "sozu_id_header": "X-Edge-Id",
        "elide_x_real_ip": False,
        "send_x_real_ip": True,
        "max_body_size": 1048576,
        **H2_DEFAULTS,
        "active": False,
    }
    assert "request_timeout" not in tcp.fields
    assert default.fields["request_timeout"] == 7
    assert default.fields["front_timeout"] == 20

    web = by_type(config.requests, "ADD_CLUSTER")[0]
    assert web["load_balancing"] == "LEAST_LOADED"
    assert web["load_metric"] == "REQUESTS"
    assert web["proxy_protocol"] is None
    assert web["answers"] == {"502": "bad gateway"}
    assert web["max_body_size"] == 0  # unlimited for this cluster, whatever the listener says
    assert default.fields["max_body_size"] == 0  # a default listener has no limit
    assert web["authorized_hashes"] == ["alice:" + "ab" * 32]
    assert (web["https_redirect"], web["https_redirect_port"], web["http2"]) == (True, 8443, True)
    assert (web["www_authenticate"], web["max_connections_per_ip"], web["retry_after"]) == (
        "staff",
        10,
        5,
    )
    assert web["health_check"] == {
        "uri": "/health",
        "interval": 2,
        "timeout": 5,
        "healthy_threshold": 3,
        "unhealthy_threshold": 3,
        "expected_status": 204,
    }
    raw = by_type(config.requests, "ADD_CLUSTER")[1]
    assert raw["health_check"]["uri"] == "/"

    first, second, third = by_type(config.requests, "ADD_HTTP_FRONTEND")
    assert first["hostname"] == "example.com"
    assert first["path"] == {"kind": "PREFIX", "value": ""}
    assert (first["method"], first["position"], first["redirect"]) == (None, "TREE", "FORWARD")
    assert second["path"] == {"kind": "REGEX", "value": "/api"}
    assert (second["method"], second["position"], second["tags"]) == (
        "POST",
        "PRE",
        {"team": "api"},
    )
    assert third.fields == {
        "cluster_id": "web",
        "address": "0.0.0.0:8081",
        "hostname": "*.example.com",
        "path": {"kind": "PREFIX", "value": ""},
        "method": None,
        "position": "TREE",
        "tags": {},
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
        ],
    }
    assert by_type(config.requests, "ACTIVATE_LISTENER")[0]["proxy"] == "HTTP"
    state = ConfigState.from_requests(config.requests)
    assert all(listener["active"] for listener in state.http_listeners.values())
    infos = state.query_clusters_by_domain("example.com")
    assert [info["configuration"]["cluster_id"] for info in infos] == ["web"]
    for request in config.requests:  # valid wire requests, normalised already
        assert parse_request(request.to_dict()) == request


def test_reload_diff_between_http_configs() -> None:
    old = ConfigState.from_requests(parse_config(HTTP_STYLE).requests)
    changed = HTTP_STYLE.replace("interval = 2", "interval = 3").replace('"/api"', '"/api2"')
    new = ConfigState.from_requests(parse_config(changed).requests)
    diff = old.diff(new)
    assert [r.type for r in diff] == [
        "REMOVE_HTTP_FRONTEND",
        "ADD_CLUSTER",
        "ADD_HTTP_FRONTEND",
    ]
    result = old.copy()
    for request in diff:
        result.apply(request)
    assert result == new


def test_answer_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "404.http").write_bytes(b"HTTP/1.1 404 Nope\r\n\r\n")
    (tmp_path / "503.http").write_bytes(b"HTTP/1.1 503 Later\r\n\r\n")
    absolute = tmp_path / "502.http"
    absolute.write_bytes(b"HTTP/1.1 502 Broken\r\n\r\n")
    (tmp_path / "legacy.http").write_bytes(b"HTTP/1.1 400 Legacy\r\n\r\n")
    path = tmp_path / "pysozu.toml"
    path.write_text(
        f"""
[[listeners]]
protocol = "http"
address = "127.0.0.1:8080"
answer_400 = "legacy.http"
answer_404 = "legacy.http"
answers = {{ "404" = "file://answers/404.http", "502" = "file://{absolute}" }}

[clusters.app]
protocol = "http"
answer_503 = "503.http"
answers = {{ "503" = "file://503.http" }}
"""
    )
    config = load_config(path)
    listener, cluster = config.requests[0], config.requests[1]
    assert listener["answers"] == {
        "400": "HTTP/1.1 400 Legacy\r\n\r\n",
        "404": "HTTP/1.1 404 Nope\r\n\r\n",  # the answers table wins over answer_404
        "502": "HTTP/1.1 502 Broken\r\n\r\n",
    }
    assert cluster["answers"] == {"503": "HTTP/1.1 503 Later\r\n\r\n"}
    assert cluster["answer_503"] == "HTTP/1.1 503 Later\r\n\r\n"


def test_http_frontend_on_a_known_listener_gets_no_default_one() -> None:
    config = parse_config(
        '[[listeners]]\nprotocol = "http"\naddress = "127.0.0.1:1"\nexpect_proxy = true\n'
        'public_address = "1.2.3.4:80"\n'
        '[clusters.a]\nprotocol = "http"\n'
        'frontends = [{ address = "127.0.0.1:1", hostname = "a" }, '
        '{ address = "127.0.0.1:1", hostname = "b" }]\n'
    )
    assert [r.type for r in config.requests] == [
        "ADD_HTTP_LISTENER",
        "ADD_CLUSTER",
        "ADD_HTTP_FRONTEND",
        "ADD_HTTP_FRONTEND",
        "ACTIVATE_LISTENER",
    ]
    # expect_proxy with public_address is fine on HTTP (only the TCP proxy refuses it)
    assert config.requests[0]["public_address"] == "1.2.3.4:80"


def test_two_clusters_may_share_a_host_with_different_paths() -> None:
    config = parse_config(
        '[clusters.a]\nprotocol = "http"\nfrontends = [{ address = "127.0.0.1:1", '
        'hostname = "x.test", path = "/a" }]\n'
        '[clusters.b]\nprotocol = "http"\nfrontends = [{ address = "127.0.0.1:1", '
        'hostname = "x.test", path = "/a", path_type = "EQUALS" }]\n'
    )
    assert len(by_type(config.requests, "ADD_HTTP_FRONTEND")) == 2
    assert len(by_type(config.requests, "ADD_HTTP_LISTENER")) == 1


# ---------------------------------------------------------------------------------------------
# Errors: key and line
# ---------------------------------------------------------------------------------------------

HL = '[[listeners]]\nprotocol = "http"\naddress = "127.0.0.1:1"\n'  # lines 1-3
HC = '[clusters.app]\nprotocol = "http"\n'  # lines 1-2


def fe(extra: str) -> str:
    """An http cluster whose only frontend, on line 3, has ``extra`` keys."""
    return HC + f'frontends = [{{ address = "127.0.0.1:1", hostname = "a.test"{extra} }}]\n'


ERRORS: list[tuple[str, str, str, int, str]] = [
    # listeners
    ("https key on http listener", HL + 'certificate = "c.pem"\n', "listeners[0].certificate", 4,
     "only valid for https listeners"),
    ("unknown http listener key", HL + "colour = 1\n", "listeners[0].colour", 4,
     "unknown key for an http listener"),
    ("unknown h2 knob on http listener", HL + "h2_stream_idle_timeout_seconds = 10\n",
     "listeners[0].h2_stream_idle_timeout_seconds", 4, "unknown key for an http listener"),
    ("bad sticky name", HL + 'sticky_name = "a b"\n', "listeners[0].sticky_name", 4,
     "cookie name 'a b' is not a token"),
    ("bad id header", HL + 'sozu_id_header = "X:Id"\n', "listeners[0].sozu_id_header", 4,
     "header name 'X:Id' is not a token"),
    ("bad request timeout", HL + "request_timeout = -1\n", "listeners[0].request_timeout", 4,
     "must be between 0 and 4294967295"),
    ("bad real ip flag", HL + 'elide_x_real_ip = "yes"\n', "listeners[0].elide_x_real_ip", 4,
     "must be a boolean"),
    ("answers not a table", HL + 'answers = "x"\n', "listeners[0].answers", 4,
     "must be a table of strings"),
    ("answer not a string", HL + "[listeners.answers]\n503 = 1\n", "listeners[0].answers.503", 5,
     "must be a string"),
    ("unknown answer code", HL + '\n[listeners.answers]\n"200" = "ok"\n',
     "listeners[0].answers.200", 6, "no answer for status '200'"),
    ("missing answer file", HL + 'answers = { "404" = "file:///nonexistent/404.http" }\n',
     "listeners[0].answers.404", 4,
     "cannot read the answer template /nonexistent/404.http: No such file or directory"),
    ("answer file without path", HL + 'answers = { "404" = "file://" }\n',
     "listeners[0].answers.404", 4, "names no file"),
    ("missing legacy answer file", HL + 'answer_503 = "/nonexistent/503.http"\n',
     "listeners[0].answer_503", 4, "cannot read the answer template /nonexistent/503.http"),
    ("legacy answer on tcp", '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:1"\n'
     'answer_404 = "x"\n', "listeners[0].answer_404", 4, "only valid for http listeners"),
    ("http listener without address", '[[listeners]]\nprotocol = "http"\n', "listeners[0]", 1,
     "missing key 'address' for a listener"),
    ("duplicate across protocols",
     HL + '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:1"\n', "listeners[1].address", 6,
     "another listener already uses 127.0.0.1:1"),
    # clusters
    ("proxy protocol on http cluster", HC + "send_proxy = true\n", "clusters.app.send_proxy", 3,
     "only valid for tcp clusters"),
    ("unknown http cluster key", HC + "colour = 1\n", "clusters.app.colour", 3,
     "unknown key for an http cluster"),
    ("bad https_redirect_port", HC + "https_redirect_port = 0\n",
     "clusters.app.https_redirect_port", 3, "must be a port between 1 and 65535 (got 0)"),
    ("bad authorized hash", HC + 'authorized_hashes = [\n  "alice:pw",\n]\n',
     "clusters.app.authorized_hashes[0]", 4, "credential 'alice:pw' must be USER:SHA256"),
    ("authorized hashes not a list", HC + 'authorized_hashes = "x"\n',
     "clusters.app.authorized_hashes", 3, "must be an array of strings"),
    ("bad realm", HC + "www_authenticate = 'a\"b'\n", "clusters.app.www_authenticate", 3,
     "must not contain"),
    ("bad http2", HC + 'http2 = "yes"\n', "clusters.app.http2", 3, "must be a boolean"),
    ("cluster unknown answer", HC + '[clusters.app.answers]\n"418" = "teapot"\n',
     "clusters.app.answers.418", 4, "no answer for status '418'"),
    ("health check not a table", HC + 'health_check = "/health"\n', "clusters.app.health_check",
     3, "must be a table (a health check)"),
    ("health check without uri", HC + "[clusters.app.health_check]\ninterval = 1\n",
     "clusters.app.health_check", 3, "missing key 'uri' for a health check"),
    ("health check bad uri", HC + '[clusters.app.health_check]\nuri = "health"\n',
     "clusters.app.health_check.uri", 4, "the probe URI must start with '/'"),
    ("health check zero interval", HC + '[clusters.app.health_check]\nuri = "/"\ninterval = 0\n',
     "clusters.app.health_check.interval", 5, "must be greater than 0"),
    ("health check bad status", HC + '[clusters.app.health_check]\nuri = "/"\n'
     "expected_status = 700\n", "clusters.app.health_check.expected_status", 5,
     "must be 0 (any 2xx) or a status between 100 and 599"),
    ("health check unknown key", HC + '[clusters.app.health_check]\nuri = "/"\nrise = 2\n',
     "clusters.app.health_check.rise", 5, "unknown key for a health check"),
    # frontends
    ("frontend without hostname", HC + 'frontends = [{ address = "127.0.0.1:1" }]\n',
     "clusters.app.frontends[0]", 3, "missing key 'hostname' for an http frontend"),
    ("frontend bad hostname", fe("").replace("a.test", "a b"),
     "clusters.app.frontends[0].hostname", 3, "host name 'a b' must not contain spaces"),
    ("frontend hostname with port", fe("").replace("a.test", "a.test:80"),
     "clusters.app.frontends[0].hostname", 3, "must not contain a port"),
    ("frontend bad regex path", fe(', path = "(", path_type = "REGEX"'),
     "clusters.app.frontends[0].path", 3, "invalid regular expression '('"),
    ("frontend bad path type", fe(', path = "/", path_type = "glob"'),
     "clusters.app.frontends[0].path_type", 3,
     "must be one of PREFIX, REGEX, EQUALS (got 'glob')"),
    ("frontend path type without path", fe(', path_type = "EQUALS"'),
     "clusters.app.frontends[0].path_type", 3, "path_type needs a path"),
    ("frontend bad method", fe(', method = "G T"'), "clusters.app.frontends[0].method", 3,
     "method 'G T' is not a token"),
    ("frontend bad position", fe(', position = "middle"'), "clusters.app.frontends[0].position",
     3, "must be one of PRE, TREE, POST (got 'middle')"),
    ("frontend bad redirect", fe(', redirect = "moved"'), "clusters.app.frontends[0].redirect",
     3, "must be one of FORWARD, PERMANENT, FOUND, PERMANENT_REDIRECT, UNAUTHORIZED"),
    ("frontend bad redirect scheme", fe(', redirect_scheme = "ftp"'),
     "clusters.app.frontends[0].redirect_scheme", 3, "must be one of USE_SAME, USE_HTTP"),
    ("frontend bad rewrite port", fe(", rewrite_port = 70000"),
     "clusters.app.frontends[0].rewrite_port", 3, "must be a port between 1 and 65535"),
    ("frontend rewrite with newline", fe(', rewrite_path = "/a\\nb"'),
     "clusters.app.frontends[0].rewrite_path", 3, "must not contain CR, LF, NUL"),
    ("frontend bad required_auth", fe(", required_auth = 1"),
     "clusters.app.frontends[0].required_auth", 3, "must be a boolean"),
    ("frontend certificate without key", fe(', certificate = "c.pem"'),
     "clusters.app.frontends[0].certificate", 3,
     "needs both certificate and key (missing 'key')"),
    ("frontend hsts", fe(", hsts = { enabled = true }"), "clusters.app.frontends[0].hsts", 3,
     "only valid for https frontends"),
    ("frontend unknown key", fe(', colour = "red"'), "clusters.app.frontends[0].colour", 3,
     "unknown key for an http frontend"),
    ("headers not an array", fe(', headers = "X: y"'), "clusters.app.frontends[0].headers", 3,
     "must be an array of tables"),
    ("header without value", HC + '[[clusters.app.frontends]]\naddress = "127.0.0.1:1"\n'
     'hostname = "a"\n[[clusters.app.frontends.headers]]\nposition = "request"\nkey = "X"\n',
     "clusters.app.frontends[0].headers[0]", 6, "missing key 'value' for a header edit"),
    ("header wire spelling", HC + '[[clusters.app.frontends]]\naddress = "127.0.0.1:1"\n'
     'hostname = "a"\n[[clusters.app.frontends.headers]]\nposition = "request"\nkey = "X"\n'
     'val = ""\n', "clusters.app.frontends[0].headers[0].val", 9,
     "unknown key for a header edit"),
    ("header bad position", HC + '[[clusters.app.frontends]]\naddress = "127.0.0.1:1"\n'
     'hostname = "a"\n[[clusters.app.frontends.headers]]\nposition = "sideways"\nkey = "X"\n'
     'value = ""\n', "clusters.app.frontends[0].headers[0].position", 7,
     "must be one of REQUEST, RESPONSE, BOTH (got 'sideways')"),
    ("header bad key", HC + '[[clusters.app.frontends]]\naddress = "127.0.0.1:1"\n'
     'hostname = "a"\n[[clusters.app.frontends.headers]]\nposition = "both"\nkey = "X Y"\n'
     'value = ""\n', "clusters.app.frontends[0].headers[0].key", 8,
     "header name 'X Y' is not a token"),
    ("header value CRLF", HC + '[[clusters.app.frontends]]\naddress = "127.0.0.1:1"\n'
     'hostname = "a"\n[[clusters.app.frontends.headers]]\nposition = "both"\nkey = "X"\n'
     'value = "a\\r\\nEvil: 1"\n', "clusters.app.frontends[0].headers[0].value", 9,
     "must not contain CR, LF, NUL or other control characters"),
    ("same rule twice in a cluster", HC + 'frontends = [\n'
     '  { address = "127.0.0.1:1", hostname = "a.test", path = "/x" },\n'
     '  { address = "127.0.0.1:1", hostname = "A.TEST", path = "/x", tags = { k = "v" } },\n]\n',
     "clusters.app.frontends[1]", 5, "this cluster already has a frontend with this rule"),
    ("same rule in two clusters", fe("") + '[clusters.b]\nprotocol = "http"\n'
     'frontends = [{ address = "127.0.0.1:1", hostname = "a.test" }]\n',
     "clusters.b.frontends[0]", 6, "cluster 'app' already has a frontend with this rule"),
    ("http frontend on a tcp listener", '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:1"\n'
     + fe(""), "clusters.app.frontends[0].address", 6,
     "127.0.0.1:1 is a tcp listener; an http frontend needs an http or https listener"),
    ("tcp frontend on an http listener", HL + '[clusters.t]\nprotocol = "tcp"\n'
     'frontends = [{ address = "127.0.0.1:1" }]\n', "clusters.t.frontends[0].address", 6,
     "127.0.0.1:1 is an http listener; a tcp frontend needs a tcp listener"),
    ("tcp frontend on a default http listener", fe("") + '[clusters.t]\nprotocol = "tcp"\n'
     'frontends = [{ address = "127.0.0.1:1" }]\n', "clusters.t.frontends[0].address", 6,
     "is an http listener"),
    ("http frontend on a default tcp listener", '[clusters.t]\nprotocol = "tcp"\n'
     'frontends = [{ address = "127.0.0.1:1" }]\n' + fe(""), "clusters.app.frontends[0].address",
     6, "127.0.0.1:1 is a tcp listener"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "line", "reason"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(text: str, key: str, line: int, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="cfg.toml")
    error = info.value
    assert reason in error.reason
    assert (error.key, error.line) == (key, line)
    assert str(error) == f"cfg.toml:{line}: {key}: {error.reason}"


def test_redirect_template_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    template = b"HTTP/1.1 301 Gone\r\nLocation: %REDIRECT_LOCATION\r\n\r\n"
    (tmp_path / "moved.http").write_bytes(template)
    path = tmp_path / "pysozu.toml"
    path.write_text(
        """
[clusters.app]
protocol = "http"

[[clusters.app.frontends]]
address = "127.0.0.1:8080"
hostname = "a.test"
redirect = "permanent"
redirect_template = "file://moved.http"
"""
    )
    front = by_type(load_config(path).requests, "ADD_HTTP_FRONTEND")[0]
    assert front["redirect_template"] == template.decode()


def test_relative_answer_file_without_a_base_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "404.http").write_bytes(b"HTTP/1.1 404 X\r\n\r\n")
    monkeypatch.chdir(tmp_path)
    config = parse_config(HL + 'answers = { "404" = "file://404.http" }\n')
    assert config.requests[0]["answers"] == {"404": "HTTP/1.1 404 X\r\n\r\n"}


def test_unreadable_answer_file(tmp_path: Path) -> None:
    binary = tmp_path / "bad.http"
    binary.write_bytes(b"\xff\xfe")
    text = HL + f'answers = {{ "404" = "file://{binary}" }}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == "listeners[0].answers.404"
    assert "cannot read the answer template" in info.value.reason


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("forward", "FORWARD"),
        ("Permanent", "PERMANENT"),
        ("found", "FOUND"),
        ("permanent_redirect", "PERMANENT_REDIRECT"),
        ("permanent-redirect", "PERMANENT_REDIRECT"),
        ("UNAUTHORIZED", "UNAUTHORIZED"),
    ],
)
def test_redirect_spellings(word: str, expected: str) -> None:
    config = parse_config(fe(f', redirect = "{word}"'))
    assert by_type(config.requests, "ADD_HTTP_FRONTEND")[0]["redirect"] == expected


def summary(requests: list[Request]) -> list[tuple[str, Any]]:
    return [(r.type, r.fields.get("address")) for r in requests]


def test_activate_listeners_false_leaves_http_listeners_inactive() -> None:
    config = parse_config("activate_listeners = false\n" + HTTP_STYLE)
    assert "ACTIVATE_LISTENER" not in {r.type for r in config.requests}
    assert summary(config.requests)[0] == ("ADD_HTTP_LISTENER", "0.0.0.0:8080")
