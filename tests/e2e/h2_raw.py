"""A raw HTTP/2 client for the conformance tests: exact frames out, parsed frames in.

Unlike ``h2_helpers.H2Client`` (the ``h2`` package, which refuses to send what RFC 9113
forbids), :class:`H2Raw` builds every frame it sends by hand with ``struct``, so a test can
send any frame, valid or not: a wrong length, a reserved bit, a stream id of 0, padding
longer than the payload. Header blocks come from ``hpack``'s ``Encoder`` (one per connection,
as HPACK requires), or are given as raw bytes when a test needs an invalid block.

Reading is the other half. :meth:`H2Raw.read_frame` parses what the server sends and keeps
the protocol going the way a conforming client must: it ACKs the server's SETTINGS, answers
its PINGs, decodes every header block in order (HPACK state is per connection), gives the
flow-control windows back for DATA it receives (``auto_window``), and checks, on every DATA
frame, that the server stayed within the windows this client advertised (RFC 9113 §6.9.1)
and within its SETTINGS_MAX_FRAME_SIZE (§4.2): a server that breaks either fails the test
at once. Responses are collected per stream, so several can be read in any order.

The ``expect_*`` helpers read frames until the one they are about arrives, skipping the
connection's noise (SETTINGS, WINDOW_UPDATE, PING ACKs) and failing with the frames seen so
far when something else happens (a GOAWAY where a RST_STREAM was due, an EOF). Every read
is bounded by the socket timeout (``WAIT``): nothing here sleeps. To show that the server
is still there, and that it processed everything sent before, :meth:`H2Raw.ping_sync` sends
a PING and reads up to its ACK: the server handles frames in order.
"""

from __future__ import annotations

import enum
import itertools
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hpack

from tests.conftest import WAIT
from tests.e2e.http_helpers import HOST

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class T(enum.IntEnum):
    """Frame types (RFC 9113 §6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class E(enum.IntEnum):
    """Error codes (RFC 9113 §7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class S(enum.IntEnum):
    """Settings (RFC 9113 §6.5.2)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20

DEFAULT_WINDOW = 65_535
MAX_WINDOW = 2**31 - 1
DEFAULT_MAX_FRAME_SIZE = 16_384

#: frames a test rarely cares about: skipped by ``next_frame`` unless asked for
NOISE = frozenset({T.SETTINGS, T.WINDOW_UPDATE})

Header = tuple[bytes, bytes]
HeaderLike = tuple[str | bytes, str | bytes]


def _name(ftype: int) -> str:
    try:
        return T(ftype).name
    except ValueError:
        return f"0x{ftype:02x}"


def _code(code: int) -> str:
    try:
        return E(code).name
    except ValueError:
        return f"0x{code:x}"


@dataclass
class Frame:
    """A frame the server sent; ``headers``: the decoded block of a HEADERS frame (its
    CONTINUATION frames folded in)."""

    type: int
    flags: int
    stream_id: int
    payload: bytes
    headers: list[Header] | None = None

    @property
    def code(self) -> int:
        """The error code of a RST_STREAM or GOAWAY."""
        offset = 4 if self.type == T.GOAWAY else 0
        code: int = struct.unpack_from(">L", self.payload, offset)[0]
        return code

    @property
    def last_stream_id(self) -> int:
        last: int = struct.unpack_from(">L", self.payload)[0] & MAX_WINDOW
        return last

    @property
    def end_stream(self) -> bool:
        return self.type in (T.DATA, T.HEADERS) and bool(self.flags & END_STREAM)

    @property
    def ack(self) -> bool:
        return self.type in (T.SETTINGS, T.PING) and bool(self.flags & ACK)

    def __repr__(self) -> str:
        extra = ""
        if self.type in (T.RST_STREAM, T.GOAWAY) and len(self.payload) >= 4:
            extra = " " + _code(self.code)
            if self.type == T.GOAWAY:
                extra += f" last={self.last_stream_id} {self.payload[8:]!r}"
        elif self.headers is not None:
            extra = f" {self.headers!r}"
        elif self.type == T.DATA:
            extra = f" {len(self.payload)}B"
        elif self.type in (T.PING, T.SETTINGS, T.WINDOW_UPDATE):
            extra = f" {self.payload.hex()}"
        return (f"<{_name(self.type)} stream={self.stream_id} flags=0x{self.flags:02x}"
                f"{extra}>")


@dataclass
class Response:
    """What the server sent on one stream."""

    stream_id: int
    status: int | None = None
    headers: list[Header] = field(default_factory=list)
    informational: list[list[Header]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[Header] | None = None
    data_frames: list[int] = field(default_factory=list)  # payload length of each DATA
    ended: bool = False
    reset: int | None = None

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


class Closed(AssertionError):
    """The server closed the connection while a test waited for something else."""


# -- building frames (by hand, so that invalid ones are possible) -------------------------------


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"", *,
          length: int | None = None, reserved: bool = False) -> bytes:
    """One frame. ``length`` overrides the length field (the payload is sent as given);
    ``reserved`` sets the reserved bit before the stream id."""
    n = len(payload) if length is None else length
    sid = stream_id | (0x80000000 if reserved else 0)
    return struct.pack(">HBBBL", n >> 8, n & 0xFF, ftype, flags, sid) + payload


def settings_payload(settings: dict[int, int] | Sequence[tuple[int, int]]) -> bytes:
    items = settings.items() if isinstance(settings, dict) else settings
    return b"".join(struct.pack(">HL", k, v) for k, v in items)


def priority_fields(dependency: int, weight: int = 16, exclusive: bool = False) -> bytes:
    """The 5 bytes of a priority block (§6.3): E + stream dependency, weight - 1."""
    return struct.pack(">LB", dependency | (0x80000000 if exclusive else 0), weight - 1)


def pad(content: bytes, pad_length: int) -> bytes:
    """A PADDED payload: the Pad Length byte, ``content``, then ``pad_length`` zeros."""
    return bytes([pad_length]) + content + b"\0" * pad_length


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with ``first`` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2): exact
    bytes on the wire, whatever the HPACK encoder would do with them, and no table
    change."""
    return (b"\x00" + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0)
            + value)


def _b(x: str | bytes) -> bytes:
    return x.encode("latin-1") if isinstance(x, str) else x


def request_headers(path: str | bytes = "/", *, method: str | bytes = "GET",
                    authority: str | bytes | None = HOST, scheme: str | bytes = "http",
                    extra: Iterable[HeaderLike] = ()) -> list[Header]:
    """A request's field list: the pseudo-headers, then ``extra``."""
    fields = [(b":method", _b(method)), (b":scheme", _b(scheme)), (b":path", _b(path))]
    if authority is not None:
        fields.append((b":authority", _b(authority)))
    fields += [(_b(n), _b(v)) for n, v in extra]
    return fields


# -- the client -----------------------------------------------------------------------------------


class H2Raw:
    """One HTTP/2 connection (h2c, prior knowledge) driven frame by frame.

    ``settings``: the client's SETTINGS after the preface (``None``: an empty frame).
    ``preface``: the bytes sent first (a test of §3.4 gives a wrong one; ``b""`` and
    ``settings=None, send_settings=False`` send nothing). ``auto_window``: send
    WINDOW_UPDATE for every DATA received, so large responses flow.
    """

    def __init__(self, address: str, *, settings: dict[int, int] | None = None,
                 preface: bytes = PREFACE, send_settings: bool = True,
                 timeout: float = WAIT, auto_window: bool = True) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.auto_window = auto_window
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = bytearray()
        self.eof = False
        self.send_failed = False
        #: every frame received, in order (for failure messages and assertions)
        self.log: list[Frame] = []
        self.server_settings: dict[int, int] = {}
        self.settings_frames = 0  # non-ACK SETTINGS received
        self.settings_acks = 0  # ACKs of ours received
        self.goaway_received: Frame | None = None
        self.responses: dict[int, Response] = {}
        self.pings: list[bytes] = []  # payloads of PING ACKs received
        # flow control of what the server sends (our receive windows)
        self.local_settings: dict[int, int] = {}
        self._pending_settings: list[dict[int, int]] = []
        self.initial_window = DEFAULT_WINDOW
        self.conn_window = DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}
        self.max_frame_size = DEFAULT_MAX_FRAME_SIZE
        # flow control of what this client sends (the server's receive windows)
        self.send_conn_window = DEFAULT_WINDOW
        self.send_initial_window = DEFAULT_WINDOW
        self.send_stream_windows: dict[int, int] = {}
        self._block: list[Frame] = []  # a HEADERS frame waiting for its CONTINUATIONs
        self._ping_ids = itertools.count(1)
        out = bytearray(preface)
        if send_settings:
            out += self._settings_frame(settings or {})
        if out:
            self.send(bytes(out))

    # -- sending ------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Write ``data``; a server that already closed is noted (``send_failed``), not
        raised: the test then reads what the server said before closing."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True

    def send_frame(self, ftype: int, flags: int, stream_id: int, payload: bytes = b"", *,
                   length: int | None = None, reserved: bool = False) -> None:
        self.send(frame(ftype, flags, stream_id, payload, length=length, reserved=reserved))

    def encode(self, headers: Iterable[HeaderLike]) -> bytes:
        """A header block from the connection's HPACK encoder (which keeps its table)."""
        return bytes(self.encoder.encode([(_b(n), _b(v)) for n, v in headers]))

    def headers(self, stream_id: int, headers: Iterable[HeaderLike] | None = None, *,
                block: bytes | None = None, end_stream: bool = True, end_headers: bool = True,
                padding: int | None = None, priority: bytes | None = None,
                flags: int = 0) -> None:
        """A HEADERS frame with ``headers`` encoded (or the raw ``block``)."""
        if block is None:
            block = self.encode(headers or [])
        f = flags
        if end_stream:
            f |= END_STREAM
        if end_headers:
            f |= END_HEADERS
        if priority is not None:
            f |= PRIORITY
            block = priority + block
        if padding is not None:
            f |= PADDED
            block = pad(block, padding)
        self.send_frame(T.HEADERS, f, stream_id, block)

    def request(self, stream_id: int, path: str | bytes = "/", *, method: str | bytes = "GET",
                authority: str | bytes | None = HOST, extra: Iterable[HeaderLike] = (),
                end_stream: bool = True, **kwargs: Any) -> None:
        """A request's HEADERS frame (``extra`` fields after the pseudo-headers)."""
        self.headers(stream_id, request_headers(path, method=method, authority=authority,
                                                extra=extra),
                     end_stream=end_stream, **kwargs)

    def continuation(self, stream_id: int, block: bytes, *, end_headers: bool = True) -> None:
        self.send_frame(T.CONTINUATION, END_HEADERS if end_headers else 0, stream_id, block)

    def data(self, stream_id: int, payload: bytes = b"", *, end_stream: bool = False,
             padding: int | None = None, flags: int = 0) -> None:
        f = flags | (END_STREAM if end_stream else 0)
        if padding is not None:
            f |= PADDED
            payload = pad(payload, padding)
        self.send_conn_window -= len(payload)
        self.send_stream_windows[stream_id] = self.sendable_stream(stream_id) - len(payload)
        self.send_frame(T.DATA, f, stream_id, payload)

    def sendable_stream(self, stream_id: int) -> int:
        return self.send_stream_windows.get(stream_id, self.send_initial_window)

    def send_body(self, stream_id: int, body: bytes, *, end_stream: bool = True) -> None:
        """Send ``body`` in DATA frames within the server's flow-control windows and frame
        size, reading frames (and so the server's WINDOW_UPDATEs) while they are full."""
        view = memoryview(body)
        frame_size = self.server_settings.get(S.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE)
        while True:
            room = min(self.send_conn_window, self.sendable_stream(stream_id), frame_size)
            if view and room <= 0:
                if self.read_frame() is None:
                    raise self._fail(f"room to send on stream {stream_id}", None)
                continue
            chunk, view = view[:room], view[room:]
            self.data(stream_id, bytes(chunk), end_stream=end_stream and not view)
            if not view:
                return

    def _settings_frame(self, settings: dict[int, int]) -> bytes:
        """A SETTINGS frame; the receive windows it changes are tracked: a larger initial
        window at once (the server may use it as soon as it reads it), a smaller one when
        the server ACKs it (it may send under the old one until then)."""
        on_ack: dict[int, int] = {}
        window = settings.get(S.INITIAL_WINDOW_SIZE)
        if window is not None and window <= MAX_WINDOW:
            if window >= self.initial_window:
                self._apply_initial_window(window)
            else:
                on_ack[S.INITIAL_WINDOW_SIZE] = window
        self._pending_settings.append(on_ack)
        frame_size = settings.get(S.MAX_FRAME_SIZE)
        if frame_size is not None:
            self.max_frame_size = max(self.max_frame_size, frame_size)
        self.local_settings.update(settings)
        return frame(T.SETTINGS, 0, 0, settings_payload(settings))

    def _apply_initial_window(self, window: int) -> None:
        delta = window - self.initial_window
        self.initial_window = window
        for sid in self.stream_windows:
            self.stream_windows[sid] += delta

    def settings(self, settings: dict[int, int] | None = None) -> None:
        self.send(self._settings_frame(settings or {}))

    def ping(self, payload: bytes = b"12345678", *, ack: bool = False) -> None:
        self.send_frame(T.PING, ACK if ack else 0, 0, payload)

    def rst_stream(self, stream_id: int, code: int = E.CANCEL) -> None:
        self.send_frame(T.RST_STREAM, 0, stream_id, struct.pack(">L", code))

    def window_update(self, stream_id: int, increment: int) -> None:
        self.send_frame(T.WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))
        if 0 < increment <= MAX_WINDOW:
            if stream_id:
                self.stream_windows[stream_id] = self._window(stream_id) + increment
            else:
                self.conn_window += increment

    def priority(self, stream_id: int, dependency: int = 0, weight: int = 16,
                 exclusive: bool = False) -> None:
        self.send_frame(T.PRIORITY, 0, stream_id, priority_fields(dependency, weight, exclusive))

    def goaway(self, last_stream_id: int = 0, code: int = E.NO_ERROR, debug: bytes = b"") -> None:
        self.send_frame(T.GOAWAY, 0, 0, struct.pack(">LL", last_stream_id, code) + debug)

    # -- reading ------------------------------------------------------------------------------
    def _window(self, stream_id: int) -> int:
        return self.stream_windows.get(stream_id, self.initial_window)

    def _fill(self) -> bool:
        """Read more bytes; False on EOF. A timeout fails the test with what was seen."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            raise AssertionError(f"nothing from the server within {self.sock.gettimeout()} s; "
                                 f"frames so far: {self.log[-20:]!r}") from None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _raw_frame(self) -> Frame | None:
        buf = self.buf
        while True:
            if len(buf) >= 9:
                hi, lo, ftype, flags, sid = struct.unpack_from(">HBBBL", buf)
                length = (hi << 8) | lo
                assert length <= self.max_frame_size, (
                    f"§4.2: the server sent a {_name(ftype)} frame of {length} bytes, over "
                    f"our SETTINGS_MAX_FRAME_SIZE ({self.max_frame_size})")
                if len(buf) >= 9 + length:
                    payload = bytes(buf[9 : 9 + length])
                    del buf[: 9 + length]
                    return Frame(ftype, flags, sid & MAX_WINDOW, payload)
            if not self._fill():
                assert not buf, f"the connection closed inside a frame: {bytes(buf[:64])!r}"
                return None

    def read_frame(self) -> Frame | None:
        """The next frame (a HEADERS with its CONTINUATIONs as one), processed as a client
        must (see the module docstring); None when the server closed the connection."""
        while True:
            fr = self._raw_frame()
            if fr is None:
                if self._block:
                    raise AssertionError(f"EOF inside a header block: {self._block!r}")
                return None
            if self._block:
                assert fr.type == T.CONTINUATION and fr.stream_id == self._block[0].stream_id, (
                    f"§6.10: the server sent {fr!r} inside a header block")
                self._block.append(fr)
                if not fr.flags & END_HEADERS:
                    continue
                first = self._block[0]
                block = self._block
                self._block = []
                fr = Frame(T.HEADERS, first.flags | END_HEADERS, first.stream_id,
                           first.payload + b"".join(c.payload for c in block[1:]))
            elif fr.type == T.HEADERS and not fr.flags & END_HEADERS:
                self._block = [fr]
                continue
            self._process(fr)
            self.log.append(fr)
            return fr

    def _process(self, fr: Frame) -> None:
        ftype = fr.type
        sid = fr.stream_id
        if ftype == T.SETTINGS:
            if fr.flags & ACK:
                self.settings_acks += 1
                if self._pending_settings:
                    applied = self._pending_settings.pop(0)
                    if S.INITIAL_WINDOW_SIZE in applied:
                        self._apply_initial_window(applied[S.INITIAL_WINDOW_SIZE])
            else:
                self.settings_frames += 1
                for ident, value in struct.iter_unpack(">HL", fr.payload):
                    self.server_settings[ident] = value
                    if ident == S.INITIAL_WINDOW_SIZE:
                        delta = value - self.send_initial_window
                        self.send_initial_window = value
                        for key in self.send_stream_windows:
                            self.send_stream_windows[key] += delta
                self.send(frame(T.SETTINGS, ACK, 0))  # §6.5.3: ACK at once
        elif ftype == T.PING:
            if fr.flags & ACK:
                self.pings.append(fr.payload)
            else:
                self.send(frame(T.PING, ACK, 0, fr.payload))
        elif ftype == T.GOAWAY:
            self.goaway_received = fr
        elif ftype == T.WINDOW_UPDATE and len(fr.payload) == 4:
            increment = struct.unpack(">L", fr.payload)[0] & MAX_WINDOW
            if sid:
                self.send_stream_windows[sid] = self.sendable_stream(sid) + increment
            else:
                self.send_conn_window += increment
        elif ftype == T.HEADERS:
            payload = fr.payload
            if fr.flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if fr.flags & PRIORITY:
                payload = payload[5:]
            fr.headers = list(self.decoder.decode(payload, raw=True))
            response = self.response(sid)
            assert fr.headers, f"an empty header block from the server: {fr!r}"
            if fr.headers[0][0] == b":status" and response.status is None:
                status = int(fr.headers[0][1])
                if status < 200:
                    response.informational.append(fr.headers)
                else:
                    response.status = status
                    response.headers = fr.headers
            else:
                response.trailers = fr.headers
            if fr.flags & END_STREAM:
                response.ended = True
        elif ftype == T.DATA:
            n = len(fr.payload)
            self.conn_window -= n
            window = self._window(sid) - n
            self.stream_windows[sid] = window
            assert self.conn_window >= 0, (
                f"§6.9.1: the server sent DATA beyond the connection window "
                f"({self.conn_window + n} left, {n} sent)")
            assert window >= 0, (
                f"§6.9.1: the server sent DATA beyond the window of stream {sid} "
                f"({window + n} left, {n} sent)")
            data = fr.payload
            if fr.flags & PADDED:
                data = data[1 : len(data) - data[0]]
            response = self.response(sid)
            response.body += data
            response.data_frames.append(n)
            if fr.flags & END_STREAM:
                response.ended = True
            if self.auto_window and n:
                self.window_update(0, n)
                if not fr.flags & END_STREAM:
                    self.window_update(sid, n)
        elif ftype == T.RST_STREAM:
            response = self.response(sid)
            response.reset = fr.code
            response.ended = True

    def response(self, stream_id: int) -> Response:
        response = self.responses.get(stream_id)
        if response is None:
            response = self.responses[stream_id] = Response(stream_id)
        return response

    def next_frame(self, *, skip: Iterable[int] = NOISE, skip_ping_acks: bool = True,
                   ) -> Frame | None:
        """The next frame not of a type in ``skip`` (nor a PING ACK, unless asked);
        None on EOF."""
        skipped = frozenset(skip)
        while True:
            fr = self.read_frame()
            if fr is None:
                return None
            if fr.type in skipped or (skip_ping_acks and fr.type == T.PING and fr.ack):
                continue
            return fr

    # -- expectations -------------------------------------------------------------------------
    def _fail(self, what: str, got: Frame | None) -> AssertionError:
        seen = "EOF" if got is None else repr(got)
        cls = Closed if got is None or got.type == T.GOAWAY else AssertionError
        return cls(f"expected {what}, got {seen}; frames so far: {self.log[-20:]!r}")

    def expect_frame(self, ftype: int, stream_id: int | None = None, *,
                     skip: Iterable[int] = NOISE) -> Frame:
        """The next frame that is not noise must be of type ``ftype`` (on ``stream_id``)."""
        fr = self.next_frame(skip=frozenset(skip) - {ftype}, skip_ping_acks=ftype != T.PING)
        if fr is None or fr.type != ftype or (stream_id is not None
                                              and fr.stream_id != stream_id):
            where = "" if stream_id is None else f" on stream {stream_id}"
            raise self._fail(f"{_name(ftype)}{where}", fr)
        return fr

    def expect_closed(self) -> None:
        """The server closes the connection (within the socket timeout); frames it sends
        before closing are read and logged."""
        try:
            while self.read_frame() is not None:
                pass
        except AssertionError as e:
            raise AssertionError(f"the server did not close the connection: {e}") from None

    def expect_goaway(self, code: int, *, last_stream_id: int | None = None) -> Frame:
        """Read until a GOAWAY arrives; check its error code (and last stream id); then
        the server must close the connection."""
        while True:
            fr = self.read_frame()
            if fr is None:
                raise self._fail(f"GOAWAY {_code(code)}", None)
            if fr.type == T.GOAWAY:
                break
        assert fr.code == code, f"GOAWAY {_code(fr.code)}, expected {_code(code)}: {fr!r}"
        if last_stream_id is not None:
            assert fr.last_stream_id == last_stream_id, fr
        self.expect_closed()
        return fr

    def expect_goaway_or_close(self, code: int) -> None:
        """The connection ends: with a GOAWAY of ``code`` if the server sends one."""
        while True:
            fr = self.read_frame()
            if fr is None:
                return
            if fr.type == T.GOAWAY:
                assert fr.code == code, f"GOAWAY {_code(fr.code)}, expected {_code(code)}"
                self.expect_closed()
                return

    def expect_rst(self, stream_id: int, code: int) -> Frame:
        """Read until a RST_STREAM on ``stream_id``; check its code. Frames of other streams
        and noise are skipped; a GOAWAY, an EOF or a response on that stream fail."""
        while True:
            fr = self.read_frame()
            if fr is None or fr.type == T.GOAWAY:
                raise self._fail(f"RST_STREAM {_code(code)} on stream {stream_id}", fr)
            if fr.stream_id != stream_id or fr.type in (T.PRIORITY, T.WINDOW_UPDATE):
                continue
            if fr.type != T.RST_STREAM:
                raise self._fail(f"RST_STREAM {_code(code)} on stream {stream_id}", fr)
            assert fr.code == code, (
                f"RST_STREAM {_code(fr.code)} on stream {stream_id}, expected {_code(code)}")
            return fr

    def expect_error(self, stream_id: int, code: int) -> str:
        """A stream error (RST_STREAM) or a connection error (GOAWAY) of ``code``, where
        the RFC leaves the choice to the endpoint; which one it was."""
        while True:
            fr = self.read_frame()
            if fr is None:
                raise self._fail(f"RST_STREAM or GOAWAY {_code(code)}", None)
            if fr.type == T.GOAWAY:
                assert fr.code == code, f"GOAWAY {_code(fr.code)}, expected {_code(code)}"
                self.expect_closed()
                return "connection"
            if fr.stream_id != stream_id or fr.type in (T.PRIORITY, T.WINDOW_UPDATE):
                continue
            if fr.type != T.RST_STREAM:
                raise self._fail(f"RST_STREAM or GOAWAY {_code(code)}", fr)
            assert fr.code == code, (
                f"RST_STREAM {_code(fr.code)} on stream {stream_id}, expected {_code(code)}")
            return "stream"

    def expect_response(self, stream_id: int) -> Response:
        """Read until the response on ``stream_id`` ended (HEADERS with :status, DATA until
        END_STREAM, maybe trailers); a reset, a GOAWAY or an EOF fail."""
        response = self.response(stream_id)
        while not response.ended:
            fr = self.read_frame()
            if fr is None or (fr.type == T.GOAWAY and fr.code != E.NO_ERROR):
                raise self._fail(f"the response on stream {stream_id}", fr)
        assert response.reset is None, (
            f"stream {stream_id} was reset ({_code(response.reset)}) instead of answered; "
            f"frames so far: {self.log[-20:]!r}")
        assert response.status is not None, f"stream {stream_id} ended without a :status"
        return response

    def ping_sync(self, payload: bytes | None = None) -> list[Frame]:
        """Send a PING and read up to its ACK: the server processed everything sent before
        (it reads in order) and is still up. The frames read meanwhile, noise excluded."""
        if payload is None:
            payload = struct.pack(">Q", 0x5379_6E63_0000_0000 + next(self._ping_ids))
        self.ping(payload)
        seen: list[Frame] = []
        while True:
            fr = self.read_frame()
            if fr is None or fr.type == T.GOAWAY:
                raise self._fail(f"the ACK of PING {payload.hex()}", fr)
            if fr.type == T.PING and fr.ack and fr.payload == payload:
                return seen
            if fr.type not in NOISE:
                seen.append(fr)

    def expect_alive(self) -> None:
        """The connection is still up and nothing was reset or refused since the last
        read (checked with a PING round trip)."""
        seen = self.ping_sync()
        errors = [f for f in seen if f.type in (T.RST_STREAM, T.GOAWAY)]
        assert not errors, f"unexpected {errors!r}"

    def handshake(self) -> None:
        """Read until the server's SETTINGS came and our SETTINGS were ACKed."""
        while not self.settings_frames or self.settings_acks < 1:
            fr = self.read_frame()
            if fr is None:
                raise self._fail("the server's SETTINGS and our ACK", None)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
