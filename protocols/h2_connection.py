"""One HTTP/2 connection without sockets: frames in, events out; calls in, frames out.

Theory of operation
-------------------
:class:`H2Connection` is sans-IO, in python-hyper/h2's style: ``receive(data)`` parses
what the peer sent and returns events (:class:`HeadersReceived`, :class:`DataReceived`,
:class:`StreamReset`, ...); ``send_headers``/``send_data``/``reset_stream``/``goaway``
queue frames that ``data_to_send()`` hands over. The session state
(``protocols/http2.py``) moves the bytes; this module decides what they mean.

Streams (RFC 9113 §5.1) move through a table, ``_TRANSITIONS``: ``(state, input) →
state``. A received input with no row is an error whose code and scope come from
``_RECV_ERRORS`` (a stream error resets the stream with RST_STREAM; a connection error sends
GOAWAY and ends the connection). Streams that reach ``CLOSED`` leave ``streams``; the last
``_CLOSED_MEMORY`` of them are remembered, with whether we reset them, so that a late frame
on a stream we reset is ignored (§5.1, "closed") while a frame on a stream that ended
normally is a ``STREAM_CLOSED`` error, and a never-opened lower id is a ``PROTOCOL_ERROR``
(§5.1.1).

Flow control (§5.2, §6.9) is kept both ways. Sending: ``sendable(stream)`` is the smaller of
the stream's and the connection's window; the caller sends no more. Receiving: DATA counts
against both receive windows at once, and a WINDOW_UPDATE goes back only when the
application says it consumed the bytes (``acknowledge_data``), so a slow consumer holds the
peer to the windows and memory stays bounded.

Header blocks are decoded (``parser/h2_hpack.py``) as soon as END_HEADERS arrives, even on
a stream that is being refused, because the decoder's table is shared by the connection.
Blocks this side sends are encoded without a dynamic table.

Abuse (configurable in :class:`H2Limits`, Sōzu's knobs and defaults) ends the connection
with GOAWAY ENHANCE_YOUR_CALM, the reason kept in ``calm_reason`` for metrics:

===========================  ================================================================
attack                       defence
===========================  ================================================================
Rapid Reset (CVE-2023-44487) RST_STREAM received per window, and streams reset before any
                             response (``max_rst_stream_abusive_lifetime``) over the lifetime
MadeYouReset (CVE-2025-8671) RST_STREAM this side had to send because of the peer's frames
CONTINUATION flood           CONTINUATION frames per header block, and the block's size
(CVE-2024-27316)
PING / SETTINGS floods       frames per window
empty DATA flood             DATA frames with no payload and no END_STREAM per window
WINDOW_UPDATE flood          connection-level WINDOW_UPDATE per window
HPACK bomb                   the decoded header list size (``max_header_list_size``)
glitches                     frames ignored on reset streams and other tolerated oddities
===========================  ================================================================

Windows are one second of the clock given to the constructor; a well-behaved peer at a
high request rate never comes near the limits, since none of them counts normal requests.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..parser import h2 as f
from ..parser.h2 import ErrorCode, FrameError, Setting
from ..parser.h2_hpack import (
    Decoder,
    HeaderListTooLarge,
    HpackError,
    encode_headers,
    table_size_update,
)
from .h2_translate import MalformedMessage, content_length_value

__all__ = [
    "DataReceived",
    "GoAwayReceived",
    "H2Connection",
    "H2Limits",
    "HeadersReceived",
    "PingAcked",
    "PriorityUpdated",
    "StreamReset",
    "StreamState",
    "Terminated",
    "WindowUpdated",
]

Header = tuple[bytes, bytes]

_CLOSED_MEMORY: Final = 1024


@dataclass(frozen=True)
class H2Limits:
    """Settings this endpoint advertises and the flood limits it enforces (Sōzu's names)."""

    max_concurrent_streams: int = 100
    initial_window_size: int = f.DEFAULT_WINDOW
    initial_connection_window: int = 1 << 20
    max_frame_size: int = f.MIN_MAX_FRAME_SIZE
    max_header_list_size: int = 65_536
    max_header_table_size: int = 4_096
    max_header_fields: int = 128
    max_rst_stream_per_window: int = 100
    max_ping_per_window: int = 100
    max_settings_per_window: int = 50
    max_empty_data_per_window: int = 100
    max_window_update_stream0_per_window: int = 100
    max_continuation_frames: int = 20
    max_glitch_count: int = 100
    max_rst_stream_lifetime: int = 10_000
    max_rst_stream_abusive_lifetime: int = 50
    max_rst_stream_emitted_lifetime: int = 500


class StreamState(enum.IntEnum):
    IDLE = 0
    OPEN = 1
    HALF_CLOSED_LOCAL = 2
    HALF_CLOSED_REMOTE = 3
    CLOSED = 4


class StreamInput(enum.IntEnum):
    SEND_HEADERS = 0
    SEND_DATA = 1
    SEND_END_STREAM = 2
    SEND_RST_STREAM = 3
    RECV_HEADERS = 4
    RECV_DATA = 5
    RECV_END_STREAM = 6
    RECV_RST_STREAM = 7


S, I = StreamState, StreamInput  # noqa: E741 (table shorthand)

#: RFC 9113 §5.1 (figure 2), without the reserved states (push is refused both ways).
_TRANSITIONS: Final[dict[tuple[StreamState, StreamInput], StreamState]] = {
    (S.IDLE, I.SEND_HEADERS): S.OPEN,
    (S.IDLE, I.RECV_HEADERS): S.OPEN,
    (S.OPEN, I.SEND_HEADERS): S.OPEN,
    (S.OPEN, I.SEND_DATA): S.OPEN,
    (S.OPEN, I.RECV_HEADERS): S.OPEN,
    (S.OPEN, I.RECV_DATA): S.OPEN,
    (S.OPEN, I.SEND_END_STREAM): S.HALF_CLOSED_LOCAL,
    (S.OPEN, I.RECV_END_STREAM): S.HALF_CLOSED_REMOTE,
    (S.OPEN, I.SEND_RST_STREAM): S.CLOSED,
    (S.OPEN, I.RECV_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_HEADERS): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_DATA): S.HALF_CLOSED_LOCAL,
    (S.HALF_CLOSED_LOCAL, I.RECV_END_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.SEND_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_LOCAL, I.RECV_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.SEND_HEADERS): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.SEND_DATA): S.HALF_CLOSED_REMOTE,
    (S.HALF_CLOSED_REMOTE, I.SEND_END_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.SEND_RST_STREAM): S.CLOSED,
    (S.HALF_CLOSED_REMOTE, I.RECV_RST_STREAM): S.CLOSED,
}

#: What a received input with no transition is (§5.1): (code, connection-wide?).
_RECV_ERRORS: Final[dict[tuple[StreamState, StreamInput], tuple[ErrorCode, bool]]] = {
    (S.IDLE, I.RECV_DATA): (ErrorCode.PROTOCOL_ERROR, True),
    (S.IDLE, I.RECV_RST_STREAM): (ErrorCode.PROTOCOL_ERROR, True),
    (S.HALF_CLOSED_REMOTE, I.RECV_HEADERS): (ErrorCode.STREAM_CLOSED, False),
    (S.HALF_CLOSED_REMOTE, I.RECV_DATA): (ErrorCode.STREAM_CLOSED, False),
    (S.CLOSED, I.RECV_HEADERS): (ErrorCode.STREAM_CLOSED, True),
    (S.CLOSED, I.RECV_DATA): (ErrorCode.STREAM_CLOSED, True),
}
del S, I

#: ``_TRANSITIONS`` as a flat list indexed by ``state * _INPUTS + input`` (None: no
#: transition): read at every frame of every stream, where a tuple key costs a tuple, its
#: hash and a dictionary probe
_INPUTS: Final = len(StreamInput)
_NEXT: Final[list[StreamState | None]] = [
    _TRANSITIONS.get((state, inp)) for state in StreamState for inp in StreamInput
]

#: states in which the peer may still send DATA on a stream
_RECEIVING: Final = frozenset({StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL})


class _StreamError(Exception):
    def __init__(self, stream_id: int, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.stream_id = stream_id
        self.code = code
        self.reason = reason


class _ConnectionError(Exception):
    def __init__(self, code: ErrorCode, reason: str, calm: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.calm = calm


# --- events ------------------------------------------------------------------------------

class HeadersReceived:
    """A complete header block: a request (server), a response or 1xx (client), or
    trailers (``trailers``; they always end the stream)."""

    __slots__ = ("end_stream", "headers", "stream_id", "trailers", "urgency")

    def __init__(self, stream_id: int, headers: list[Header], end_stream: bool,
                 trailers: bool, urgency: int) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.end_stream = end_stream
        self.trailers = trailers
        self.urgency = urgency

    def __repr__(self) -> str:
        return (f"<HeadersReceived stream={self.stream_id} end={self.end_stream} "
                f"trailers={self.trailers} {self.headers!r}>")


class DataReceived:
    """DATA payload; ``flow_length`` bytes must be given back with ``acknowledge_data``."""

    __slots__ = ("data", "end_stream", "flow_length", "stream_id")

    def __init__(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_length = len(data)
        self.end_stream = end_stream

    def __repr__(self) -> str:
        return f"<DataReceived stream={self.stream_id} {len(self.data)}B end={self.end_stream}>"


class StreamReset:
    """A stream ended abnormally: reset by the peer (``remote``) or by this side after a
    stream error the peer caused (the RST_STREAM is already queued)."""

    __slots__ = ("code", "reason", "remote", "stream_id")

    def __init__(self, stream_id: int, code: int, remote: bool, reason: str = "") -> None:
        self.stream_id = stream_id
        self.code = code
        self.remote = remote
        self.reason = reason

    def __repr__(self) -> str:
        side = "remote" if self.remote else "local"
        return f"<StreamReset stream={self.stream_id} code={self.code} {side} {self.reason}>"


class WindowUpdated:
    """More may be sent on ``stream_id`` (0: on every stream: connection window or
    SETTINGS_INITIAL_WINDOW_SIZE grew)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"<WindowUpdated stream={self.stream_id}>"


class PriorityUpdated:
    __slots__ = ("incremental", "stream_id", "urgency")

    def __init__(self, stream_id: int, urgency: int, incremental: bool) -> None:
        self.stream_id = stream_id
        self.urgency = urgency
        self.incremental = incremental


class PingAcked:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class GoAwayReceived:
    __slots__ = ("code", "debug", "last_stream_id")

    def __init__(self, last_stream_id: int, code: int, debug: bytes) -> None:
        self.last_stream_id = last_stream_id
        self.code = code
        self.debug = debug

    def __repr__(self) -> str:
        return f"<GoAwayReceived last={self.last_stream_id} code={self.code}>"


class Terminated:
    """This side ended the connection (GOAWAY queued): flush and close."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Terminated code={self.code} {self.reason}>"


Event = (HeadersReceived | DataReceived | StreamReset | WindowUpdated | PriorityUpdated
         | PingAcked | GoAwayReceived | Terminated)


class Stream:
    """Per-stream data; transitions go through ``H2Connection._move``."""

    __slots__ = ("content_length", "data_received", "headers_received", "id", "recv_unacked",
                 "recv_window", "responded", "send_window", "state")

    def __init__(self, stream_id: int, send_window: int, recv_window: int) -> None:
        self.id = stream_id
        self.state = StreamState.IDLE
        self.send_window = send_window
        self.recv_window = recv_window
        self.recv_unacked = 0
        self.headers_received = False
        self.content_length: int | None = None
        self.data_received = 0
        self.responded = False  # this side sent a header block on it


class H2Connection:
    """The connection machine (see the module docstring). ``client`` picks the side."""

    def __init__(self, *, client: bool = False, limits: H2Limits | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.limits = limits = limits or H2Limits()
        self._clock = clock or (lambda: 0.0)
        self.streams: dict[int, Stream] = {}
        #: recently closed stream ids → True when this side reset them
        self._closed: dict[int, bool] = {}
        # the remembered ids in a ring, to forget the oldest in O(1) (a list: compiled, its
        # item reads and writes are direct, where a deque's methods are generic calls)
        self._closed_ring: list[int] = [0] * _CLOSED_MEMORY
        self._closed_next = 0
        self.highest_remote_id = 0
        self.next_local_id = 1 if client else 2
        self._out: list[bytes] = []
        self._reader = f.FrameReader(limits.max_frame_size)
        self._preface_left = b"" if client else f.PREFACE
        self._settings_seen = False
        self.closed = False
        self.calm_reason: str | None = None
        # peer settings
        self.peer_max_frame_size = f.MIN_MAX_FRAME_SIZE
        self.peer_initial_window = f.DEFAULT_WINDOW
        self.peer_max_concurrent_streams = 2**31
        self.peer_enable_push = True
        # windows
        self.send_window = f.DEFAULT_WINDOW
        self.recv_window = max(f.DEFAULT_WINDOW, limits.initial_connection_window)
        self._recv_unacked = 0
        # HPACK
        self.decoder = Decoder(limits.max_header_list_size, limits.max_header_table_size)
        # encoding: stateless, see parser/h2_hpack.py
        self.peer_header_table_size = 4096
        self._table_update = False
        # a header block in progress (HEADERS without END_HEADERS, then CONTINUATION)
        self._block_stream = 0
        self._block_flags = 0
        self._block: list[bytes] = []
        self._block_size = 0
        self._block_frames = 0
        self._block_self_dependent = False
        # GOAWAY
        self.goaway_sent: int | None = None
        self.goaway_received: int | None = None
        # floods
        self._window_start = 0.0
        self._counts = [0, 0, 0, 0, 0]  # rst, ping, settings, empty data, window_update 0
        self.rst_received = 0
        self.rst_abusive = 0
        self.rst_emitted = 0
        self.glitches = 0
        #: RFC 9218 urgencies announced before their stream opened
        self._early_priority: dict[int, int] = {}
        self._dispatch: dict[int, Callable[[int, int, bytes, list[Event]], None]] = {
            f.DATA: self._on_data,
            f.HEADERS: self._on_headers,
            f.PRIORITY: self._on_priority,
            f.RST_STREAM: self._on_rst_stream,
            f.SETTINGS: self._on_settings,
            f.PUSH_PROMISE: self._on_push_promise,
            f.PING: self._on_ping,
            f.GOAWAY: self._on_goaway,
            f.WINDOW_UPDATE: self._on_window_update,
            f.CONTINUATION: self._on_continuation,
            f.PRIORITY_UPDATE: self._on_priority_update,
        }

    # -- start --------------------------------------------------------------------------------
    def initiate(self) -> None:
        """Queue this side's preface: SETTINGS (and the client's magic), then the
        connection window beyond 65 535."""
        limits = self.limits
        settings: list[tuple[int, int]] = [
            (Setting.MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams),
            (Setting.INITIAL_WINDOW_SIZE, limits.initial_window_size),
            (Setting.MAX_FRAME_SIZE, limits.max_frame_size),
            (Setting.MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
            (Setting.HEADER_TABLE_SIZE, limits.max_header_table_size),
            (Setting.ENABLE_PUSH, 0),
            (Setting.NO_RFC7540_PRIORITIES, 1),
        ]
        if self.client:
            self._out.append(f.PREFACE)
        self._out.append(f.settings_frame(settings))
        extra = self.recv_window - f.DEFAULT_WINDOW
        if extra > 0:
            self._out.append(f.window_update_frame(0, extra))

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; return what they meant, in order."""
        events: list[Event] = []
        if self.closed:
            return events
        if self._preface_left:
            want = self._preface_left
            take = data[: len(want)]
            if want[: len(take)] != take:
                return self._terminate(events, ErrorCode.PROTOCOL_ERROR,
                                       "the connection does not start with the HTTP/2 preface")
            self._preface_left = want[len(take) :]
            data = data[len(take) :]
            if not data:
                return events
        try:
            frames = self._reader.feed(data)
        except FrameError as e:
            # process the frames before the oversized one? the reader raised before
            # returning any: the connection is over either way
            return self._terminate(events, e.code, e.reason)
        dispatch = self._dispatch
        for ftype, flags, sid, payload in frames:
            try:
                if self._block_stream and ftype != f.CONTINUATION:
                    raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                           f"a {f.FRAME_NAMES.get(ftype, hex(ftype))} frame "
                                           "inside a header block")
                if not self._settings_seen:
                    if ftype != f.SETTINGS or flags & f.ACK:
                        raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                               "the peer's first frame is not SETTINGS")
                    self._settings_seen = True
                handler = dispatch.get(ftype)
                if handler is not None:
                    handler(flags, sid, payload, events)
            # one name per clause: mypyc gives a reused ``as`` name the first clause's type
            except _StreamError as stream_error:
                if self._stream_error(stream_error, events):
                    return events
            except _ConnectionError as connection_error:
                self.calm_reason = connection_error.calm
                return self._terminate(events, connection_error.code, connection_error.reason)
            except FrameError as frame_error:
                return self._terminate(events, frame_error.code, frame_error.reason)
        return events

    def _terminate(self, events: list[Event], code: ErrorCode, reason: str) -> list[Event]:
        last = self.highest_remote_id
        self._out.append(f.goaway_frame(last, code, reason.encode("ascii", "replace")[:256]))
        self.goaway_sent = last
        self.closed = True
        events.append(Terminated(code, reason))
        return events

    def _stream_error(self, e: _StreamError, events: list[Event]) -> bool:
        """Reset the stream; True when it was one reset too many and ended the connection."""
        self.rst_emitted += 1
        if self.rst_emitted > self.limits.max_rst_stream_emitted_lifetime:
            self.calm_reason = "made_you_reset"
            self._terminate(events, ErrorCode.ENHANCE_YOUR_CALM,
                            "too many streams had to be reset")
            return True
        sid = e.stream_id
        self._out.append(f.rst_stream_frame(sid, e.code))
        stream = self.streams.get(sid)
        if stream is not None:
            self._drop(stream, reset=True)
            events.append(StreamReset(sid, e.code, False, e.reason))
        else:
            self._remember_closed(sid, True)
        return False

    def _tick(self) -> list[int]:
        now = self._clock()
        if now - self._window_start >= 1.0:
            self._window_start = now
            counts = self._counts
            counts[0] = counts[1] = counts[2] = counts[3] = counts[4] = 0
        return self._counts

    def _glitch(self) -> None:
        self.glitches += 1
        if self.glitches > self.limits.max_glitch_count:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many protocol glitches",
                                   "glitches")

    def _lookup(self, sid: int, inp: StreamInput) -> Stream | None:
        """The stream ``sid``, or None when the frame is to be ignored (a stream this side
        reset); raises for idle and normally closed streams as §5.1 says."""
        stream = self.streams.get(sid)
        if stream is not None:
            return stream
        closed = self._closed.get(sid)
        if closed:
            self._glitch()  # may have crossed our RST_STREAM: ignored, but counted
            return None
        if closed is not None:
            code, _ = _RECV_ERRORS.get((StreamState.CLOSED, inp),
                                       (ErrorCode.STREAM_CLOSED, True))
            raise _ConnectionError(code, f"a frame on closed stream {sid}")
        if sid <= self._highest_id_of(sid):
            # lower than a stream already opened and never seen: implicitly closed (§5.1.1)
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                   f"stream {sid} is closed (a higher stream was opened)")
        code, _ = _RECV_ERRORS.get((StreamState.IDLE, inp), (ErrorCode.PROTOCOL_ERROR, True))
        raise _ConnectionError(code, f"a frame on idle stream {sid}")

    def _highest_id_of(self, sid: int) -> int:
        """The highest stream id opened by the side that owns ``sid``."""
        if (sid & 1) == (1 if self.client else 0):
            return self.next_local_id - 2
        return self.highest_remote_id

    def _move(self, stream: Stream, inp: StreamInput) -> None:
        new = _NEXT[stream.state * _INPUTS + inp]
        if new is None:
            error = _RECV_ERRORS.get((stream.state, inp))
            if error is None:
                if inp >= StreamInput.RECV_HEADERS:
                    error = (ErrorCode.PROTOCOL_ERROR, True)
                else:
                    raise RuntimeError(f"{inp.name} on stream {stream.id} in {stream.state.name}")
            code, conn = error
            reason = f"{inp.name} on stream {stream.id} in state {stream.state.name}"
            if conn:
                raise _ConnectionError(code, reason)
            raise _StreamError(stream.id, code, reason)
        stream.state = new
        if new is StreamState.CLOSED:
            self._drop(stream, reset=False)

    def _drop(self, stream: Stream, reset: bool) -> None:
        stream.state = StreamState.CLOSED
        self.streams.pop(stream.id, None)
        self._remember_closed(stream.id, reset)

    def _remember_closed(self, sid: int, reset: bool) -> None:
        closed = self._closed
        if sid not in closed:
            # not ``next(iter(closed))`` to find the oldest: a dict whose oldest keys keep
            # being deleted is scanned over their empty slots by each new iterator
            ring = self._closed_ring
            at = self._closed_next
            oldest = ring[at]
            if oldest:
                closed.pop(oldest, None)
            ring[at] = sid
            self._closed_next = (at + 1) % _CLOSED_MEMORY
        closed[sid] = reset

    # -- frame handlers -----------------------------------------------------------------------
    def _on_data(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if not sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a DATA frame on stream 0")
        flow = len(payload)
        self.recv_window -= flow
        if self.recv_window < 0:
            raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR,
                                   "DATA beyond the connection's flow-control window")
        data, _ = f.strip_padding(flags, payload, "DATA")
        stream = self._lookup(sid, StreamInput.RECV_DATA)
        if stream is None:  # a stream this side reset: its bytes still count (§6.9)
            self._acknowledge_connection(flow)
            return
        try:
            self._move(stream, StreamInput.RECV_DATA)
        except _StreamError:
            self._acknowledge_connection(flow)  # refused bytes still used the window
            raise
        stream.recv_window -= flow
        if stream.recv_window < 0:
            raise _StreamError(sid, ErrorCode.FLOW_CONTROL_ERROR,
                               "DATA beyond the stream's flow-control window")
        padding = flow - len(data)
        if padding:
            self._acknowledge_connection(padding)
            stream.recv_unacked += padding
        end = bool(flags & f.END_STREAM)
        if not data and not end:
            counts = self._tick()
            counts[3] += 1
            if counts[3] > self.limits.max_empty_data_per_window:
                raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "empty DATA flood",
                                       "empty_data")
        stream.data_received += len(data)
        expected = stream.content_length
        if expected is not None and (stream.data_received > expected
                                     or (end and stream.data_received != expected)):
            raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR,
                               f"DATA ({stream.data_received} bytes) disagrees with "
                               f"content-length ({expected})")
        events.append(DataReceived(sid, data, end))
        if end:
            self._move(stream, StreamInput.RECV_END_STREAM)

    def _on_headers(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if not sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a HEADERS frame on stream 0")
        fragment, priority = f.parse_headers(flags, payload)
        self._block_self_dependent = priority is not None and priority[1] == sid
        if flags & f.END_HEADERS:
            self._headers_complete(sid, flags, fragment, events)
            return
        self._block_stream = sid
        self._block_flags = flags
        self._block = [fragment]
        self._block_size = len(fragment)
        self._block_frames = 0

    def _on_continuation(self, flags: int, sid: int, payload: bytes,
                         events: list[Event]) -> None:
        if not self._block_stream or sid != self._block_stream:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                   "a CONTINUATION frame without a header block on its stream")
        self._block_frames += 1
        self._block_size += len(payload)
        if self._block_frames > self.limits.max_continuation_frames:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "CONTINUATION flood",
                                   "continuation")
        if self._block_size > self.limits.max_header_list_size + 4096:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM,
                                   "a header block larger than the header list limit",
                                   "continuation")
        self._block.append(payload)
        if flags & f.END_HEADERS:
            block = b"".join(self._block)
            self._block = []
            self._block_stream = 0
            self._headers_complete(sid, self._block_flags, block, events)

    def _decode(self, block: bytes) -> list[Header]:
        try:
            return self.decoder.decode(block)
        except HeaderListTooLarge:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM,
                                   "the header list is over SETTINGS_MAX_HEADER_LIST_SIZE",
                                   "hpack_bomb") from None
        except HpackError as e:
            raise _ConnectionError(ErrorCode.COMPRESSION_ERROR,
                                   f"the header block does not decode: {e}") from None

    def _headers_complete(self, sid: int, flags: int, block: bytes, events: list[Event]) -> None:
        headers = self._decode(block)
        end = bool(flags & f.END_STREAM)
        stream = self.streams.get(sid)
        if stream is None:
            stream = self._open_remote(sid, headers)
            if stream is None:
                return
            if self._block_self_dependent:
                raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR, "a stream depends on itself")
            self._move(stream, StreamInput.RECV_HEADERS)
            stream.headers_received = True
            urgency = self._early_priority.pop(sid, 3)
            lengths = set()
            for name, value in headers:
                if name == b"content-length":
                    try:  # the same reading as the HTTP/1.1 side ("3, 3" is 3)
                        lengths.add(content_length_value(value))
                    except MalformedMessage:
                        lengths.add(-1)  # the request is refused as malformed anyway
                elif name == b"priority":
                    urgency = f.parse_priority_field(value)[0]
            if len(lengths) == 1 and -1 not in lengths:
                stream.content_length = lengths.pop()
            if end and stream.content_length:
                raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR,
                                   "END_STREAM with a non-zero content-length")
            events.append(HeadersReceived(sid, headers, end, False, urgency))
            if end:
                self._move(stream, StreamInput.RECV_END_STREAM)
            return
        if self._block_self_dependent:
            raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR, "a stream depends on itself")
        self._move(stream, StreamInput.RECV_HEADERS)
        informational = False
        if self.client and headers and headers[0][0] == b":status":
            status = headers[0][1]
            informational = len(status) == 3 and status[:1] == b"1"
            if not stream.headers_received or informational:
                for name, value in headers:
                    if name == b"content-length":
                        try:
                            stream.content_length = content_length_value(value)
                        except MalformedMessage:
                            stream.content_length = None
        trailers = stream.headers_received and not informational and (
            not self.client or stream.data_received > 0 or end)
        if stream.headers_received and not informational and not end:
            raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR,
                               "a second header block without END_STREAM")
        if not informational:
            stream.headers_received = True
        if end and stream.content_length and stream.data_received != stream.content_length:
            raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR,
                               "the stream ended short of its content-length")
        events.append(HeadersReceived(sid, headers, end, trailers, 3))
        if end:
            self._move(stream, StreamInput.RECV_END_STREAM)

    def _open_remote(self, sid: int, headers: list[Header]) -> Stream | None:
        """A HEADERS frame on a stream this side does not hold: a new stream from the peer,
        or a late frame on a closed one (None: ignore)."""
        if (sid & 1) != (0 if self.client else 1):
            if self.client:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"HEADERS on stream {sid}, which the server cannot open")
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                   f"a client opened even-numbered stream {sid}")
        if sid <= self.highest_remote_id:
            self._lookup(sid, StreamInput.RECV_HEADERS)  # raises unless we reset it
            return None
        self.highest_remote_id = sid
        if self.goaway_sent is not None and sid > self.goaway_sent:
            self._remember_closed(sid, True)
            return None  # after GOAWAY, new streams are ignored (§6.8)
        limits = self.limits
        if len(self.streams) >= limits.max_concurrent_streams:
            raise _StreamError(sid, ErrorCode.REFUSED_STREAM,
                               "over SETTINGS_MAX_CONCURRENT_STREAMS")
        stream = Stream(sid, self.peer_initial_window, limits.initial_window_size)
        self.streams[sid] = stream
        return stream

    def _on_priority(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if not sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a PRIORITY frame on stream 0")
        try:
            _exclusive, dependency, _weight = f.parse_priority(payload)
        except FrameError as e:
            raise _StreamError(sid, e.code, e.reason) from None
        if dependency == sid:
            raise _StreamError(sid, ErrorCode.PROTOCOL_ERROR, "a stream depends on itself")

    def _on_rst_stream(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if not sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a RST_STREAM frame on stream 0")
        code = f.parse_rst_stream(payload)
        stream = self.streams.get(sid)
        if stream is None:
            if sid in self._closed:
                return
            if sid > self._highest_id_of(sid):
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"RST_STREAM on idle stream {sid}")
            return
        limits = self.limits
        counts = self._tick()
        counts[0] += 1
        self.rst_received += 1
        if not stream.responded:
            self.rst_abusive += 1
        if counts[0] > limits.max_rst_stream_per_window \
                or self.rst_received > limits.max_rst_stream_lifetime \
                or self.rst_abusive > limits.max_rst_stream_abusive_lifetime:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "RST_STREAM flood (rapid reset)",
                                   "rapid_reset")
        self._move(stream, StreamInput.RECV_RST_STREAM)
        events.append(StreamReset(sid, code, True))

    def _on_settings(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a SETTINGS frame on a stream")
        settings = f.parse_settings(flags, payload)
        if flags & f.ACK:
            return
        counts = self._tick()
        counts[2] += 1
        if counts[2] > self.limits.max_settings_per_window:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "SETTINGS flood", "settings")
        grew = False
        for ident, value in settings:
            if ident == Setting.INITIAL_WINDOW_SIZE:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
                    if stream.send_window > f.MAX_WINDOW:
                        raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR,
                                               "SETTINGS_INITIAL_WINDOW_SIZE overflows a "
                                               "stream window")
                grew = grew or delta > 0
            elif ident == Setting.MAX_FRAME_SIZE:
                self.peer_max_frame_size = value
            elif ident == Setting.HEADER_TABLE_SIZE:
                if value < self.peer_header_table_size:
                    self._table_update = True
                self.peer_header_table_size = value
            elif ident == Setting.MAX_CONCURRENT_STREAMS:
                self.peer_max_concurrent_streams = value
            elif ident == Setting.ENABLE_PUSH:
                if self.client and value:
                    raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                           "a server set SETTINGS_ENABLE_PUSH")
                self.peer_enable_push = bool(value)
        self._out.append(f.SETTINGS_ACK_FRAME)
        if grew:
            events.append(WindowUpdated(0))

    def _on_push_promise(self, flags: int, sid: int, payload: bytes,
                         events: list[Event]) -> None:
        raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                               "PUSH_PROMISE received (push is disabled)")

    def _on_ping(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a PING frame on a stream")
        data = f.parse_ping(payload)
        if flags & f.ACK:
            events.append(PingAcked(data))
            return
        counts = self._tick()
        counts[1] += 1
        if counts[1] > self.limits.max_ping_per_window:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "PING flood", "ping")
        self._out.append(f.ping_frame(data, ack=True))

    def _on_goaway(self, flags: int, sid: int, payload: bytes, events: list[Event]) -> None:
        if sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a GOAWAY frame on a stream")
        last, code, debug = f.parse_goaway(payload)
        self.goaway_received = last
        events.append(GoAwayReceived(last, code, debug))

    def _on_window_update(self, flags: int, sid: int, payload: bytes,
                          events: list[Event]) -> None:
        try:
            increment = f.parse_window_update(payload)
        except FrameError as e:
            if sid and e.code == ErrorCode.PROTOCOL_ERROR and sid in self.streams:
                raise _StreamError(sid, e.code, e.reason) from None
            raise
        if not sid:
            counts = self._tick()
            counts[4] += 1
            if counts[4] > self.limits.max_window_update_stream0_per_window:
                raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "WINDOW_UPDATE flood",
                                       "window_update")
            self.send_window += increment
            if self.send_window > f.MAX_WINDOW:
                raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR,
                                       "the connection window went over 2^31-1")
            events.append(WindowUpdated(0))
            return
        stream = self.streams.get(sid)
        if stream is None:
            if sid in self._closed or sid <= self._highest_id_of(sid):
                return  # may cross our END_STREAM or RST_STREAM (§6.9)
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                   f"WINDOW_UPDATE on idle stream {sid}")
        stream.send_window += increment
        if stream.send_window > f.MAX_WINDOW:
            raise _StreamError(sid, ErrorCode.FLOW_CONTROL_ERROR,
                               "the stream window went over 2^31-1")
        events.append(WindowUpdated(sid))

    def _on_priority_update(self, flags: int, sid: int, payload: bytes,
                            events: list[Event]) -> None:
        if sid:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "a PRIORITY_UPDATE on a stream")
        target, urgency, incremental = f.parse_priority_update(payload)
        if not target:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY_UPDATE for stream 0")
        if target in self.streams:
            events.append(PriorityUpdated(target, urgency, incremental))
        elif target > self._highest_id_of(target) and len(self._early_priority) < 128:
            self._early_priority[target] = urgency

    # -- flow control -------------------------------------------------------------------------
    def _acknowledge_connection(self, n: int) -> None:
        self._recv_unacked += n
        target = max(f.DEFAULT_WINDOW, self.limits.initial_connection_window)
        if self._recv_unacked >= target // 2:
            self._out.append(f.window_update_frame(0, self._recv_unacked))
            self.recv_window += self._recv_unacked
            self._recv_unacked = 0

    def acknowledge_data(self, stream_id: int, n: int) -> None:
        """The application consumed ``n`` bytes of DATA: open the windows again (a
        WINDOW_UPDATE goes out once half a window is owed, not per frame)."""
        if n <= 0:
            return
        self._acknowledge_connection(n)
        stream = self.streams.get(stream_id)
        if stream is None or stream.state not in _RECEIVING:
            return  # the peer sends no more on it: no need to open its window
        stream.recv_unacked += n
        if stream.recv_unacked >= self.limits.initial_window_size // 2:
            self._out.append(f.window_update_frame(stream_id, stream.recv_unacked))
            stream.recv_window += stream.recv_unacked
            stream.recv_unacked = 0

    def sendable(self, stream_id: int) -> int:
        """How many DATA bytes may go out on ``stream_id`` now."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return 0
        return max(0, min(stream.send_window, self.send_window))

    # -- sending ------------------------------------------------------------------------------
    def new_stream_id(self) -> int:
        sid = self.next_local_id
        self.next_local_id += 2
        return sid

    def send_headers(self, stream_id: int, headers: list[Header], end_stream: bool = False,
                     block: bytes | None = None) -> None:
        """Queue HEADERS (and CONTINUATION) for ``headers``; ``block``: their HPACK block
        when the caller already has it (the encoder is stateless: the same bytes)."""
        stream = self.streams.get(stream_id)
        if stream is None:
            if not self.client:
                raise RuntimeError(f"no stream {stream_id} to answer")
            stream = Stream(stream_id, self.peer_initial_window, self.limits.initial_window_size)
            self.streams[stream_id] = stream
        self._move(stream, StreamInput.SEND_HEADERS)
        stream.responded = True
        if block is None:
            block = encode_headers(headers)
        if self._table_update:  # the peer lowered its table: say ours is empty (§4.2)
            block = table_size_update(0) + block
            self._table_update = False
        self._out.append(f.headers_frames(stream_id, block, end_stream, self.peer_max_frame_size))
        if end_stream:
            self._move(stream, StreamInput.SEND_END_STREAM)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue DATA; ``data`` must fit ``sendable`` (split to the peer's frame size)."""
        stream = self.streams[stream_id]
        n = len(data)
        if n > stream.send_window or n > self.send_window:
            raise RuntimeError(f"{n} bytes over the flow-control window of stream {stream_id}")
        self._move(stream, StreamInput.SEND_DATA)
        stream.send_window -= n
        self.send_window -= n
        size = self.peer_max_frame_size
        out = self._out
        if n <= size:
            out.append(f.frame_header(f.DATA, f.END_STREAM if end_stream else 0, stream_id, n))
            out.append(data)
        else:
            view = memoryview(data)
            for pos in range(0, n, size):
                chunk = view[pos : pos + size]
                last = pos + size >= n
                out.append(f.frame_header(f.DATA, f.END_STREAM if end_stream and last else 0,
                                          stream_id, len(chunk)))
                out.append(bytes(chunk))
        if end_stream:
            self._move(stream, StreamInput.SEND_END_STREAM)

    def reset_stream(self, stream_id: int, code: ErrorCode = ErrorCode.CANCEL) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        self._out.append(f.rst_stream_frame(stream_id, code))
        self._drop(stream, reset=True)

    def ping(self, payload: bytes = b"\0" * 8) -> None:
        self._out.append(f.ping_frame(payload))

    def goaway(self, code: ErrorCode = ErrorCode.NO_ERROR, last_stream_id: int | None = None,
               debug: bytes = b"") -> None:
        """Queue GOAWAY. A first, graceful one may announce 2^31-1 (streams in flight may
        still open); the final one names the highest stream that will be processed."""
        last = self.highest_remote_id if last_stream_id is None else last_stream_id
        self.goaway_sent = last
        self._out.append(f.goaway_frame(last, code, debug))
