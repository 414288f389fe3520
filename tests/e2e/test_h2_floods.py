"""HTTP/2 abuse end to end: each flood ends in GOAWAY ENHANCE_YOUR_CALM and is counted, and
busy but honest traffic triggers none of them.

The attacks are sent as raw frames (built with ``pysozu.parser.h2``'s frame builders, which
check nothing) after a normal ``h2`` client handshake, so each test shows the defence of one
limit of ``H2Limits``. Limits are lowered on the listener where the defaults would make a
test slow.
"""

from __future__ import annotations

import h2.events
import hpack
import pytest

from pysozu.parser import h2 as frames
from tests.conftest import WAIT
from tests.e2e.h2_helpers import H2Client
from tests.e2e.helpers import counters, wait_for
from tests.e2e.http_helpers import HOST, http_app

ENHANCE_YOUR_CALM = 0xB


def _request_block(encoder: hpack.Encoder, path: str = "/") -> bytes:
    return encoder.encode([(":method", "GET"), (":path", path), (":scheme", "http"),
                           (":authority", HOST)])


def _goaway_code(client: H2Client) -> int:
    """Read the server's frames (raw: the test's frames bypassed the client's state
    machine) until its GOAWAY; the GOAWAY's error code, once the server also closed."""
    reader = frames.FrameReader(frames.MAX_MAX_FRAME_SIZE)
    client.sock.settimeout(WAIT)
    code = None
    while True:
        try:
            data = client.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            break
        for ftype, _flags, _sid, payload in reader.feed(data):
            if ftype == frames.GOAWAY and code is None:
                code = frames.parse_goaway(payload)[1]
    assert code is not None, "the server closed without GOAWAY"
    return code


def _raw(client: H2Client, data: bytes) -> None:
    try:
        client.sock.sendall(data)
    except OSError:
        pass  # the server may already have closed: the GOAWAY is what counts


def _app(proxy, make_http_backend, **limits):
    backend = make_http_backend("one")
    return http_app(proxy, [backend.address], listener=limits or None), backend


def test_rapid_reset_is_stopped(proxy, make_http_backend):
    address, _ = _app(proxy, make_http_backend)
    with H2Client(address) as client:
        encoder = hpack.Encoder()
        burst = []
        for n in range(200):
            sid = 1 + 2 * n
            burst.append(frames.frame(frames.HEADERS, frames.END_HEADERS, sid,
                                      _request_block(encoder, f"/r/{n}")))
            burst.append(frames.rst_stream_frame(sid, 8))
        _raw(client, b"".join(burst))
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    wait_for(lambda: counters(proxy).get("http2.flood.rapid_reset", 0) == 1,
             what="the rapid reset counted")


def test_ping_flood_is_stopped(proxy, make_http_backend):
    address, _ = _app(proxy, make_http_backend, h2_max_ping_per_window=20)
    with H2Client(address) as client:
        _raw(client, b"".join(frames.ping_frame(b"%08d" % n) for n in range(200)))
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    wait_for(lambda: counters(proxy).get("http2.flood.ping", 0) == 1, what="ping flood counted")


def test_settings_flood_is_stopped(proxy, make_http_backend):
    address, _ = _app(proxy, make_http_backend, h2_max_settings_per_window=10)
    with H2Client(address) as client:
        one = frames.settings_frame([(frames.Setting.MAX_CONCURRENT_STREAMS, 100)])
        _raw(client, one * 100)
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    wait_for(lambda: counters(proxy).get("http2.flood.settings", 0) == 1,
             what="settings flood counted")


def test_empty_data_flood_is_stopped(proxy, make_http_backend):
    address, _ = _app(proxy, make_http_backend, h2_max_empty_data_per_window=20)
    with H2Client(address) as client:
        sid = client.request("/echo", method="POST", end_stream=False)
        _raw(client, frames.frame(frames.DATA, 0, sid) * 200)
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    wait_for(lambda: counters(proxy).get("http2.flood.empty_data", 0) == 1,
             what="empty DATA flood counted")


def test_continuation_flood_is_stopped(proxy, make_http_backend):
    address, backend = _app(proxy, make_http_backend)
    with H2Client(address) as client:
        block = _request_block(hpack.Encoder()) + hpack.Encoder().encode(
            [("x-pad", "p" * 50)]) * 0
        parts = [frames.frame(frames.HEADERS, frames.END_STREAM, 1, block[:4])]
        # one byte per CONTINUATION, never END_HEADERS: the block would grow forever
        parts += [frames.frame(frames.CONTINUATION, 0, 1, b"\x00") for _ in range(100)]
        _raw(client, b"".join(parts))
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    assert backend.paths() == []
    wait_for(lambda: counters(proxy).get("http2.flood.continuation", 0) == 1,
             what="continuation flood counted")


def test_hpack_bomb_is_stopped(proxy, make_http_backend):
    address, backend = _app(proxy, make_http_backend)
    with H2Client(address) as client:
        encoder = hpack.Encoder()
        # the 4 KB field goes into the dynamic table once; each repetition is one byte
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                   (":authority", HOST)] + [("x-bomb", "b" * 4000)] * 40
        block = encoder.encode(headers)
        assert len(block) < 5000
        _raw(client, frames.frame(frames.HEADERS, frames.END_HEADERS | frames.END_STREAM, 1,
                                  block))
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    assert backend.paths() == []
    wait_for(lambda: counters(proxy).get("http2.flood.hpack_bomb", 0) == 1,
             what="HPACK bomb counted")


def test_made_you_reset_is_stopped(proxy, make_http_backend):
    """Frames that force the server to reset streams (here WINDOW_UPDATE 0 on an open
    stream, a stream error) are counted against the emitted-reset budget."""
    address, _ = _app(proxy, make_http_backend, h2_max_rst_stream_emitted_lifetime=30)
    with H2Client(address) as client:
        encoder = hpack.Encoder()
        burst = []
        for n in range(60):
            sid = 1 + 2 * n
            burst.append(frames.frame(frames.HEADERS, frames.END_HEADERS, sid,
                                      encoder.encode([(":method", "POST"), (":path", "/hold"),
                                                      (":scheme", "http"),
                                                      (":authority", HOST)])))
            burst.append(frames.window_update_frame(sid, 0))
        _raw(client, b"".join(burst))
        assert _goaway_code(client) == ENHANCE_YOUR_CALM
    wait_for(lambda: counters(proxy).get("http2.flood.made_you_reset", 0) == 1,
             what="MadeYouReset counted")


def test_busy_honest_client_triggers_nothing(proxy, make_http_backend):
    address, backend = _app(proxy, make_http_backend)
    with H2Client(address) as client:
        for batch in range(10):
            sids = [client.request(f"/b/{batch}/{n}") for n in range(30)]
            client.conn.ping(b"%08d" % batch)
            client.flush()
            responses = client.wait(*sids)
            assert [r.status for r in responses] == [200] * 30
        # a few cancellations after the response started are normal browsing
        sids = [client.request(f"/big/{200_000}") for _ in range(5)]
        while not all(client.responses[s].body for s in sids):
            client.read_once()
        for sid in sids:
            if not client.responses[sid].ended:
                client.conn.reset_stream(sid)
        client.flush()
        assert client.get("/last").status == 200
        assert client.goaway is None
        assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in client.events)
    assert len(backend.paths()) >= 301
    assert not [k for k in counters(proxy) if k.startswith("http2.flood.")]


@pytest.mark.parametrize("limit", ["h2_max_ping_per_window"])
def test_flood_limits_are_listener_settings(proxy, make_http_backend, limit):
    address, _ = _app(proxy, make_http_backend, **{limit: 500})
    with H2Client(address) as client:
        _raw(client, b"".join(frames.ping_frame(b"%08d" % n) for n in range(200)))
        assert client.get("/").status == 200  # 200 PINGs are under this listener's 500
