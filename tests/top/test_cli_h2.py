"""The command line's HTTP/2 listener options: ``--h2c``/``--no-h2c``, one ``--h2-…`` option per
HTTP/2 field, ``--disable-http11`` and ``--alpn h2``; their requests, usage errors, rendering,
and a running ``pysozu start`` reconfigured by them."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pysozu.cli import _listener_lines, request_for
from pysozu.command import H2_LISTENER_FIELDS, make_request, parse_request
from tests.top.test_cli import ProxyProcess, free_address

L = "127.0.0.1:8080"

MAPPINGS: list[tuple[list[str], str, dict[str, Any]]] = [
    (["listener", "add", L, "--http", "--no-h2c"], "ADD_HTTP_LISTENER",
     {"address": L, "active": True, "h2c": False}),
    (["listener", "add", L, "--http", "--h2c"], "ADD_HTTP_LISTENER",
     {"address": L, "active": True, "h2c": True}),
    (["listener", "add", L, "--http", "--h2-max-concurrent-streams", "10",
      "--h2-initial-window-size", "1048576", "--h2-initial-connection-window", "16777216",
      "--h2-max-frame-size", "32768", "--h2-max-header-table-size", "0",
      "--h2-graceful-shutdown-deadline-seconds", "20"],
     "ADD_HTTP_LISTENER",
     {"address": L, "active": True, "h2_max_concurrent_streams": 10,
      "h2_initial_window_size": 1048576, "h2_initial_connection_window": 16777216,
      "h2_max_frame_size": 32768, "h2_max_header_table_size": 0,
      "h2_graceful_shutdown_deadline_seconds": 20}),
    (["listener", "update", L, "--http", "--h2c"], "UPDATE_HTTP_LISTENER",
     {"address": L, "h2c": True}),
    (["listener", "update", L, "--http", "--no-h2c", "--h2-max-rst-stream-per-window", "5",
      "--h2-max-window-update-stream0-per-window", "7"], "UPDATE_HTTP_LISTENER",
     {"address": L, "h2c": False, "h2_max_rst_stream_per_window": 5,
      "h2_max_window_update_stream0_per_window": 7}),
    (["listener", "add", L, "--https", "--alpn", "h2,http/1.1", "--disable-http11",
      "--h2-max-glitch-count", "3"], "ADD_HTTPS_LISTENER",
     {"address": L, "active": True, "alpn_protocols": ["h2", "http/1.1"],
      "disable_http11": True, "h2_max_glitch_count": 3}),
    (["listener", "add", L, "--https", "--alpn", "h2"], "ADD_HTTPS_LISTENER",
     {"address": L, "active": True, "alpn_protocols": ["h2"]}),
    (["listener", "update", L, "--https", "--no-disable-http11", "--alpn", "http/1.1"],
     "UPDATE_HTTPS_LISTENER",
     {"address": L, "disable_http11": False, "alpn_protocols": ["http/1.1"]}),
    (["listener", "update", L, "--https", "--h2-max-header-list-size", "8192"],
     "UPDATE_HTTPS_LISTENER", {"address": L, "h2_max_header_list_size": 8192}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "request_type", "fields"), MAPPINGS, ids=[" ".join(m[0][3:]) for m in MAPPINGS]
)
def test_arguments_map_to_requests(
    argv: list[str], request_type: str, fields: dict[str, Any]
) -> None:
    assert request_for(argv) == (request_type, fields)
    parse_request({"id": "x", "type": request_type, **fields})  # the proxy accepts it


def test_every_http2_field_has_its_option() -> None:
    argv = ["listener", "update", L, "--http"]
    for name, (_, low, _) in H2_LISTENER_FIELDS.items():
        argv += ["--" + name.replace("_", "-"), str(low + 2)]
    request_type, fields = request_for(argv)
    assert request_type == "UPDATE_HTTP_LISTENER"
    assert fields == {"address": L, **{name: low + 2
                                       for name, (_, low, _) in H2_LISTENER_FIELDS.items()}}


USAGE_ERRORS: list[tuple[list[str], str]] = [
    (["listener", "add", L, "--h2-max-concurrent-streams", "3"],
     "--h2-max-concurrent-streams needs --protocol http"),
    (["listener", "add", L, "--h2c"], "--h2c needs --protocol http"),
    (["listener", "update", L, "--no-h2c"], "--h2c needs --protocol http"),
    (["listener", "add", L, "--http", "--disable-http11"],
     "--disable-http11 needs --protocol https"),
    (["listener", "add", L, "--http", "--h2-max-concurrent-streams", "0"],
     "argument --h2-max-concurrent-streams: must be between 1 and 4294967295 (got 0)"),
    (["listener", "add", L, "--http", "--h2-max-frame-size", "100"],
     "argument --h2-max-frame-size: must be between 16384 and 16777215 (got 100)"),
    (["listener", "add", L, "--http", "--h2-initial-window-size", "-1"],
     "argument --h2-initial-window-size: must not be negative (got -1)"),
    (["listener", "add", L, "--http", "--h2-max-ping-per-window", "x"],
     "argument --h2-max-ping-per-window: not an integer: 'x'"),
    (["listener", "add", L, "--http", "--h2-stream-shrink-ratio", "2"],
     "unrecognized arguments: --h2-stream-shrink-ratio"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"), USAGE_ERRORS, ids=[" ".join(u[0][3:]) for u in USAGE_ERRORS]
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        request_for(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: pysozu" in err
    assert message in err


def test_rendering_shows_what_differs_from_the_defaults() -> None:
    plain = make_request("r", "ADD_HTTP_LISTENER", address=L).fields
    tuned = make_request("r", "ADD_HTTP_LISTENER", address="127.0.0.1:8081", h2c=False,
                         h2_max_concurrent_streams=10, h2_max_frame_size=32768).fields
    https = make_request("r", "ADD_HTTPS_LISTENER", address="127.0.0.1:8443",
                         alpn_protocols=["h2"], disable_http11=True).fields
    lines = _listener_lines({
        "http_listeners": {L: plain, "127.0.0.1:8081": tuned},
        "https_listeners": {"127.0.0.1:8443": https},
    })
    timeouts = "timeouts front 60s, back 30s, connect 3s, request 10s"
    assert lines == [
        "HTTP listeners (2):",
        f"  {L}  inactive, {timeouts}",
        f"  127.0.0.1:8081  inactive, {timeouts}, no h2c, "
        "HTTP/2 max_concurrent_streams 10, max_frame_size 32768",
        "HTTPS listeners (1):",
        f"  127.0.0.1:8443  inactive, {timeouts}, TLS 1.2, 1.3, ALPN h2, HTTP/1.1 disabled",
    ]


# --------------------------------------------------------------------------------------------
# A running proxy
# --------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder short enough for a unix socket path."""
    if len(str(tmp_path / "pysozu.sock")) < 100:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="pysozu-h2-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_start_from_a_file_then_update_from_the_cli(workdir: Path) -> None:
    listen = free_address()
    config = workdir / "pysozu.toml"
    config.write_text(f"""
command_socket = "pysozu.sock"
log_level = "warn"

[[listeners]]
protocol = "http"
address = "{listen}"
h2c = false
h2_max_concurrent_streams = 12
""")
    proxy = ProxyProcess(workdir, "-c", str(config), socket_path=workdir / "pysozu.sock")
    try:
        proxy.wait_ready()
        shown = proxy.ok("listener", "list")
        assert "no h2c, HTTP/2 max_concurrent_streams 12" in shown, shown

        proxy.ok("listener", "update", listen, "--http", "--h2c",
                 "--h2-max-concurrent-streams", "5", "--h2-max-frame-size", "65536")
        answer = json.loads(proxy.ok("--json", "listener", "list"))
        listener = answer["content"]["http_listeners"][listen]
        assert listener["h2c"] is True
        assert (listener["h2_max_concurrent_streams"], listener["h2_max_frame_size"]) == (5, 65536)
        assert listener["h2_max_ping_per_window"] == 100
        assert "no h2c" not in proxy.ok("listener", "list")
    finally:
        proxy.kill()
