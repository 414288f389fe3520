"""The sans-IO HTTP/2 connection machine, driven directly (the end-to-end suites drive it
through sockets)."""

from __future__ import annotations

from pysozu.parser import h2 as f
from pysozu.parser.h2_hpack import encode_headers
from pysozu.protocols.h2_connection import H2Connection

REQUEST = encode_headers([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                          (b":authority", b"a.test")])


def test_closed_stream_memory_is_bounded_and_keeps_the_newest():
    """Closed streams are remembered (a late frame on one is told apart from a frame on a
    stream that never was) up to 1024, the oldest forgotten first."""
    conn = H2Connection()
    conn.receive(f.PREFACE + f.settings_frame({}))
    count = 1100
    for n in range(count):
        sid = 1 + 2 * n
        conn.receive(f.frame(f.HEADERS, f.END_HEADERS | f.END_STREAM, sid, REQUEST))
        conn.send_headers(sid, [(b":status", b"204")], end_stream=True)
        assert sid not in conn.streams
    remembered = conn._closed
    assert len(remembered) == 1024
    forgotten = count - 1024
    assert all(1 + 2 * n not in remembered for n in range(forgotten))
    assert all(1 + 2 * n in remembered for n in range(forgotten, count))
    assert not any(remembered.values())  # closed normally, not reset by this side
