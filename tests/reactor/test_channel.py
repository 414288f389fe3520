"""The channel's framing: ``FrameDecoder`` on hand-made byte streams, and the blocking
``Channel`` client over a real socketpair.

Frames are an 8-byte little-endian length that counts itself, then one UTF-8 JSON object.
Every malformed frame must become a ``FrameError`` (which the worker answers with a FAILURE)
and decoding must go on with the next frame.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysozu.reactor.channel import (
    PREFIX_SIZE,
    Channel,
    ChannelError,
    FrameDecoder,
    FrameError,
    encode_frame,
    event_message,
)


def frame(body: bytes) -> bytes:
    """A frame around ``body`` as it is, valid JSON or not."""
    return struct.pack("<Q", len(body) + PREFIX_SIZE) + body


def prefix(length: int) -> bytes:
    return struct.pack("<Q", length)


def feed_bytewise(decoder: FrameDecoder, data: bytes) -> list[Any]:
    out: list[Any] = []
    for i in range(len(data)):
        out.extend(decoder.feed(data[i : i + 1]))
    return out


def errors(results: list[Any]) -> list[str]:
    return [r.message for r in results if isinstance(r, FrameError)]


R1 = {"id": "r1", "type": "STATUS"}
R2 = {"id": "r2", "type": "ADD_CLUSTER", "cluster_id": "app", "answers": {"503": "é"}}
R3 = {"id": "r3", "type": "REMOVE_CLUSTER", "cluster_id": "app"}


# -- encoding ------------------------------------------------------------------------------


def test_encode_frame_layout() -> None:
    data = encode_frame(R1)
    (length,) = struct.unpack_from("<Q", data)
    assert length == len(data)  # the length counts the prefix itself
    assert json.loads(data[PREFIX_SIZE:].decode("utf-8")) == R1


def test_empty_feed_and_pending() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    data = encode_frame(R1)
    assert decoder.feed(data[:5]) == []
    assert decoder.pending == 5
    assert decoder.feed(data[5:]) == [R1]
    assert decoder.pending == 0


# -- valid streams -------------------------------------------------------------------------


def test_frame_split_byte_by_byte() -> None:
    decoder = FrameDecoder()
    data = encode_frame(R2)
    out = feed_bytewise(decoder, data)
    assert out == [R2]
    assert decoder.pending == 0


def test_several_frames_in_one_chunk() -> None:
    decoder = FrameDecoder()
    data = encode_frame(R1) + encode_frame(R2) + encode_frame(R3)
    assert decoder.feed(data) == [R1, R2, R3]


def test_frames_and_a_partial_one_in_one_chunk() -> None:
    decoder = FrameDecoder()
    third = encode_frame(R3)
    assert decoder.feed(encode_frame(R1) + encode_frame(R2) + third[:11]) == [R1, R2]
    assert decoder.pending == 11
    assert decoder.feed(third[11:]) == [R3]


def test_non_ascii_body_split_inside_a_character() -> None:
    body = json.dumps({"id": "é", "type": "STATUS"}, ensure_ascii=False).encode()
    data = frame(body)
    cut = PREFIX_SIZE + body.index("é".encode()) + 1  # between the two bytes of "é"
    decoder = FrameDecoder()
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:]) == [{"id": "é", "type": "STATUS"}]


# -- length prefix under 8 ------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 3, 7])
def test_prefix_under_8_is_an_error_then_resync(length: int) -> None:
    decoder = FrameDecoder()
    out = decoder.feed(prefix(length) + encode_frame(R1))
    assert len(out) == 2
    assert isinstance(out[0], FrameError)
    assert out[0].id == ""
    assert f"length prefix {length} is under 8" in out[0].message
    assert out[1] == R1


def test_prefix_under_8_byte_by_byte() -> None:
    decoder = FrameDecoder()
    out = feed_bytewise(decoder, prefix(3) + prefix(0) + encode_frame(R1))
    assert errors(out) == [
        "invalid frame: length prefix 3 is under 8",
        "invalid frame: length prefix 0 is under 8",
    ]
    assert out[-1] == R1


def test_prefix_of_exactly_8_is_an_empty_body() -> None:
    # A length of 8 is a frame with an empty body: not JSON, reported, and skipped.
    decoder = FrameDecoder()
    out = decoder.feed(prefix(8) + encode_frame(R1))
    assert isinstance(out[0], FrameError)
    assert "invalid JSON" in out[0].message
    assert out[1] == R1


# -- frames over the limit ------------------------------------------------------------------


def test_oversized_frame_is_an_error_and_skipped() -> None:
    decoder = FrameDecoder(max_frame_size=64)
    big = frame(b'{"id":"big","type":"STATUS","pad":"' + b"x" * 200 + b'"}')
    out = decoder.feed(big + encode_frame(R1))
    assert len(out) == 2
    assert isinstance(out[0], FrameError)
    assert out[0].message == (f"invalid frame: {len(big)} bytes is over the limit of 64 bytes")
    assert out[1] == R1
    assert decoder.pending == 0


def test_oversized_frame_reported_before_its_body_arrives() -> None:
    decoder = FrameDecoder(max_frame_size=64)
    out = decoder.feed(prefix(1000))
    assert errors(out) == ["invalid frame: 1000 bytes is over the limit of 64 bytes"]
    # The body is discarded as it arrives, never held.
    for _ in range(99):
        assert decoder.feed(b"z" * 10) == []
        assert decoder.pending == 0
    assert decoder.feed(b"z" * (1000 - 8 - 990) + encode_frame(R1)) == [R1]


def test_oversized_body_in_pieces_hiding_a_valid_frame() -> None:
    # The skipped body contains bytes that look like a frame: they must not be decoded.
    hidden = encode_frame(R3)
    body = b"a" * 30 + hidden + b"b" * 30
    decoder = FrameDecoder(max_frame_size=len(hidden) + PREFIX_SIZE)
    data = frame(body) + encode_frame(R1)
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    out: list[Any] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    assert len(out) == 2
    assert isinstance(out[0], FrameError) and "over the limit" in out[0].message
    assert out[1] == R1


def test_oversized_frame_byte_by_byte_then_next() -> None:
    limit = len(encode_frame(R2))
    decoder = FrameDecoder(max_frame_size=limit)
    data = frame(b"y" * 3 * limit) + encode_frame(R1) + frame(b"y" * limit) + encode_frame(R2)
    out = feed_bytewise(decoder, data)
    assert len(out) == 4
    assert [type(r) for r in out] == [FrameError, dict, FrameError, dict]
    assert out[1] == R1 and out[3] == R2


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    data = encode_frame(R2)
    assert FrameDecoder(max_frame_size=len(data)).feed(data) == [R2]
    out = FrameDecoder(max_frame_size=len(data) - 1).feed(data)
    assert len(out) == 1 and isinstance(out[0], FrameError)


# -- bodies that are not a JSON object -------------------------------------------------------


def test_non_utf8_body() -> None:
    decoder = FrameDecoder()
    out = decoder.feed(frame(b'{"id": "\xff\xfe"}') + encode_frame(R1))
    assert isinstance(out[0], FrameError)
    assert out[0].message.startswith("invalid frame: not UTF-8")
    assert "at byte 8" in out[0].message
    assert out[1] == R1


@pytest.mark.parametrize(
    "body", [b"{", b'{"id": "x",}', b"not json", b"{'id': 'x'}", b'{"id":"x"} trailing']
)
def test_invalid_json_body(body: bytes) -> None:
    decoder = FrameDecoder()
    out = decoder.feed(frame(body) + encode_frame(R1))
    assert isinstance(out[0], FrameError)
    assert out[0].message.startswith("invalid JSON: ")
    assert "line 1 column" in out[0].message
    assert out[1] == R1


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[1, 2]", "got an array"),
        (b'"STATUS"', "got a string"),
        (b"42", "got a number"),
        (b"1.5", "got a number"),
        (b"null", "got null"),
        (b"true", "got a boolean"),
    ],
)
def test_json_that_is_not_an_object(body: bytes, kind: str) -> None:
    decoder = FrameDecoder()
    out = decoder.feed(frame(body) + encode_frame(R1))
    assert isinstance(out[0], FrameError)
    assert "expected a JSON object" in out[0].message
    assert kind in out[0].message
    assert out[1] == R1


def test_errors_and_messages_keep_their_order() -> None:
    decoder = FrameDecoder(max_frame_size=100)
    data = (
        encode_frame(R1)
        + prefix(2)
        + frame(b"[]")
        + encode_frame(R2)
        + frame(b"q" * 200)
        + frame(b"\x80")
        + encode_frame(R3)
    )
    out = decoder.feed(data)
    kinds = [r if isinstance(r, dict) else r.message.split(":")[0] for r in out]
    assert kinds == [
        R1,
        "invalid frame",
        "invalid request",
        R2,
        "invalid frame",
        "invalid frame",
        R3,
    ]


# -- chunking never changes what is decoded ---------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
_messages = st.dictionaries(st.text(max_size=10), _json_values, max_size=5)
_MAX = 1000

# A stream item: a valid message, or one of the malformed frames the decoder must skip.
_items = st.one_of(
    _messages.filter(lambda m: len(encode_frame(m)) <= _MAX).map(lambda m: ("msg", m)),
    st.integers(0, PREFIX_SIZE - 1).map(lambda n: ("short", n)),
    st.integers(_MAX + 1, _MAX + 300).map(lambda n: ("big", n)),
    st.binary(max_size=20).map(lambda b: ("raw", b)),
)


def _encode_item(item: tuple[str, Any]) -> bytes:
    kind, value = item
    if kind == "msg":
        return encode_frame(value)
    if kind == "short":
        return prefix(value)
    if kind == "big":
        return prefix(value) + b"\x00" * (value - PREFIX_SIZE)
    return frame(value)


def _normalise(results: list[Any]) -> list[Any]:
    return [("error", r.message, r.id) if isinstance(r, FrameError) else r for r in results]


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(_messages, max_size=8), data=st.data())
def test_any_chunking_of_valid_frames_decodes_the_same(
    messages: list[dict[str, Any]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    decoder = FrameDecoder()
    out: list[Any] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert out == messages
    assert decoder.pending == 0


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_items, max_size=8), data=st.data())
def test_any_chunking_of_a_mixed_stream_decodes_the_same(
    items: list[tuple[str, Any]], data: st.DataObject
) -> None:
    stream = b"".join(_encode_item(item) for item in items)
    whole = _normalise(FrameDecoder(max_frame_size=_MAX).feed(stream))
    assert len(whole) == len(items)  # one result per frame, good or bad
    for (kind, value), result in zip(items, whole, strict=True):
        if kind == "msg":
            assert result == value
        elif kind != "raw":
            assert result[0] == "error"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    decoder = FrameDecoder(max_frame_size=_MAX)
    out: list[Any] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert _normalise(out) == whole


# -- the blocking client over a socketpair -----------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[Channel, socket.socket]]:
    ours, theirs = socket.socketpair()
    channel = Channel(ours)
    theirs.settimeout(10.0)
    try:
        yield channel, theirs
    finally:
        channel.close()
        theirs.close()


def _read_frame(sock: socket.socket) -> dict[str, Any]:
    decoder = FrameDecoder()
    while True:
        data = sock.recv(65536)
        assert data, "peer closed"
        out = decoder.feed(data)
        if out:
            assert len(out) == 1
            assert isinstance(out[0], dict)
            return out[0]


def _answer(request_id: str, status: str = "OK", message: str = "") -> dict[str, Any]:
    return {"id": request_id, "status": status, "message": message, "content": None}


def test_client_send_makes_an_id(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    request_id = channel.send({"type": "STATUS"})
    assert request_id
    assert _read_frame(peer) == {"id": request_id, "type": "STATUS"}
    assert channel.send({"id": "mine", "type": "STATUS"}) == "mine"
    assert _read_frame(peer)["id"] == "mine"


def test_client_sorts_responses_and_events(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    event = event_message("BACKEND_DOWN", cluster_id="app")
    peer.sendall(
        encode_frame(_answer("b"))
        + encode_frame(event)
        + encode_frame(_answer("a", "PROCESSING"))
        + encode_frame(_answer("a", "OK", "done"))
    )
    assert channel.read_response("a", timeout=10)["status"] == "PROCESSING"
    assert channel.read_response("a", timeout=10)["message"] == "done"
    assert channel.read_response("b", timeout=10)["status"] == "OK"
    assert channel.wait_event("BACKEND_DOWN", timeout=10) == event


def test_client_request_skips_processing(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    request_id = channel.send({"type": "SOFT_STOP"})
    peer.sendall(encode_frame(_answer(request_id, "PROCESSING")))
    peer.sendall(encode_frame(_answer(request_id, "OK", "stopped")))
    # request() sends its own request; answer that one the same way from this thread.
    peer.sendall(encode_frame(_answer("x", "PROCESSING")) + encode_frame(_answer("x", "OK")))
    assert channel.request({"id": "x", "type": "STATUS"}, timeout=10)["status"] == "OK"
    assert channel.read_response(request_id, timeout=10)["status"] == "PROCESSING"


def test_client_keeps_frame_errors(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(frame(b"[]") + encode_frame(_answer("a")))
    assert channel.read_response("a", timeout=10)["status"] == "OK"
    assert [e.message for e in channel.errors] == [
        "invalid request: expected a JSON object, got an array"
    ]


def test_client_read_times_out(pair: tuple[Channel, socket.socket]) -> None:
    channel, _peer = pair
    with pytest.raises(ChannelError, match="timed out"):
        channel.read_response("nothing", timeout=0.05)
    with pytest.raises(ChannelError, match="timed out"):
        channel.wait_event("BACKEND_DOWN", timeout=0.05)


def test_client_sees_the_peer_close(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    peer.sendall(encode_frame(_answer("a"))[:5])
    peer.close()
    with pytest.raises(ChannelError, match="closed the channel"):
        channel.read_response("a", timeout=10)


def test_worker_channel_drops_a_client_that_never_reads():
    import socket as _socket

    from pysozu.reactor.channel import WorkerChannel

    ours, theirs = _socket.socketpair()
    try:
        channel = WorkerChannel(ours, max_frame_size=1024)
        channel.max_pending_output = 64 * 1024
        big = {"id": "x", "status": "OK", "message": "y" * 8192, "content": None}
        for _ in range(10_000):
            channel.write(big)
            if channel.closed:
                break
        assert channel.closed  # the kernel buffer filled, then the cap was reached
    finally:
        theirs.close()
