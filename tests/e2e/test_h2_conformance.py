"""HTTP/2 conformance, section by section of RFC 9113 (and RFC 7541 for HPACK).

Each case sends exact frames with the raw client of ``h2_raw.py`` to a cleartext listener
(h2c with prior knowledge) and asserts what the RFC requires back: the error code of the
GOAWAY (connection error, after which the server must close) or of the RST_STREAM (stream
error, after which the connection must go on), or the frames of a correct exchange. Where
the RFC lets the endpoint pick a stream error or a connection error, both are accepted
(``expect_error``). Beyond what each case checks, the client checks every DATA frame
against the flow-control windows and the frame size it advertised (§6.9.1, §4.2).

Streams that must stay open while a test works on them ask the backend for ``/hold`` with
its ``release`` cleared: the backend does not answer until the test releases it (or the
fixture closes it), so the stream's state is known without any timing. Every read is
bounded by the socket timeout; ``ping_sync`` (a PING and its ACK) shows that the server
processed what was sent before, and is still there.
"""

from __future__ import annotations

import struct

import pytest

from tests.e2e.h2_raw import (
    ACK,
    END_HEADERS,
    END_STREAM,
    MAX_WINDOW,
    PADDED,
    PREFACE,
    PRIORITY,
    E,
    H2Raw,
    S,
    T,
    hpack_int,
    literal,
    priority_fields,
    request_headers,
    settings_payload,
)
from tests.e2e.h2_raw import frame as raw_frame
from tests.e2e.http_helpers import HOST, http_app


@pytest.fixture
def backend(make_http_backend):
    return make_http_backend("one")


@pytest.fixture
def address(proxy, backend):
    return http_app(proxy, [backend.address])


@pytest.fixture
def client(address):
    with H2Raw(address) as c:
        yield c


def hold(backend, client, sid=1, path="/hold"):
    """Open stream ``sid`` with a GET the backend does not answer until released: the
    stream stays half-closed (remote) on the server."""
    backend.release.clear()
    client.request(sid, path)


def open_upload(client, sid=1, path="/echo", extra=()):
    """Open stream ``sid`` with a POST whose body is still to come (state "open")."""
    client.request(sid, path, method="POST", extra=extra, end_stream=False)


def served(client, backend, sid, path="/after"):
    """A request on ``sid`` is answered: the connection survived what came before."""
    client.request(sid, path)
    response = client.expect_response(sid)
    assert response.status == 200
    assert bytes(response.body) == b"one GET " + path.encode()
    return response


def read_body_to(client, sid, n):
    """Read DATA on ``sid`` (past its HEADERS) until ``n`` body bytes came; the body."""
    body = client.response(sid).body
    while len(body) < n:
        client.expect_frame(T.DATA, sid, skip={T.SETTINGS, T.WINDOW_UPDATE, T.HEADERS})
    return body


def assert_malformed(client, backend, fields, *, end_stream=True):
    """A malformed request (§8.1.1) is a stream error PROTOCOL_ERROR: the stream is reset,
    nothing reaches the backend, and the connection goes on."""
    client.headers(1, fields, end_stream=end_stream)
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)
    assert backend.paths() == ["/after"]


# == §3.4 HTTP/2 connection preface ============================================================


def test_server_preface_is_a_settings_frame_first(client):
    first = client.read_frame()
    assert first is not None and first.type == T.SETTINGS, first
    assert not first.flags & ACK and first.stream_id == 0


def test_server_acks_the_client_preface_settings(client):
    client.handshake()
    assert client.settings_acks == 1


def test_invalid_preface_ends_the_connection(address):
    with H2Raw(address, preface=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n") as c:
        c.expect_goaway_or_close(E.PROTOCOL_ERROR)


def test_preface_split_over_several_writes(address, backend):
    with H2Raw(address, preface=b"", send_settings=False) as c:
        c.send(PREFACE[:16])
        c.send(PREFACE[16:20])
        c.send(PREFACE[20:] + raw_frame(T.SETTINGS, 0, 0))
        served(c, backend, 1)


@pytest.mark.parametrize("first", ["ping", "headers", "window_update"])
def test_preface_not_followed_by_settings_is_a_protocol_error(address, first):
    with H2Raw(address, send_settings=False) as c:
        if first == "ping":
            c.ping()
        elif first == "headers":
            c.request(1)
        else:
            c.window_update(0, 1000)
        c.expect_goaway(E.PROTOCOL_ERROR)


# == §4.1 Frame format ===========================================================================


def test_unknown_frame_type_on_stream_0_is_ignored(client, backend):
    client.send_frame(0xFA, 0, 0, b"extension")
    client.expect_alive()
    served(client, backend, 1)


def test_unknown_flags_on_ping_are_ignored(client):
    client.send_frame(T.PING, 0xFE, 0, b"flags-ok")  # every flag but ACK
    ack = client.expect_frame(T.PING)
    assert ack.flags & ACK and ack.payload == b"flags-ok"


def test_unknown_flags_on_headers_are_ignored(client, backend):
    client.headers(1, request_headers("/flags"), flags=0x02 | 0x10 | 0x40 | 0x80)
    assert client.expect_response(1).body == b"one GET /flags"


def test_unknown_flags_on_data_are_ignored(client):
    open_upload(client, extra=[("content-length", "5")])
    client.data(1, b"hello", end_stream=True, flags=0x02 | 0x04 | 0x10 | 0x20 | 0x40 | 0x80)
    assert client.expect_response(1).body == b"hello"


def test_unknown_flags_on_settings_are_ignored(client):
    client.handshake()
    client.send_frame(T.SETTINGS, 0xFE, 0, settings_payload({S.MAX_HEADER_LIST_SIZE: 8192}))
    client.expect_alive()
    assert client.settings_acks == 2


def test_reserved_bit_of_the_stream_id_is_ignored(client):
    block = client.encode(request_headers("/reserved"))
    client.send_frame(T.HEADERS, END_STREAM | END_HEADERS, 1, block, reserved=True)
    assert client.expect_response(1).body == b"one GET /reserved"


def test_reserved_bit_of_a_window_increment_is_ignored(client):
    client.send_frame(T.WINDOW_UPDATE, 0, 0, struct.pack(">L", 0x80000000 | 1))
    client.expect_alive()


# == §4.2 Frame size =============================================================================


def test_data_over_max_frame_size_is_a_frame_size_error(client):
    open_upload(client)
    client.data(1, b"x" * 16_385)
    client.expect_error(1, E.FRAME_SIZE_ERROR)


def test_headers_over_max_frame_size_is_a_connection_error(client):
    # a frame carrying a field block alters the connection's HPACK state: connection error
    block = client.encode(request_headers("/big")) + literal(b"x-big", b"a" * 16_400)
    client.headers(1, block=block)
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_settings_over_max_frame_size_is_a_connection_error(client):
    client.send_frame(T.SETTINGS, 0, 0, settings_payload([(0xF0F0, 1)] * 2731))  # 16 386 B
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_frame_of_exactly_max_frame_size_is_accepted(client):
    body = bytes(range(256)) * 64  # 16 384 bytes
    open_upload(client, extra=[("content-length", str(len(body)))])
    client.data(1, body, end_stream=True)
    assert bytes(client.expect_response(1).body) == body


def test_server_frames_fit_the_client_max_frame_size(client):
    client.request(1, "/big/100000")
    response = client.expect_response(1)
    assert len(response.body) == 100_000
    assert max(response.data_frames) <= 16_384


def test_server_may_use_a_larger_client_max_frame_size(address):
    with H2Raw(address, settings={S.MAX_FRAME_SIZE: 65_536,
                                  S.INITIAL_WINDOW_SIZE: 1 << 20}) as c:
        c.window_update(0, 1 << 20)
        c.request(1, "/big/100000")
        response = c.expect_response(1)
        assert len(response.body) == 100_000
        assert max(response.data_frames) <= 65_536


# == §4.3 Field section compression ==============================================================


def test_undecodable_header_block_is_a_compression_error(client):
    client.headers(1, block=b"\x00\x05abc")  # a literal cut short
    client.expect_goaway(E.COMPRESSION_ERROR)


INTERLOPERS = {
    "data-same-stream": lambda c: c.data(1, b"x"),
    "ping": lambda c: c.ping(),
    "priority-same-stream": lambda c: c.priority(1, 0),
    "rst-same-stream": lambda c: c.rst_stream(1),
    "window-update": lambda c: c.window_update(0, 100),
    "settings": lambda c: c.settings({}),
    "headers-same-stream": lambda c: c.request(1),
    "headers-other-stream": lambda c: c.request(3),
    "unknown-type": lambda c: c.send_frame(0xFA, 0, 1, b"ext"),  # §5.5 too
}


@pytest.mark.parametrize("frame", list(INTERLOPERS))
def test_other_frame_inside_a_header_block_is_a_protocol_error(client, frame):
    block = client.encode(request_headers("/split"))
    client.headers(1, block=block[:3], end_headers=False)
    INTERLOPERS[frame](client)
    client.continuation(1, block[3:])
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("other", [3, 0])
def test_continuation_on_another_stream_is_a_protocol_error(client, other):
    block = client.encode(request_headers("/split"))
    client.headers(1, block=block[:3], end_headers=False)
    client.continuation(other, block[3:])
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_header_block_of_a_reset_stream_still_updates_the_table(client, backend):
    # stream 1 is malformed (uppercase name) but its block adds "x-shared: 1" to the table,
    # which the block of stream 3 then refers to by index
    client.headers(1, [*request_headers("/bad"), ("x-shared", "1"), ("X-Upper", "1")])
    client.expect_rst(1, E.PROTOCOL_ERROR)
    assert (b"x-shared", b"1") in client.encoder.header_table.dynamic_entries
    block = client.encode([*request_headers("/good"), ("x-shared", "1")])
    client.headers(3, block=block)
    assert client.expect_response(3).body == b"one GET /good"
    assert backend.last().header("x-shared") == "1"


# == §5.1 Stream states ==========================================================================

# -- idle --


@pytest.mark.parametrize("kind", ["data", "rst_stream", "window_update", "continuation"])
def test_frame_on_idle_stream_is_a_protocol_error(client, kind):
    if kind == "data":
        client.data(1, b"x")
    elif kind == "rst_stream":
        client.rst_stream(1)
    elif kind == "window_update":
        client.window_update(1, 100)
    else:
        client.continuation(1, client.encode(request_headers()))
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_priority_on_idle_stream_is_allowed(client, backend):
    client.priority(3, 0, weight=200)
    client.expect_alive()
    served(client, backend, 1, "/one")
    served(client, backend, 3, "/three")


def test_data_on_idle_server_stream_is_a_protocol_error(client):
    client.data(2, b"x")
    client.expect_goaway(E.PROTOCOL_ERROR)


# -- half-closed (remote) --


def test_data_on_half_closed_remote_stream_is_stream_closed(client, backend):
    hold(backend, client)
    client.data(1, b"late")
    client.expect_rst(1, E.STREAM_CLOSED)
    served(client, backend, 3)


def test_headers_on_half_closed_remote_stream_is_stream_closed(client, backend):
    hold(backend, client)
    client.headers(1, [("x-late", "1")])
    client.expect_rst(1, E.STREAM_CLOSED)
    served(client, backend, 3)


def test_half_closed_remote_accepts_window_update_and_priority(client, backend):
    hold(backend, client)
    client.window_update(1, 1000)
    client.priority(1, 0, weight=32)
    client.expect_alive()
    backend.release.set()
    assert client.expect_response(1).body == b"one GET /hold"


def test_half_closed_remote_accepts_rst_stream(client, backend):
    hold(backend, client)
    client.rst_stream(1, E.CANCEL)
    client.expect_alive()
    backend.release.set()
    served(client, backend, 3)
    assert 1 not in client.responses  # nothing was sent on stream 1


# -- closed --


def test_data_after_end_stream_both_ways_is_stream_closed(client):
    client.request(1)
    client.expect_response(1)
    client.data(1, b"late")
    client.expect_goaway(E.STREAM_CLOSED)


def test_headers_after_end_stream_both_ways_is_stream_closed(client):
    client.request(1)
    client.expect_response(1)
    client.request(1)
    client.expect_goaway(E.STREAM_CLOSED)


def test_rst_stream_on_a_stream_just_closed_is_ignored(client, backend):
    # §5.1 closed: RST_STREAM (and WINDOW_UPDATE) may arrive after END_STREAM both ways
    served(client, backend, 1)
    client.rst_stream(1, E.CANCEL)
    client.expect_alive()
    served(client, backend, 3)


def test_data_after_client_rst_stream_is_stream_closed(client, backend):
    hold(backend, client)
    client.rst_stream(1)
    client.data(1, b"late")
    client.expect_error(1, E.STREAM_CLOSED)


AFTER_RESET = {
    "data": lambda c: c.data(1, b"more body"),
    "data-end": lambda c: c.data(1, b"end", end_stream=True),
    "trailers": lambda c: c.headers(1, [("x-trailer", "1")]),
    "window_update": lambda c: c.window_update(1, 1000),
    "rst_stream": lambda c: c.rst_stream(1),
    "priority": lambda c: c.priority(1, 0),
}


@pytest.mark.parametrize("frame", list(AFTER_RESET))
def test_frames_after_the_server_rst_stream_are_ignored(client, backend, frame):
    # the request is malformed, so the server resets the stream while it is still open
    open_upload(client, extra=[("X-Upper", "1")])
    client.expect_rst(1, E.PROTOCOL_ERROR)
    AFTER_RESET[frame](client)
    client.expect_alive()
    served(client, backend, 3)


# == §5.1.1 Stream identifiers ===================================================================


def test_even_stream_id_from_client_is_a_protocol_error(client):
    client.request(2)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_lower_stream_id_than_a_previous_one_is_a_protocol_error(client, backend):
    served(client, backend, 5, "/five")
    client.request(3)
    client.expect_goaway(E.PROTOCOL_ERROR, last_stream_id=5)


def test_lower_stream_id_than_an_open_one_is_a_protocol_error(client, backend):
    hold(backend, client, 5)
    client.request(3)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_stream_ids_may_skip(client, backend):
    served(client, backend, 1, "/one")
    served(client, backend, 11, "/eleven")


# == §5.1.2 Stream concurrency ===================================================================


def test_streams_over_max_concurrent_streams_are_refused(proxy, black_hole):
    # the backend never accepts: every stream stays open on the server
    address = http_app(proxy, [black_hole.address])
    with H2Raw(address) as c:
        c.handshake()
        limit = c.server_settings[S.MAX_CONCURRENT_STREAMS]
        assert limit <= 200
        for n in range(limit):
            c.request(2 * n + 1)
        extra = 2 * limit + 1
        c.request(extra)
        frame_ = c.next_frame()
        assert frame_ is not None
        if frame_.type == T.RST_STREAM:
            assert frame_.stream_id == extra
            assert frame_.code in (E.REFUSED_STREAM, E.PROTOCOL_ERROR), frame_
            c.expect_alive()
        else:
            assert frame_.type == T.GOAWAY and frame_.code == E.PROTOCOL_ERROR, frame_


# == §5.3 / §6.3 Priority ========================================================================


def test_headers_depending_on_itself_is_a_protocol_error(client, backend):
    client.request(1, "/self", priority=priority_fields(1))
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)
    assert backend.paths() == ["/after"]


def test_priority_depending_on_itself_is_a_protocol_error(client, backend):
    hold(backend, client)
    client.priority(1, 1)
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)


def test_priority_on_idle_stream_depending_on_itself_is_a_protocol_error(client):
    client.priority(3, 3)
    client.expect_error(3, E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [4, 6])
def test_priority_of_wrong_length_is_a_frame_size_error(client, backend, length):
    hold(backend, client)
    client.send_frame(T.PRIORITY, 0, 1, b"\0" * length)
    client.expect_rst(1, E.FRAME_SIZE_ERROR)
    served(client, backend, 3)


def test_priority_on_stream_0_is_a_protocol_error(client):
    client.priority(0, 1)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_priority_on_closed_stream_is_allowed(client, backend):
    served(client, backend, 1)
    client.priority(1, 0, weight=64)
    client.expect_alive()


def test_priority_with_unknown_dependency_is_allowed(client, backend):
    client.request(1, "/dep", priority=priority_fields(99, exclusive=True))
    assert client.expect_response(1).body == b"one GET /dep"


# == §5.4 Error handling =========================================================================


def test_stream_error_does_not_disturb_another_stream(client, backend):
    hold(backend, client, 1)
    client.headers(3, [*request_headers("/bad"), ("Upper", "1")])
    client.expect_rst(3, E.PROTOCOL_ERROR)
    backend.release.set()
    assert client.expect_response(1).body == b"one GET /hold"
    served(client, backend, 5)
    assert backend.paths() == ["/hold", "/after"]


def test_interleaved_streams_with_one_reset(client, backend):
    open_upload(client, 1)
    client.data(1, b"part one, ")
    client.headers(3, [*request_headers("/bad"), ("connection", "close")])
    client.request(5, "/five")
    client.data(1, b"part two", end_stream=True)
    client.expect_rst(3, E.PROTOCOL_ERROR)
    assert client.expect_response(5).body == b"one GET /five"
    assert client.expect_response(1).body == b"part one, part two"


def test_connection_error_goaway_names_the_last_processed_stream(client, backend):
    served(client, backend, 1)
    served(client, backend, 3, "/three")
    client.data(0, b"x")
    client.expect_goaway(E.PROTOCOL_ERROR, last_stream_id=3)


def test_no_frame_follows_on_a_stream_the_client_reset(address, backend):
    # §6.4: after receiving RST_STREAM, the receiver MUST NOT send more frames on it
    with H2Raw(address, settings={S.INITIAL_WINDOW_SIZE: 100}, auto_window=False) as c:
        c.request(1, "/big/100000")
        read_body_to(c, 1, 100)  # the window: the server now waits for more
        c.rst_stream(1, E.CANCEL)
        c.window_update(0, 1 << 20)
        mark = len(c.log)
        served(c, backend, 3)
        c.ping_sync()
        assert not [f for f in c.log[mark:] if f.stream_id == 1], c.log[mark:]


def test_unknown_error_code_in_rst_stream_is_accepted(client, backend):
    hold(backend, client)
    client.rst_stream(1, 0xDEAD)  # §7: no special behaviour for unknown codes
    client.expect_alive()
    served(client, backend, 3)


# == §5.5 Extending HTTP/2 =======================================================================


def test_unknown_frame_type_on_idle_stream_is_ignored(client, backend):
    client.send_frame(0xFB, 0xFF, 7, b"ext")
    client.expect_alive()
    served(client, backend, 1)


def test_unknown_frame_type_between_frames_of_a_stream_is_ignored(client):
    open_upload(client, extra=[("content-length", "10")])
    client.send_frame(0xFC, 0, 1, b"ext")
    client.data(1, b"hello")
    client.send_frame(0xFC, 0x1, 1, b"ext")  # not END_STREAM: it is no DATA frame
    client.data(1, b"world", end_stream=True)
    assert client.expect_response(1).body == b"helloworld"


def test_unknown_setting_is_ignored(client, backend):
    client.settings({0xABCD: 42})
    client.expect_alive()
    assert client.settings_acks == 2
    served(client, backend, 1)


# == §6.1 DATA ===================================================================================


def test_data_on_stream_0_is_a_protocol_error(client):
    client.data(0, b"x")
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("extra", [0, 10])
def test_data_padding_not_shorter_than_payload_is_a_protocol_error(client, extra):
    open_upload(client)
    payload = bytes([5 + extra]) + b"abcd"  # a payload of 5 bytes, padding 5 or 15
    client.send_frame(T.DATA, PADDED, 1, payload)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_padded_data_is_accepted(client, backend):
    open_upload(client, extra=[("content-length", "5")])
    client.data(1, b"hello", padding=10, end_stream=True)
    assert client.expect_response(1).body == b"hello"
    assert backend.last().body == b"hello"


def test_padded_data_with_only_padding_is_accepted(client):
    open_upload(client)
    client.data(1, b"abc")
    client.data(1, b"", padding=20, end_stream=True)
    assert client.expect_response(1).body == b"abc"


def test_empty_data_with_end_stream_ends_the_request(client, backend):
    open_upload(client)
    client.data(1, b"", end_stream=True)
    assert client.expect_response(1).body == b""
    assert backend.last().body == b""


def test_padded_data_without_pad_length_is_a_frame_size_error(client):
    open_upload(client)
    client.send_frame(T.DATA, PADDED, 1, b"")
    client.expect_error(1, E.FRAME_SIZE_ERROR)


def test_data_beyond_the_stream_window_is_a_flow_control_error(client):
    # 65 536 bytes against the default window of 65 535, in one write: the server cannot
    # have opened the window before the last frame arrives
    client.handshake()
    assert client.server_settings.get(S.INITIAL_WINDOW_SIZE, 65_535) == 65_535
    block = client.encode(request_headers("/echo", method="POST"))
    frames = [raw_frame(T.HEADERS, END_HEADERS, 1, block)]
    frames += [raw_frame(T.DATA, 0, 1, b"x" * 16_384)] * 4
    client.send(b"".join(frames))
    client.expect_error(1, E.FLOW_CONTROL_ERROR)


# == §6.2 HEADERS ================================================================================


def test_headers_on_stream_0_is_a_protocol_error(client):
    client.request(0)
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("extra", [0, 10])
def test_headers_padding_not_shorter_than_payload_is_a_protocol_error(client, extra):
    block = client.encode(request_headers())
    payload = bytes([len(block) + 1 + extra]) + block  # padding covers the whole payload
    client.send_frame(T.HEADERS, END_STREAM | END_HEADERS | PADDED, 1, payload)
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("padded,prioritized", [(True, False), (False, True), (True, True)])
def test_padded_and_prioritized_headers_are_accepted(client, padded, prioritized):
    client.request(1, "/pp", padding=7 if padded else None,
                   priority=priority_fields(0, 256) if prioritized else None)
    assert client.expect_response(1).body == b"one GET /pp"


def test_headers_too_short_for_priority_fields_is_a_frame_size_error(client):
    client.send_frame(T.HEADERS, END_STREAM | END_HEADERS | PRIORITY, 1, b"\0\0\0")
    client.expect_goaway(E.FRAME_SIZE_ERROR)


# == §6.4 RST_STREAM =============================================================================


def test_rst_stream_on_stream_0_is_a_protocol_error(client):
    client.rst_stream(0)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_rst_stream_on_idle_stream_is_a_protocol_error(client, backend):
    hold(backend, client, 1)
    client.rst_stream(3)
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 5])
def test_rst_stream_of_wrong_length_is_a_frame_size_error(client, backend, length):
    hold(backend, client)
    client.send_frame(T.RST_STREAM, 0, 1, b"\0" * length)
    client.expect_goaway(E.FRAME_SIZE_ERROR)


# == §6.5 SETTINGS ===============================================================================


def test_settings_ack_with_payload_is_a_frame_size_error(client):
    client.handshake()
    client.send_frame(T.SETTINGS, ACK, 0, settings_payload({S.ENABLE_PUSH: 0}))
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_settings_on_a_stream_is_a_protocol_error(client):
    client.send_frame(T.SETTINGS, 0, 1, settings_payload({S.ENABLE_PUSH: 0}))
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [3, 7])
def test_settings_length_not_multiple_of_6_is_a_frame_size_error(client, length):
    client.send_frame(T.SETTINGS, 0, 0, b"\0\x03\0\0\0\x64\0"[:length])
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_enable_push_of_2_is_a_protocol_error(client):
    client.settings({S.ENABLE_PUSH: 2})
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_initial_window_size_over_2_31_is_a_flow_control_error(client):
    client.settings({S.INITIAL_WINDOW_SIZE: 2**31})
    client.expect_goaway(E.FLOW_CONTROL_ERROR)


@pytest.mark.parametrize("value", [16_383, 2**24])
def test_max_frame_size_out_of_range_is_a_protocol_error(client, value):
    client.settings({S.MAX_FRAME_SIZE: value})
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_boundary_setting_values_are_accepted(client, backend):
    client.settings({S.MAX_FRAME_SIZE: 2**24 - 1, S.INITIAL_WINDOW_SIZE: MAX_WINDOW,
                     S.ENABLE_PUSH: 1, S.HEADER_TABLE_SIZE: 0, S.MAX_CONCURRENT_STREAMS: 0})
    client.settings({S.MAX_FRAME_SIZE: 16_384, S.ENABLE_PUSH: 0, S.INITIAL_WINDOW_SIZE: 65_535})
    client.expect_alive()
    assert client.settings_acks == 3
    served(client, backend, 1)


def test_server_acks_every_settings_frame(client):
    client.settings({S.MAX_HEADER_LIST_SIZE: 10_000})
    client.settings({})
    client.expect_alive()
    assert client.settings_acks == 3  # the preface's and these two


def test_header_table_size_0_makes_the_server_shrink_its_table(address):
    with H2Raw(address, settings={S.HEADER_TABLE_SIZE: 0}) as c:
        c.request(1, "/a")
        first = c.expect_frame(T.HEADERS, 1)
        # RFC 7541 §4.2: the next block starts with a dynamic table size update (to 0)
        assert first.payload[:1] == hpack_int(0, 5, 0x20), first.payload[:8]
        c.expect_response(1)
        c.request(3, "/b")
        assert c.expect_response(3).body == b"one GET /b"
        assert len(c.decoder.header_table.dynamic_entries) == 0


# == §6.5.3 / §6.9.2 Initial window size changes =================================================


def test_initial_window_change_applies_to_open_streams(address):
    with H2Raw(address, settings={S.INITIAL_WINDOW_SIZE: 0}, auto_window=False) as c:
        c.request(1, "/big/1000")
        c.expect_frame(T.HEADERS, 1)
        seen = c.ping_sync()
        assert not [f for f in seen if f.type == T.DATA], seen  # a window of 0: no DATA
        c.settings({S.INITIAL_WINDOW_SIZE: 100})
        response = c.response(1)
        read_body_to(c, 1, 100)
        assert len(response.body) == 100  # the client's check: never over the window
        c.window_update(1, 900)
        c.expect_response(1)
        assert len(response.body) == 1000


def test_initial_window_decrease_can_make_a_window_negative(address):
    # §6.9.2: the server must wait until WINDOW_UPDATEs make the window positive again
    with H2Raw(address, settings={S.INITIAL_WINDOW_SIZE: 100}, auto_window=False) as c:
        c.request(1, "/big/1000")
        response = c.response(1)
        read_body_to(c, 1, 100)
        c.settings({S.INITIAL_WINDOW_SIZE: 50})  # the stream's window: 0 - 50 = -50
        c.ping_sync()  # the ACK came: the client's window is -50 too
        assert c.stream_windows[1] == -50
        c.window_update(1, 60)  # -50 + 60: 10 bytes may go
        read_body_to(c, 1, 110)
        c.window_update(1, 890)
        c.expect_response(1)
        assert len(response.body) == 1000


def test_initial_window_change_overflowing_a_stream_is_a_flow_control_error(client, backend):
    hold(backend, client)
    client.window_update(1, MAX_WINDOW - 65_535)  # the stream's window is now 2^31-1
    client.expect_alive()
    client.settings({S.INITIAL_WINDOW_SIZE: 65_536})
    client.expect_goaway(E.FLOW_CONTROL_ERROR)


# == §6.6 PUSH_PROMISE ===========================================================================


@pytest.mark.parametrize("sid", [1, 0])
def test_push_promise_from_a_client_is_a_protocol_error(client, backend, sid):
    if sid:
        hold(backend, client)
    block = client.encode(request_headers("/pushed"))
    client.send_frame(T.PUSH_PROMISE, END_HEADERS, sid, struct.pack(">L", 2) + block)
    client.expect_goaway(E.PROTOCOL_ERROR)


# == §6.7 PING ===================================================================================


def test_ping_is_answered_with_the_same_payload(client):
    client.ping(b"\x00\x01\x02\x03\xfc\xfd\xfe\xff")
    ack = client.expect_frame(T.PING)
    assert ack.flags == ACK and ack.stream_id == 0
    assert ack.payload == b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"


def test_ping_on_a_stream_is_a_protocol_error(client):
    client.send_frame(T.PING, 0, 1, b"12345678")
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("length", [0, 7, 9])
def test_ping_of_wrong_length_is_a_frame_size_error(client, length):
    client.send_frame(T.PING, 0, 0, b"p" * length)
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_ping_ack_is_not_answered(client):
    client.ping(b"ackacked", ack=True)
    seen = client.ping_sync(b"realping")
    assert not seen
    assert client.pings == [b"realping"]


# == §6.8 GOAWAY =================================================================================


def test_goaway_on_a_stream_is_a_protocol_error(client):
    client.send_frame(T.GOAWAY, 0, 1, struct.pack(">LL", 0, 0))
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_goaway_shorter_than_8_bytes_is_a_frame_size_error(client):
    client.send_frame(T.GOAWAY, 0, 0, b"\0" * 7)
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_client_goaway_lets_in_flight_streams_finish(client, backend):
    hold(backend, client)
    client.goaway(0, E.NO_ERROR, b"bye")
    seen = client.ping_sync()
    assert not [f for f in seen if f.type in (T.RST_STREAM, T.GOAWAY)], seen
    backend.release.set()
    assert client.expect_response(1).body == b"one GET /hold"


def test_client_goaway_with_unknown_error_code(client, backend):
    hold(backend, client)
    client.goaway(0, 0xBEEF, b"debug data")
    backend.release.set()
    assert client.expect_response(1).body == b"one GET /hold"


# == §6.9 WINDOW_UPDATE ==========================================================================


def test_window_increment_0_on_a_stream_is_a_protocol_error(client, backend):
    open_upload(client)
    client.window_update(1, 0)
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)


def test_window_increment_0_on_the_connection_is_a_protocol_error(client):
    client.window_update(0, 0)
    client.expect_goaway(E.PROTOCOL_ERROR)


@pytest.mark.parametrize("sid,length", [(0, 3), (0, 5), (1, 3)])
def test_window_update_of_wrong_length_is_a_frame_size_error(client, backend, sid, length):
    if sid:
        hold(backend, client)
    client.send_frame(T.WINDOW_UPDATE, 0, sid, b"\0\0\0\x01\0"[:length])
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_stream_window_overflow_is_a_flow_control_error(client, backend):
    hold(backend, client)
    client.window_update(1, MAX_WINDOW - 65_535)  # exactly 2^31-1: allowed
    client.expect_alive()
    client.window_update(1, 1)
    client.expect_rst(1, E.FLOW_CONTROL_ERROR)
    served(client, backend, 3)


def test_connection_window_overflow_is_a_flow_control_error(client):
    client.window_update(0, MAX_WINDOW - 65_535)  # exactly 2^31-1: allowed
    client.expect_alive()
    client.window_update(0, 1)
    client.expect_goaway(E.FLOW_CONTROL_ERROR)


def test_window_update_on_a_closed_stream_is_not_an_error(client, backend):
    served(client, backend, 1)
    client.window_update(1, 1000)
    client.expect_alive()


# == §6.9.1 Flow control =========================================================================


def test_server_data_follows_a_small_stream_window(address):
    with H2Raw(address, settings={S.INITIAL_WINDOW_SIZE: 100}, auto_window=False) as c:
        c.request(1, "/big/1000")
        response = c.response(1)
        while not response.ended:
            fr = c.expect_frame(T.DATA, 1, skip={T.SETTINGS, T.WINDOW_UPDATE, T.HEADERS})
            assert len(fr.payload) <= 100
            if c.stream_windows[1] == 0 and not fr.end_stream:
                c.window_update(1, 100)
        assert len(response.body) == 1000
        assert sum(response.data_frames) == 1000


def test_server_data_follows_the_connection_window(address, backend):
    with H2Raw(address, settings={S.INITIAL_WINDOW_SIZE: 1 << 20}, auto_window=False) as c:
        c.request(1, "/big/100000")
        response = c.response(1)
        read_body_to(c, 1, 65_535)
        assert len(response.body) == 65_535  # the connection window, exactly
        c.window_update(0, 100_000 - 65_535)
        c.expect_response(1)
        assert bytes(response.body) == backend.payload(100_000)


def test_upload_larger_than_the_server_windows(client, backend):
    client.handshake()
    body = backend.payload(300_000)
    open_upload(client, extra=[("content-length", str(len(body)))])
    client.send_body(1, body)
    response = client.expect_response(1)
    assert bytes(response.body) == body


def test_padding_is_given_back_to_the_flow_control_windows(client, backend):
    # §6.1: the whole DATA payload, padding included, counts against the windows; a server
    # that kept the padding would stall this upload: 1.2 MB of padding, more than the
    # server's connection window (1 MiB) and many times its stream window
    client.handshake()
    body = backend.payload(300_000)
    open_upload(client, extra=[("content-length", str(len(body)))])
    pos = 0
    while pos < len(body):
        room = min(client.send_conn_window, client.sendable_stream(1), 16_384) - 256
        if room < 64:
            assert client.read_frame() is not None, "closed while waiting for window"
            continue
        chunk = body[pos : pos + min(room, 64)]
        pos += len(chunk)
        client.data(1, chunk, padding=255, end_stream=pos >= len(body))
    assert bytes(client.expect_response(1).body) == body


# == §6.10 CONTINUATION ==========================================================================


def test_continuation_without_headers_is_a_protocol_error(client, backend):
    served(client, backend, 1)
    client.continuation(1, client.encode([("x-a", "1")]))
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_continuation_after_end_headers_is_a_protocol_error(client, backend):
    hold(backend, client)
    client.continuation(1, client.encode([("x-a", "1")]))
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_header_block_split_over_continuation_frames(client, backend):
    block = client.encode([*request_headers("/split"), ("x-long", "v" * 300)])
    client.headers(1, block=block[:4], end_headers=False)
    client.continuation(1, block[4:9], end_headers=False)
    client.continuation(1, b"", end_headers=False)
    client.continuation(1, block[9:])
    assert client.expect_response(1).body == b"one GET /split"
    assert backend.last().header("x-long") == "v" * 300


def test_continuation_then_data(client):
    block = client.encode(request_headers("/echo", method="POST",
                                          extra=[("content-length", "4")]))
    client.headers(1, block=block[:2], end_stream=False, end_headers=False)
    client.continuation(1, block[2:])
    client.data(1, b"body", end_stream=True)
    assert client.expect_response(1).body == b"body"


# == §8.1 HTTP message framing ===================================================================


def test_data_shorter_than_content_length_is_a_protocol_error(client):
    open_upload(client, extra=[("content-length", "10")])
    client.data(1, b"short", end_stream=True)
    client.expect_rst(1, E.PROTOCOL_ERROR)


def test_data_longer_than_content_length_is_a_protocol_error(client):
    open_upload(client, extra=[("content-length", "3")])
    client.data(1, b"too long")
    client.expect_rst(1, E.PROTOCOL_ERROR)


def test_content_length_on_a_stream_without_data_is_a_protocol_error(client, backend):
    assert_malformed(client, backend,
                     request_headers("/x", method="POST", extra=[("content-length", "5")]))


def test_second_headers_without_end_stream_is_a_protocol_error(client):
    open_upload(client)
    client.headers(1, [("x-not-trailers", "1")], end_stream=False)
    client.expect_rst(1, E.PROTOCOL_ERROR)


def test_request_trailers_are_accepted(client, backend):
    open_upload(client)
    client.data(1, b"abc")
    client.headers(1, [("x-checksum", "900150983cd24fb0")])
    assert client.expect_response(1).body == b"abc"
    assert ("x-checksum", "900150983cd24fb0") in backend.last().trailers


def test_trailers_after_a_content_length_body_are_accepted(client, backend):
    open_upload(client, extra=[("content-length", "3")])
    client.data(1, b"abc")
    client.headers(1, [("x-checksum", "1")])
    assert client.expect_response(1).body == b"abc"


BAD_TRAILERS = {
    "pseudo-header": (b":path", b"/other"),  # §8.1
    "uppercase-name": (b"X-Upper", b"1"),  # §8.2
    "connection-specific": (b"connection", b"close"),  # §8.2.2
    "crlf-in-value": (b"x-t", b"a\r\nx-injected: 1"),  # §8.2.1
}


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("field", list(BAD_TRAILERS))
def test_malformed_trailers_are_a_protocol_error(client, framing, field):
    open_upload(client, extra=[] if framing == "chunked" else [("content-length", "3")])
    client.data(1, b"abc")
    name, value = BAD_TRAILERS[field]
    client.headers(1, block=literal(name, value))
    client.expect_rst(1, E.PROTOCOL_ERROR)


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


@pytest.mark.parametrize("value", ["3", "3, 3", "3,3"])
def test_data_beyond_a_content_length_list_is_a_protocol_error(client, backend, value):
    # whatever form the content-length takes (RFC 9110 §8.6 lets a list of equal values
    # stand for one), the DATA must add up to it (§8.1.1); bytes beyond it must never reach
    # the backend, where they would read as another request
    open_upload(client, extra=[("content-length", value)])
    client.data(1, b"abc" + SMUGGLED, end_stream=True)
    stream = client.response(1)
    while not stream.ended:  # reset, or (wrongly) answered
        fr = client.read_frame()
        assert fr is not None and fr.type != T.GOAWAY, client.log[-10:]
    served(client, backend, 3)
    outcome = (f"reset {E(stream.reset).name}" if stream.reset is not None
               else f"answered {stream.status}")
    assert stream.reset == E.PROTOCOL_ERROR and "/smuggled" not in backend.paths(), (
        f"stream 1 was {outcome}; the backend received {backend.paths()}")


def test_early_response_may_end_the_request_with_no_error(client):
    client.request(1, "/", method="POST", authority="unknown.test", end_stream=False)
    response = client.expect_response(1)
    assert response.status == 404
    seen = client.ping_sync()
    resets = [f for f in seen if f.type == T.RST_STREAM]
    assert all(f.stream_id == 1 and f.code == E.NO_ERROR for f in resets), resets


def test_informational_response_precedes_the_final_one(client):
    open_upload(client, extra=[("content-length", "5"), ("expect", "100-continue")])
    first = client.expect_frame(T.HEADERS, 1)
    assert first.headers[0] == (b":status", b"100") and not first.end_stream
    client.data(1, b"hello", end_stream=True)
    response = client.expect_response(1)
    assert response.status == 200 and response.body == b"hello"


def test_response_fields_are_lowercase_without_connection_fields(client, backend):
    backend.response_headers = [("Connection", "X-Hop"), ("X-Hop", "1"),
                                ("Keep-Alive", "timeout=5"), ("X-Mixed-Case", "v")]
    client.request(1, "/fields")
    response = client.expect_response(1)
    assert response.headers[0] == (b":status", b"200")  # §8.3: pseudo-headers first
    names = [n for n, _ in response.headers]
    assert all(n == n.lower() for n in names), names
    for hop in (b"connection", b"keep-alive", b"x-hop", b"transfer-encoding", b"upgrade"):
        assert hop not in names
    assert response.header(b"x-mixed-case") == b"v"


def test_response_trailers_end_the_stream_without_pseudo_headers(client):
    client.request(1, "/chunked")
    response = client.expect_response(1)
    assert response.body == b"hello chunked world"
    assert response.trailers is not None
    assert all(not n.startswith(b":") for n, _ in response.trailers)
    assert (b"x-checksum", b"abc123") in response.trailers


def test_head_response_has_no_content(client):
    client.request(1, "/h", method="HEAD")
    response = client.expect_response(1)
    assert response.body == b""
    assert response.header(b"content-length") == b"%d" % len(b"one HEAD /h")


# == §8.2 HTTP fields ============================================================================


def test_uppercase_field_name_is_a_protocol_error(client, backend):
    assert_malformed(client, backend, [*request_headers(), ("X-Upper", "1")])


@pytest.mark.parametrize("name", ["connection", "keep-alive", "proxy-connection",
                                  "transfer-encoding", "upgrade"])
def test_connection_specific_field_is_a_protocol_error(client, backend, name):
    assert_malformed(client, backend, [*request_headers(), (name, "x")])


def test_te_other_than_trailers_is_a_protocol_error(client, backend):
    assert_malformed(client, backend, [*request_headers(), ("te", "gzip")])


def test_te_trailers_is_accepted(client, backend):
    client.request(1, "/te", extra=[("te", "trailers")])
    assert client.expect_response(1).body == b"one GET /te"


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\x00b", b" a", b"a\t"],
                         ids=["cr", "lf", "nul", "leading-space", "trailing-tab"])
def test_invalid_field_value_is_a_protocol_error(client, backend, value):
    block = client.encode(request_headers()) + literal(b"x-bad", value)
    client.headers(1, block=block)
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)
    assert backend.paths() == ["/after"]


def test_field_value_with_inner_whitespace_and_obs_text_is_accepted(client, backend):
    block = client.encode(request_headers("/v")) + literal(b"x-v", b"a b\tc \xe9")
    client.headers(1, block=block)
    client.expect_response(1)
    assert backend.last().header("x-v") == "a b\tc \xe9"


@pytest.mark.parametrize("name", [b"x y", b"x:y", b"x\x7fy", b"x\xe9y", b"x\x00y"],
                         ids=["space", "colon", "del", "high", "nul"])
def test_invalid_field_name_is_a_protocol_error(client, backend, name):
    block = client.encode(request_headers()) + literal(name, b"v")
    client.headers(1, block=block)
    client.expect_rst(1, E.PROTOCOL_ERROR)
    served(client, backend, 3)
    assert backend.paths() == ["/after"]


def test_cookie_crumbs_are_joined(client, backend):
    client.request(1, "/c", extra=[("cookie", "a=1"), ("x-other", "o"), ("cookie", "b=2"),
                                   ("cookie", "c=3")])
    client.expect_response(1)
    assert backend.last().header_all("cookie") == ["a=1; b=2; c=3"]


def test_host_differing_from_authority_is_malformed(client, backend):
    # §8.3.1: a server SHOULD treat the request as malformed
    assert_malformed(client, backend, [*request_headers(), ("host", "other.test")])


# == §8.3 Pseudo-header fields ===================================================================

GET = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", HOST)]


def _without(name):
    return [f for f in GET if f[0] != name]


PSEUDO_CASES = {
    "missing-method": _without(":method"),
    "missing-scheme": _without(":scheme"),
    "missing-path": _without(":path"),
    "unknown-pseudo": [*GET, (":foo", "bar")],
    "protocol-pseudo": [*GET, (":protocol", "websocket")],
    "status-in-request": [*GET, (":status", "200")],
    "duplicate-method": [*GET, (":method", "GET")],
    "duplicate-scheme": [*GET, (":scheme", "http")],
    "duplicate-path": [*GET, (":path", "/")],
    "duplicate-authority": [*GET, (":authority", HOST)],
    "pseudo-after-regular": [*_without(":path"), ("x-a", "1"), (":path", "/")],
    "empty-path": [*_without(":path"), (":path", "")],
    "path-not-absolute": [*_without(":path"), (":path", "relative")],
    "asterisk-path-for-get": [*_without(":path"), (":path", "*")],
}


@pytest.mark.parametrize("case", list(PSEUDO_CASES))
def test_malformed_pseudo_headers_are_a_protocol_error(client, backend, case):
    assert_malformed(client, backend, PSEUDO_CASES[case])


def test_options_asterisk_is_accepted(client, backend):
    # not malformed (§8.3.1): answered, whatever the routing makes of it
    client.request(1, "*", method="OPTIONS")
    client.expect_response(1)


# -- §8.3.1 :authority --


def test_authority_becomes_host_at_the_backend(client, backend):
    client.request(1, "/auth")
    client.expect_response(1)
    assert backend.last().header_all("host") == [HOST]


def test_host_field_without_authority_is_used(client, backend):
    client.request(1, "/hostonly", authority=None, extra=[("host", HOST)])
    assert client.expect_response(1).body == b"one GET /hostonly"
    assert backend.last().header_all("host") == [HOST]


def test_authority_and_equal_host_make_one_host_line(client, backend):
    client.request(1, "/both", extra=[("host", HOST)])
    client.expect_response(1)
    assert backend.last().header_all("host") == [HOST]


# == RFC 9218 §7.1 PRIORITY_UPDATE (the server advertises SETTINGS_NO_RFC7540_PRIORITIES) ==


def priority_update(client, sid, prioritized, field=b"u=0"):
    client.send_frame(0x10, 0, sid, struct.pack(">L", prioritized) + field)


def test_priority_update_on_a_stream_is_a_protocol_error(client):
    priority_update(client, 1, 1)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_priority_update_for_stream_0_is_a_protocol_error(client):
    priority_update(client, 0, 0)
    client.expect_goaway(E.PROTOCOL_ERROR)


def test_priority_update_too_short_is_a_frame_size_error(client):
    client.send_frame(0x10, 0, 0, b"\0\0\0")
    client.expect_goaway(E.FRAME_SIZE_ERROR)


def test_priority_update_for_an_idle_stream_is_accepted(client, backend):
    priority_update(client, 0, 1, b"u=7, i")
    client.expect_alive()
    served(client, backend, 1)
    client.request(3, "/prio", extra=[("priority", "u=0")])
    assert client.expect_response(3).body == b"one GET /prio"


# == RFC 7541 HPACK ==============================================================================


def test_table_size_update_over_the_setting_is_a_compression_error(client):
    client.handshake()
    limit = client.server_settings.get(S.HEADER_TABLE_SIZE, 4096)
    block = hpack_int(limit + 1, 5, 0x20) + client.encode(request_headers())
    client.headers(1, block=block)
    client.expect_goaway(E.COMPRESSION_ERROR)


def test_table_size_update_after_a_field_is_a_compression_error(client):
    block = b"\x82" + hpack_int(0, 5, 0x20)  # :method GET, then a size update
    client.headers(1, block=block)
    client.expect_goaway(E.COMPRESSION_ERROR)


@pytest.mark.parametrize("index", [0, 62, 1000], ids=["zero", "first-dynamic", "far"])
def test_index_beyond_the_table_is_a_compression_error(client, index):
    client.headers(1, block=hpack_int(index, 7, 0x80))
    client.expect_goaway(E.COMPRESSION_ERROR)


@pytest.mark.parametrize("encoded", [b"\xff\xff\xff\xff", b"\x1f\xff\xff"],
                         ids=["eos", "long-padding"])
def test_invalid_huffman_string_is_a_compression_error(client, encoded):
    block = b"\x00\x05x-huf" + hpack_int(len(encoded), 7, 0x80) + encoded
    client.headers(1, block=client.encode(request_headers()) + block)
    client.expect_goaway(E.COMPRESSION_ERROR)


def test_table_size_update_to_0_then_literals_is_accepted(client):
    block = hpack_int(0, 5, 0x20) + b"".join(literal(n, v) for n, v in
                                           request_headers("/zero"))
    client.encoder.header_table_size = 0  # keep the encoder in step with the server's table
    client.headers(1, block=block)
    assert client.expect_response(1).body == b"one GET /zero"


def test_dynamic_table_entries_are_shared_by_blocks(client, backend):
    fields = [*request_headers("/same"), ("x-custom", "a value that gets indexed")]
    client.headers(1, fields)
    client.expect_response(1)
    second = client.encode(fields)
    assert len(second) < 10  # all indexed now
    client.headers(3, block=second)
    assert client.expect_response(3).body == b"one GET /same"
    assert [r.header("x-custom") for r in backend.requests] == ["a value that gets indexed"] * 2

