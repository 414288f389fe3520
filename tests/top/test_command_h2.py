"""HTTP/2 settings of HTTP and HTTPS listeners on the channel: ``h2c``, Sōzu's ``h2_*`` knobs
and ``disable_http11`` (defaults, ranges, the ALPN rule), their life in ConfigState (update,
diff, state files) and their way into the worker's ``HttpListenerConfig``."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pysozu.command import (
    H2_LISTENER_FIELDS,
    CommandError,
    check_h2_field,
    make_request,
    parse_request,
)
from pysozu.protocols.h2_connection import H2Limits
from pysozu.protocols.http import HttpListenerConfig
from pysozu.state import STATE_SEPARATOR, ConfigState, StateError
from tests.conftest import WAIT, recv_all
from tests.e2e.h2_helpers import H2Client
from tests.e2e.helpers import in_worker
from tests.e2e.http_helpers import HOST, HttpBackend, add_cluster, http_listen
from tests.top.test_command_http import H2_DEFAULTS

L = "127.0.0.1:8443"

#: field -> (lowest accepted, highest accepted)
RANGES: dict[str, tuple[int, int]] = {
    "h2_max_concurrent_streams": (1, 2**32 - 1),
    "h2_initial_window_size": (1, 2**31 - 1),
    "h2_initial_connection_window": (65535, 2**31 - 1),
    "h2_max_frame_size": (16384, 16777215),
    "h2_max_header_list_size": (1, 2**32 - 1),
    "h2_max_header_table_size": (0, 2**32 - 1),  # 0: no dynamic table (RFC 7541 §4.2)
    "h2_max_header_fields": (1, 2**32 - 1),
    "h2_max_rst_stream_per_window": (1, 2**32 - 1),
    "h2_max_ping_per_window": (1, 2**32 - 1),
    "h2_max_settings_per_window": (1, 2**32 - 1),
    "h2_max_empty_data_per_window": (1, 2**32 - 1),
    "h2_max_window_update_stream0_per_window": (1, 2**32 - 1),
    "h2_max_continuation_frames": (1, 2**32 - 1),
    "h2_max_glitch_count": (1, 2**32 - 1),
    "h2_max_rst_stream_lifetime": (1, 2**32 - 1),
    "h2_max_rst_stream_abusive_lifetime": (1, 2**32 - 1),
    "h2_max_rst_stream_emitted_lifetime": (1, 2**32 - 1),
    "h2_graceful_shutdown_deadline_seconds": (1, 2**32 - 1),
}


def request(request_type: str, **fields: Any) -> dict[str, Any]:
    return parse_request({"id": "r", "type": request_type, "address": L, **fields}).fields


def test_every_field_has_a_range_and_sozus_default() -> None:
    assert set(RANGES) == set(H2_LISTENER_FIELDS) == set(H2_DEFAULTS) - {"h2c"}
    for name, (default, low, high) in H2_LISTENER_FIELDS.items():
        assert (low, high) == RANGES[name], name
        assert default == H2_DEFAULTS[name], name


@pytest.mark.parametrize("request_type", ["ADD_HTTP_LISTENER", "ADD_HTTPS_LISTENER"])
def test_listener_defaults(request_type: str) -> None:
    fields = request(request_type)
    assert {name: fields[name] for name in H2_DEFAULTS} == H2_DEFAULTS


@pytest.mark.parametrize("request_type", ["UPDATE_HTTP_LISTENER", "UPDATE_HTTPS_LISTENER"])
def test_update_patches_leave_them_unset(request_type: str) -> None:
    fields = request(request_type)
    assert all(fields[name] is None for name in H2_DEFAULTS)
    patched = request(request_type, h2c=False, h2_max_concurrent_streams=7)
    assert (patched["h2c"], patched["h2_max_concurrent_streams"]) == (False, 7)


def test_https_alpn_default_and_h2_accepted() -> None:
    assert request("ADD_HTTPS_LISTENER")["alpn_protocols"] == ["h2", "http/1.1"]
    for offer in (["h2"], ["http/1.1", "h2"], ["h2", "h2", "http/1.1"]):
        assert request("ADD_HTTPS_LISTENER", alpn_protocols=offer)["alpn_protocols"] == list(
            dict.fromkeys(offer))
    fields = request("ADD_HTTPS_LISTENER", disable_http11=True)  # the default offers h2
    assert fields["disable_http11"] is True
    fields = request("ADD_HTTPS_LISTENER", disable_http11=True, alpn_protocols=["h2"])
    assert fields["alpn_protocols"] == ["h2"]


@pytest.mark.parametrize(("name", "bounds"), RANGES.items(), ids=list(RANGES))
@pytest.mark.parametrize("request_type", [
    "ADD_HTTP_LISTENER", "ADD_HTTPS_LISTENER", "UPDATE_HTTP_LISTENER", "UPDATE_HTTPS_LISTENER",
])
def test_ranges(request_type: str, name: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    for value in (low, high):
        assert request(request_type, **{name: value})[name] == value
    if low > 0:
        with pytest.raises(CommandError) as info:
            request(request_type, **{name: low - 1})
        assert str(info.value) == (
            f"field {name!r}: must be between {low} and {high} (got {low - 1})")
    with pytest.raises(CommandError, match=f"field {name!r}"):
        request(request_type, **{name: high + 1})


@pytest.mark.parametrize(("fields", "message"), [
    ({"h2_max_concurrent_streams": 0},
     "field 'h2_max_concurrent_streams': must be between 1 and 4294967295 (got 0)"),
    ({"h2_initial_window_size": 2**31},
     "field 'h2_initial_window_size': must be between 1 and 2147483647 (got 2147483648)"),
    ({"h2_initial_connection_window": 65534},
     "field 'h2_initial_connection_window': must be between 65535 and 2147483647 (got 65534)"),
    ({"h2_max_frame_size": 16777216},
     "field 'h2_max_frame_size': must be between 16384 and 16777215 (got 16777216)"),
    ({"h2_max_ping_per_window": -1},
     "field 'h2_max_ping_per_window' must be between 0 and 4294967295 (got -1)"),
    ({"h2_max_glitch_count": "10"}, "field 'h2_max_glitch_count' must be an integer"),
    ({"h2_max_glitch_count": True}, "field 'h2_max_glitch_count' must be an integer"),
    ({"h2c": "yes"}, "field 'h2c' must be a boolean"),
    ({"h2_stream_shrink_ratio": 2}, "unknown field 'h2_stream_shrink_ratio' for ADD_HTTP_LISTENER"),
    ({"h2_stream_idle_timeout_seconds": 30},
     "unknown field 'h2_stream_idle_timeout_seconds' for ADD_HTTP_LISTENER"),
])  # fmt: skip
def test_refusals_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandError) as info:
        request("ADD_HTTP_LISTENER", **fields)
    assert str(info.value) == message


def test_check_h2_field_is_public() -> None:
    assert check_h2_field("h2_max_frame_size", 16384) == 16384
    with pytest.raises(CommandError, match=r"must be between 16384 and 16777215 \(got 1\)"):
        check_h2_field("h2_max_frame_size", 1)


@pytest.mark.parametrize("fields", [
    {"disable_http11": True, "alpn_protocols": ["http/1.1"]},
])
def test_disable_http11_needs_h2(fields: dict[str, Any]) -> None:
    with pytest.raises(CommandError) as info:
        request("ADD_HTTPS_LISTENER", **fields)
    assert str(info.value) == "disable_http11 needs 'h2' in alpn_protocols"


# -- ConfigState ------------------------------------------------------------------------------


def add_https(**fields: Any) -> Any:
    return make_request("a", "ADD_HTTPS_LISTENER", address=L, **fields)


def update_https(**fields: Any) -> Any:
    return make_request("u", "UPDATE_HTTPS_LISTENER", address=L, **fields)


def test_update_is_judged_against_the_listener() -> None:
    state = ConfigState.from_requests([add_https(disable_http11=True)])
    for patch in ({"alpn_protocols": ["http/1.1"]},
                  {"alpn_protocols": ["http/1.1"], "h2_max_concurrent_streams": 3}):
        with pytest.raises(StateError) as info:
            state.check(update_https(**patch))
        assert str(info.value) == (
            f"HTTPS listener {L}: disable_http11 needs 'h2' in alpn_protocols")
    assert state.https_listeners[L]["alpn_protocols"] == ["h2", "http/1.1"]
    # both at once, or HTTP/1.1 back on first: fine
    assert state.apply(update_https(alpn_protocols=["http/1.1"], disable_http11=False))
    state = ConfigState.from_requests([add_https(alpn_protocols=["http/1.1"])])
    with pytest.raises(StateError, match="disable_http11 needs 'h2'"):
        state.check(update_https(disable_http11=True))
    assert state.apply(update_https(disable_http11=True, alpn_protocols=["h2"]))
    assert state.https_listeners[L]["disable_http11"] is True


def test_update_diff_and_list() -> None:
    http = make_request("h", "ADD_HTTP_LISTENER", address="127.0.0.1:8080")
    state = ConfigState.from_requests([http, add_https()])
    assert state.apply(make_request("u", "UPDATE_HTTP_LISTENER", address="127.0.0.1:8080",
                                    h2c=False, h2_max_header_fields=64))
    assert state.apply(update_https(h2_graceful_shutdown_deadline_seconds=9))
    assert not state.apply(update_https(h2_graceful_shutdown_deadline_seconds=9))
    listed = state.list_listeners()
    assert listed["http_listeners"]["127.0.0.1:8080"]["h2c"] is False
    assert listed["http_listeners"]["127.0.0.1:8080"]["h2_max_header_fields"] == 64
    assert listed["https_listeners"][L]["h2_graceful_shutdown_deadline_seconds"] == 9

    before = ConfigState.from_requests([http, add_https()])
    diff = before.diff(state)
    assert [(r.type, {k: v for k, v in r.fields.items() if v is not None}) for r in diff] == [
        ("UPDATE_HTTP_LISTENER",
         {"address": "127.0.0.1:8080", "h2c": False, "h2_max_header_fields": 64}),
        ("UPDATE_HTTPS_LISTENER", {"address": L, "h2_graceful_shutdown_deadline_seconds": 9}),
    ]
    for step in diff:
        before.apply(step)
    assert before == state
    assert before.hash() == state.hash()


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = ConfigState.from_requests([
        make_request("h", "ADD_HTTP_LISTENER", address="127.0.0.1:8080", h2c=False,
                     h2_max_concurrent_streams=8, h2_initial_window_size=1 << 20),
        add_https(alpn_protocols=["h2"], disable_http11=True, h2_max_frame_size=32768,
                  h2_max_rst_stream_per_window=10),
    ])
    path = tmp_path / "state"
    state.save(path)
    loaded = ConfigState.from_requests(ConfigState.load(path))
    assert loaded == state and loaded.hash() == state.hash()
    http = loaded.http_listeners["127.0.0.1:8080"]
    assert (http["h2c"], http["h2_max_concurrent_streams"]) == (False, 8)
    assert http["h2_initial_window_size"] == 1 << 20
    https = loaded.https_listeners[L]
    assert (https["alpn_protocols"], https["disable_http11"]) == (["h2"], True)
    assert (https["h2_max_frame_size"], https["h2_max_rst_stream_per_window"]) == (32768, 10)


def test_a_state_file_from_before_http2_loads_with_the_defaults(tmp_path: Path) -> None:
    old = {"id": "0", "type": "ADD_HTTP_LISTENER", "address": "127.0.0.1:8080",
           "front_timeout": 60}
    path = tmp_path / "old-state"
    path.write_text(json.dumps(old) + STATE_SEPARATOR)
    state = ConfigState.from_requests(ConfigState.load(path))
    listener = state.http_listeners["127.0.0.1:8080"]
    assert {name: listener[name] for name in H2_DEFAULTS} == H2_DEFAULTS


# -- through the worker -----------------------------------------------------------------------


def listener_config(proxy: Any, address: str) -> HttpListenerConfig:
    config = in_worker(proxy, lambda: proxy.worker.server.listeners[address].config)
    assert isinstance(config, HttpListenerConfig)
    return config


#: every H2Limits attribute has its listener field, ``h2_`` + its name
KNOBS = {f"h2_{f.name}": f.name for f in dataclasses.fields(H2Limits)}


def test_fields_reach_the_listener_config(proxy: Any) -> None:
    assert set(KNOBS) == set(H2_LISTENER_FIELDS) - {"h2_graceful_shutdown_deadline_seconds"}
    address = http_listen(proxy)
    config = listener_config(proxy, address)
    assert config.h2c is True and config.h2_limits == H2Limits()
    assert config.h2_graceful_shutdown_deadline == 5

    # every knob, each to a value of its own, on an HTTPS listener
    values = {name: RANGES[name][0] + 3 + i for i, name in enumerate(KNOBS)}
    values["h2_initial_connection_window"] = 1 << 21
    values["h2_max_frame_size"] = 1 << 15
    answer = proxy.ok("ADD_HTTPS_LISTENER", address="127.0.0.1:0", h2c=False,
                      h2_graceful_shutdown_deadline_seconds=2, **values)
    assert answer["status"] == "OK"
    https = next(a for a in proxy.ok("LIST_LISTENERS")["content"]["https_listeners"])
    config = listener_config(proxy, https)
    assert config.h2_limits == H2Limits(**{KNOBS[name]: v for name, v in values.items()})
    assert (config.h2c, config.h2_graceful_shutdown_deadline) == (False, 2)

    # an update changes what it names and keeps the rest
    proxy.ok("UPDATE_HTTPS_LISTENER", address=https, h2_max_concurrent_streams=5,
             h2_graceful_shutdown_deadline_seconds=7)
    updated = listener_config(proxy, https)
    assert updated.h2_limits == dataclasses.replace(config.h2_limits, max_concurrent_streams=5)
    assert updated.h2_graceful_shutdown_deadline == 7
    listed = proxy.ok("LIST_LISTENERS")["content"]["https_listeners"][https]
    assert listed["h2_max_concurrent_streams"] == 5 and listed["h2c"] is False

    answer = proxy.request("UPDATE_HTTP_LISTENER", address=address, h2_max_frame_size=1)
    assert answer["status"] == "FAILURE"
    assert "field 'h2_max_frame_size': must be between 16384 and 16777215" in answer["message"]
    assert listener_config(proxy, address).h2_limits == H2Limits()


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend()
    try:
        yield server
    finally:
        server.close()


def test_h2c_on_and_off_for_new_connections(proxy: Any, backend: HttpBackend) -> None:
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    proxy.ok("ADD_HTTP_FRONTEND", address=address, hostname=HOST, cluster_id="app")
    with H2Client(address) as client:
        response = client.get("/h2c")
        assert response.status == 200 and bytes(response.body) == b"backend GET /h2c"

    proxy.ok("UPDATE_HTTP_LISTENER", address=address, h2c=False)
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        answer = recv_all(sock)
    # HTTP/1.1's answer to a version it does not speak, not HTTP/2's SETTINGS
    assert answer.startswith(b"HTTP/1.1 505 "), answer[:40]
