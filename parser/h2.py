"""HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte header, each type's payload, and the
checks that belong to one frame alone.

Theory of operation
-------------------
A frame is ``length (24) | type (8) | flags (8) | R (1) | stream id (31) | payload``. This
module is sans-IO like the rest of ``parser/``: :class:`FrameReader` is fed bytes and
returns complete frames as ``(type, flags, stream_id, payload)`` tuples, the ``parse_*``
functions read one type's payload, and the ``*_frame`` functions build frames.

What can be decided from one frame alone is decided here and raised as
:class:`FrameError` with the RFC's error code: a payload of the wrong size
(``FRAME_SIZE_ERROR``), padding as long as the payload (``PROTOCOL_ERROR``), a setting
out of range, a zero window increment. Whether that error ends the stream or the whole
connection depends on the stream and the state, which only the connection machine
(``protocols/h2_connection.py``) knows, so the error carries no scope.

Frame length against ``SETTINGS_MAX_FRAME_SIZE`` is checked by the reader before the
payload is buffered: a peer cannot make it hold more than one maximal frame.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from typing import Final

__all__ = [
    "PREFACE",
    "ErrorCode",
    "FrameError",
    "FrameReader",
    "Setting",
]

#: What a client sends first (RFC 9113 §3.4), before its SETTINGS frame.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (RFC 9113 §6, RFC 9218 §7.1)
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9
PRIORITY_UPDATE: Final = 0x10

FRAME_NAMES: Final = {
    DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION",
    PRIORITY_UPDATE: "PRIORITY_UPDATE",
}

# flags
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

MAX_WINDOW: Final = 2**31 - 1
DEFAULT_WINDOW: Final = 65_535
MIN_MAX_FRAME_SIZE: Final = 2**14
MAX_MAX_FRAME_SIZE: Final = 2**24 - 1


class ErrorCode(enum.IntEnum):
    """RFC 9113 §7."""

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


class Setting(enum.IntEnum):
    """RFC 9113 §6.5.2, RFC 9218 §2.1."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8
    NO_RFC7540_PRIORITIES = 0x9


class FrameError(Exception):
    """One frame breaks RFC 9113; ``code`` is the error code the RFC asks for."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_HEADER: Final = struct.Struct(">HBBBL")
_U32: Final = struct.Struct(">L")
_U32U32: Final = struct.Struct(">LL")
_SETTING: Final = struct.Struct(">HL")
_PRIORITY: Final = struct.Struct(">LB")

Frame = tuple[int, int, int, bytes]


class FrameReader:
    """Cuts a byte stream into frames.

    ``max_frame_size`` is the SETTINGS_MAX_FRAME_SIZE this endpoint advertised: a longer
    frame raises ``FRAME_SIZE_ERROR`` as soon as its header is seen (RFC 9113 §4.2).
    """

    __slots__ = ("_buf", "max_frame_size")

    def __init__(self, max_frame_size: int = MIN_MAX_FRAME_SIZE) -> None:
        self._buf = b""
        self.max_frame_size = max_frame_size

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return the frames now complete, in order."""
        buf = self._buf + data if self._buf else data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        unpack = _HEADER.unpack_from
        limit = self.max_frame_size
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = (hi << 8) | lo
            if length > limit:
                self._buf = b""
                raise FrameError(ErrorCode.FRAME_SIZE_ERROR,
                                 f"a {FRAME_NAMES.get(ftype, ftype)} frame of {length} bytes "
                                 f"is over SETTINGS_MAX_FRAME_SIZE ({limit})")
            if end - pos - 9 < length:
                break
            start = pos + 9
            pos = start + length
            frames.append((ftype, flags, sid & MAX_WINDOW, buf[start:pos]))
        self._buf = buf[pos:] if pos < end else b""
        return frames


# --- payloads ---------------------------------------------------------------------------

def strip_padding(flags: int, payload: bytes, what: str) -> tuple[bytes, int]:
    """(content, offset of the content) of a frame that may be PADDED (DATA, HEADERS)."""
    if not flags & PADDED:
        return payload, 0
    if not payload:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR, f"a padded {what} frame has no Pad Length")
    pad = payload[0]
    if pad >= len(payload):
        raise FrameError(ErrorCode.PROTOCOL_ERROR,
                         f"{what} padding ({pad}) is not shorter than the payload")
    return payload[1 : len(payload) - pad], 1


def parse_headers(flags: int, payload: bytes) -> tuple[bytes, tuple[bool, int, int] | None]:
    """(header block fragment, (exclusive, dependency, weight) or None) of a HEADERS frame."""
    content, _ = strip_padding(flags, payload, "HEADERS")
    if not flags & PRIORITY_FLAG:
        return content, None
    if len(content) < 5:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR, "a HEADERS frame is too short for its "
                         "priority fields")
    dep, weight = _PRIORITY.unpack_from(content)
    return content[5:], (bool(dep >> 31), dep & MAX_WINDOW, weight + 1)


def parse_priority(payload: bytes) -> tuple[bool, int, int]:
    if len(payload) != 5:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR,
                         f"a PRIORITY frame has {len(payload)} bytes, not 5")
    dep, weight = _PRIORITY.unpack(payload)
    return bool(dep >> 31), dep & MAX_WINDOW, weight + 1


def parse_rst_stream(payload: bytes) -> int:
    if len(payload) != 4:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR,
                         f"a RST_STREAM frame has {len(payload)} bytes, not 4")
    code: int = _U32.unpack(payload)[0]
    return code


def parse_settings(flags: int, payload: bytes) -> list[tuple[int, int]]:
    """The (identifier, value) pairs of a SETTINGS frame, each value checked (§6.5.2).
    Unknown identifiers are kept: the caller ignores them (§6.5.2, last paragraph)."""
    if flags & ACK:
        if payload:
            raise FrameError(ErrorCode.FRAME_SIZE_ERROR, "a SETTINGS ACK has a payload")
        return []
    if len(payload) % 6:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR,
                         f"a SETTINGS payload of {len(payload)} bytes is not a multiple of 6")
    out = []
    for ident, value in _SETTING.iter_unpack(payload):
        if ident == Setting.ENABLE_PUSH and value > 1:
            raise FrameError(ErrorCode.PROTOCOL_ERROR, f"SETTINGS_ENABLE_PUSH is {value}")
        if ident == Setting.INITIAL_WINDOW_SIZE and value > MAX_WINDOW:
            raise FrameError(ErrorCode.FLOW_CONTROL_ERROR,
                             f"SETTINGS_INITIAL_WINDOW_SIZE {value} is over 2^31-1")
        if ident == Setting.MAX_FRAME_SIZE \
                and not MIN_MAX_FRAME_SIZE <= value <= MAX_MAX_FRAME_SIZE:
            raise FrameError(ErrorCode.PROTOCOL_ERROR,
                             f"SETTINGS_MAX_FRAME_SIZE {value} is outside 2^14..2^24-1")
        if ident in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.NO_RFC7540_PRIORITIES) \
                and value > 1:
            raise FrameError(ErrorCode.PROTOCOL_ERROR, f"setting {ident:#x} is {value}")
        out.append((ident, value))
    return out


def parse_ping(payload: bytes) -> bytes:
    if len(payload) != 8:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR, f"a PING frame has {len(payload)} bytes")
    return payload


def parse_goaway(payload: bytes) -> tuple[int, int, bytes]:
    """(last stream id, error code, debug data)."""
    if len(payload) < 8:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR, "a GOAWAY frame is shorter than 8 bytes")
    last, code = _U32U32.unpack_from(payload)
    return last & MAX_WINDOW, code, payload[8:]


def parse_window_update(payload: bytes) -> int:
    """The increment; 0 is a PROTOCOL_ERROR (§6.9), of the stream or the connection."""
    if len(payload) != 4:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR,
                         f"a WINDOW_UPDATE frame has {len(payload)} bytes, not 4")
    increment: int = _U32.unpack(payload)[0] & MAX_WINDOW
    if not increment:
        raise FrameError(ErrorCode.PROTOCOL_ERROR, "a WINDOW_UPDATE increment of 0")
    return increment


def parse_priority_update(payload: bytes) -> tuple[int, int, bool]:
    """(prioritized stream id, urgency 0-7, incremental) of an RFC 9218 PRIORITY_UPDATE.
    A field value that does not parse leaves the defaults (urgency 3, not incremental)."""
    if len(payload) < 4:
        raise FrameError(ErrorCode.FRAME_SIZE_ERROR, "a PRIORITY_UPDATE frame is too short")
    sid = _U32.unpack_from(payload)[0] & MAX_WINDOW
    urgency, incremental = parse_priority_field(payload[4:])
    return sid, urgency, incremental


def parse_priority_field(value: bytes) -> tuple[int, bool]:
    """RFC 9218 §4 ``u=N, i`` (a Structured Fields dictionary); unknown or bad members
    are ignored, as §4 asks."""
    urgency, incremental = 3, False
    for member in value.split(b","):
        key, _, val = member.strip().partition(b"=")
        key = key.split(b";", 1)[0].strip()
        val = val.split(b";", 1)[0].strip()
        if key == b"u" and len(val) == 1 and 48 <= val[0] <= 55:
            urgency = val[0] - 48
        elif key == b"i":
            incremental = val in (b"", b"?1")
    return urgency, incremental


# --- building frames --------------------------------------------------------------------

def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEADER.pack(n >> 8, n & 0xFF, ftype, flags, stream_id) + payload


def frame_header(ftype: int, flags: int, stream_id: int, length: int) -> bytes:
    return _HEADER.pack(length >> 8, length & 0xFF, ftype, flags, stream_id)


def headers_frames(stream_id: int, block: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """A HEADERS frame and as many CONTINUATION frames as ``block`` needs."""
    flags = END_STREAM if end_stream else 0
    if len(block) <= max_frame_size:
        return frame(HEADERS, flags | END_HEADERS, stream_id, block)
    parts = [frame(HEADERS, flags, stream_id, block[:max_frame_size])]
    pos = max_frame_size
    while pos < len(block):
        chunk = block[pos : pos + max_frame_size]
        pos += len(chunk)
        parts.append(frame(CONTINUATION, END_HEADERS if pos >= len(block) else 0, stream_id,
                           chunk))
    return b"".join(parts)


def settings_frame(settings: dict[int, int] | Sequence[tuple[int, int]]) -> bytes:
    items = settings.items() if isinstance(settings, dict) else settings
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in items))


SETTINGS_ACK_FRAME: Final = frame(SETTINGS, ACK, 0)


def ping_frame(payload: bytes, ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, payload)


def goaway_frame(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, _U32U32.pack(last_stream_id, code) + debug)


def rst_stream_frame(stream_id: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, stream_id, _U32.pack(code))


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def priority_update_frame(stream_id: int, field: bytes) -> bytes:
    return frame(PRIORITY_UPDATE, 0, 0, _U32.pack(stream_id) + field)
