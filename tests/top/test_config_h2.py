"""HTTP/2 keys of ``[[listeners]]`` in the TOML configuration: ``h2c``, Sōzu's ``h2_*`` knobs
(http and https listeners), ``alpn_protocols`` with ``h2`` and ``disable_http11``; errors name
the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pysozu.command import H2_LISTENER_FIELDS, Request
from pysozu.config import ConfigError, load_config, parse_config
from pysozu.state import ConfigState
from tests.e2e.https_helpers import make_ca
from tests.top.test_command_http import H2_DEFAULTS

HTTP = '[[listeners]]\nprotocol = "http"\naddress = "127.0.0.1:8080"\n'  # lines 1-3
HTTPS = '[[listeners]]\nprotocol = "https"\naddress = "127.0.0.1:8443"\n'  # lines 1-3
TCP = '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:9000"\n'  # lines 1-3


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``a.pem`` and ``a.key`` (a certificate for a.test)."""
    path = tmp_path_factory.mktemp("h2-config")
    pem, key = make_ca(path).issue(["a.test"])
    (path / "a.pem").write_text(pem)
    (path / "a.key").write_text(key)
    return path


def https(folder: Path, extra: str) -> list[Request]:
    """The requests of a file with one https listener (its certificate given) and ``extra``."""
    path = folder / "pysozu.toml"
    path.write_text(HTTPS + 'certificate = "a.pem"\nkey = "a.key"\n' + extra)
    return load_config(path).requests


def test_defaults_on_every_http_listener() -> None:
    config = parse_config(
        HTTP + '[clusters.app]\nprotocol = "http"\n'
        'frontends = [{ address = "127.0.0.1:8081", hostname = "a.test" }]\n'
    )
    listeners = [r for r in config.requests if r.type == "ADD_HTTP_LISTENER"]
    assert len(listeners) == 2  # the file's and a default one for the frontend
    for listener in listeners:
        assert {name: listener[name] for name in H2_DEFAULTS} == H2_DEFAULTS


def test_http_listener_keys() -> None:
    config = parse_config(
        HTTP
        + "h2c = false\n"
        + "h2_max_concurrent_streams = 16\n"
        + "h2_initial_window_size = 1048576\n"
        + "h2_initial_connection_window = 16777216\n"
        + "h2_max_frame_size = 65536\n"
        + "h2_max_header_table_size = 0\n"
        + "h2_max_rst_stream_per_window = 20\n"
        + "h2_graceful_shutdown_deadline_seconds = 30\n"
    )
    listener = config.requests[0]
    assert listener.type == "ADD_HTTP_LISTENER"
    assert listener["h2c"] is False
    assert listener["h2_max_concurrent_streams"] == 16
    assert listener["h2_initial_window_size"] == 1 << 20
    assert listener["h2_initial_connection_window"] == 1 << 24
    assert listener["h2_max_frame_size"] == 1 << 16
    assert listener["h2_max_header_table_size"] == 0
    assert listener["h2_max_rst_stream_per_window"] == 20
    assert listener["h2_graceful_shutdown_deadline_seconds"] == 30
    assert listener["h2_max_ping_per_window"] == 100  # not given: Sōzu's default


def test_every_knob_is_a_listener_key() -> None:
    text = HTTP + "".join(f"{name} = {low + 1}\n"
                          for name, (_, low, _) in H2_LISTENER_FIELDS.items())
    listener = parse_config(text).requests[0]
    assert all(listener[name] == low + 1 for name, (_, low, _) in H2_LISTENER_FIELDS.items())


def test_https_listener_keys(folder: Path) -> None:
    listener = https(folder, "h2_max_concurrent_streams = 50\nh2_max_glitch_count = 7\n")[0]
    assert listener.type == "ADD_HTTPS_LISTENER"
    assert listener["alpn_protocols"] == ["h2", "http/1.1"]  # Sōzu's default
    assert listener["disable_http11"] is False
    assert (listener["h2_max_concurrent_streams"], listener["h2_max_glitch_count"]) == (50, 7)


@pytest.mark.parametrize(("extra", "alpn"), [
    ("disable_http11 = true\n", ["h2", "http/1.1"]),  # the default offer has h2
    ('alpn_protocols = ["h2"]\ndisable_http11 = true\n', ["h2"]),
    ('disable_http11 = true\nalpn_protocols = ["http/1.1", "h2"]\n', ["http/1.1", "h2"]),
])  # fmt: skip
def test_disable_http11_with_h2(folder: Path, extra: str, alpn: list[str]) -> None:
    requests = https(folder, extra)
    listener = requests[0]
    assert (listener["disable_http11"], listener["alpn_protocols"]) == (True, alpn)
    ConfigState.from_requests(requests)


def test_reload_updates_the_listener() -> None:
    old = ConfigState.from_requests(parse_config(HTTP).requests)
    new = ConfigState.from_requests(
        parse_config(HTTP + "h2c = false\nh2_max_header_fields = 64\n").requests)
    diff = old.diff(new)
    assert [r.type for r in diff] == ["UPDATE_HTTP_LISTENER"]
    given = {k: v for k, v in diff[0].fields.items() if v is not None}
    assert given == {"address": "127.0.0.1:8080", "h2c": False, "h2_max_header_fields": 64}


ERRORS: list[tuple[str, str, str, int, str]] = [
    ("h2c not a boolean", HTTP + 'h2c = "no"\n', "listeners[0].h2c", 4, "must be a boolean"),
    ("streams zero", HTTP + "h2_max_concurrent_streams = 0\n",
     "listeners[0].h2_max_concurrent_streams", 4, "must be between 1 and 4294967295 (got 0)"),
    ("streams negative", HTTP + "h2_max_concurrent_streams = -1\n",
     "listeners[0].h2_max_concurrent_streams", 4, "must be between 0 and 4294967295 (got -1)"),
    ("window not an integer", HTTP + 'h2_initial_window_size = "64k"\n',
     "listeners[0].h2_initial_window_size", 4, "must be an integer"),
    ("window too large", HTTP + "h2_initial_window_size = 2147483648\n",
     "listeners[0].h2_initial_window_size", 4,
     "must be between 1 and 2147483647 (got 2147483648)"),
    ("connection window too small", HTTP + "\nh2_initial_connection_window = 1024\n",
     "listeners[0].h2_initial_connection_window", 5,
     "must be between 65535 and 2147483647 (got 1024)"),
    ("frame size too small", HTTPS + "h2_max_frame_size = 1024\n",
     "listeners[0].h2_max_frame_size", 4, "must be between 16384 and 16777215 (got 1024)"),
    ("frame size too large", HTTPS + "h2_max_frame_size = 16777216\n",
     "listeners[0].h2_max_frame_size", 4, "must be between 16384 and 16777215 (got 16777216)"),
    ("zero flood limit", HTTPS + "h2_max_ping_per_window = 0\n",
     "listeners[0].h2_max_ping_per_window", 4, "must be between 1 and 4294967295 (got 0)"),
    ("zero deadline", HTTP + "h2_graceful_shutdown_deadline_seconds = 0\n",
     "listeners[0].h2_graceful_shutdown_deadline_seconds", 4, "must be between 1 and"),
    ("skipped sozu knob", HTTP + "h2_stream_shrink_ratio = 2\n",
     "listeners[0].h2_stream_shrink_ratio", 4, "unknown key for an http listener"),
    ("h2 knob on a tcp listener", TCP + "h2_max_concurrent_streams = 10\n",
     "listeners[0].h2_max_concurrent_streams", 4, "only valid for http listeners"),
    ("h2c on a tcp listener", TCP + "h2c = true\n", "listeners[0].h2c", 4,
     "only valid for http listeners"),
    ("disable_http11 on an http listener", HTTP + "disable_http11 = true\n",
     "listeners[0].disable_http11", 4, "only valid for https listeners"),
    ("disable_http11 without h2", HTTPS + 'alpn_protocols = ["http/1.1"]\n'
     "disable_http11 = true\n", "listeners[0].disable_http11", 5,
     "disable_http11 needs 'h2' in alpn_protocols"),
    ("unknown ALPN protocol", HTTPS + 'alpn_protocols = ["h2", "h3"]\n',
     "listeners[0].alpn_protocols", 4, "unsupported ALPN protocol 'h3' (one of h2, http/1.1)"),
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
