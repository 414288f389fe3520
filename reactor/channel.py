"""The command channel: framed JSON over a stream socket, both ends.

Wire format
-----------
Each frame is an 8-byte little-endian length that counts itself, then one UTF-8 JSON
object. A request is ``{"id", "type", <fields>}``; a response ``{"id", "status", "message",
"content"}``; events are pushed with id ``"EVENT"``.

Bad frames never kill the channel. A length under 8 cannot be a frame: its 8 bytes are
dropped and reading goes on with the next bytes. A length over ``max_frame_size`` is
skipped as it arrives (the body is discarded without being held). A body that is not a
JSON object is reported. Each of these becomes a ``FrameError`` handed to the caller, who
answers it with a FAILURE, so the peer always hears why.

``WorkerChannel`` is the worker's non-blocking end, driven by the reactor; ``Channel`` is the
blocking client that users, the CLI and tests hold.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import struct
import time
from collections import deque
from typing import Any

PREFIX = struct.Struct("<Q")
PREFIX_SIZE = PREFIX.size
DEFAULT_MAX_FRAME = 2_000_000
MIN_PENDING_OUTPUT = 16_000_000

log = logging.getLogger("pysozu.channel")


class ChannelError(Exception):
    """The channel is closed or a blocking read timed out."""


class FrameError:
    """A frame that could not be decoded; ``message`` says why, ``id`` if it could be read."""

    __slots__ = ("id", "message")

    def __init__(self, message: str, id: str = "") -> None:
        self.message = message
        self.id = id

    def __repr__(self) -> str:
        return f"FrameError({self.message!r}, id={self.id!r})"


def event_message(kind: str, **fields: Any) -> dict[str, Any]:
    """An event pushed to every channel: id ``EVENT``, status PROCESSING, like Sōzu."""
    return {
        "id": "EVENT",
        "status": "PROCESSING",
        "message": "",
        "content": {"type": "EVENT", "kind": kind, **fields},
    }


def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return PREFIX.pack(len(body) + PREFIX_SIZE) + body


class FrameDecoder:
    """Incremental frame decoder: feed bytes, get messages and ``FrameError``s in order."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized frame still to discard

    def feed(self, data: bytes) -> list[dict[str, Any] | FrameError]:
        buf = self._buf
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buf += data
        out: list[dict[str, Any] | FrameError] = []
        while True:
            if self._skip:
                dropped = min(self._skip, len(buf))
                del buf[:dropped]
                self._skip -= dropped
                if self._skip:
                    break
            if len(buf) < PREFIX_SIZE:
                break
            (length,) = PREFIX.unpack_from(buf)
            if length < PREFIX_SIZE:
                del buf[:PREFIX_SIZE]
                out.append(
                    FrameError(f"invalid frame: length prefix {length} is under {PREFIX_SIZE}")
                )
                continue
            if length > self.max_frame_size:
                out.append(
                    FrameError(
                        f"invalid frame: {length} bytes is over the limit of "
                        f"{self.max_frame_size} bytes"
                    )
                )
                self._skip = length
                continue
            if len(buf) < length:
                break
            body = bytes(buf[PREFIX_SIZE:length])
            del buf[:length]
            out.append(decode_body(body))
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def decode_body(body: bytes) -> dict[str, Any] | FrameError:
    try:
        message = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        return FrameError(f"invalid frame: not UTF-8 ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        return FrameError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}")
    if not isinstance(message, dict):
        return FrameError(f"invalid request: expected a JSON object, got {json_kind(message)}")
    return message


def json_kind(value: Any) -> str:
    """The JSON name of a decoded value, for messages (the peer wrote JSON, not Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class WorkerChannel:
    """The worker's non-blocking end of one channel connection."""

    def __init__(self, sock: socket.socket, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.decoder = FrameDecoder(max_frame_size)
        #: Unsent answers and events a client may leave unread before it is disconnected.
        self.max_pending_output = max(16 * max_frame_size, MIN_PENDING_OUTPUT)
        self._out = bytearray()
        #: The socket is unusable (write error, or closed by us): drop the channel.
        self.closed = False
        #: The peer shut its write side: answer what it sent, then drop the channel.
        self.eof = False
        #: file descriptors that came with the bytes (SCM_RIGHTS on a unix socket: the
        #: main process hands listening sockets to its workers), oldest first
        self.fds: list[int] = []
        self._unix = sock.family == socket.AF_UNIX

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[dict[str, Any] | FrameError]:
        """Read until EAGAIN; sets ``eof`` on EOF and ``closed`` on error."""
        out: list[dict[str, Any] | FrameError] = []
        while True:
            try:
                if self._unix:
                    data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, 16)
                    if fds:
                        self.fds.extend(fds)
                else:
                    data = self.sock.recv(65536)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError:
                self.closed = True
                break
            if not data:
                self.eof = True
                break
            out.extend(self.decoder.feed(data))
        return out

    def take_fd(self) -> int | None:
        """The oldest descriptor received and not taken yet."""
        return self.fds.pop(0) if self.fds else None

    def write(self, message: dict[str, Any]) -> None:
        self._out += encode_frame(message)
        if self.flush() or len(self._out) <= self.max_pending_output:
            return
        # A client that never reads would make the worker hold its answers forever.
        log.warning("closing a command channel that does not read its answers")
        self._out.clear()
        self.close()

    def flush(self) -> bool:
        """Send what is queued; True when everything went out."""
        out = self._out
        while out:
            try:
                n = self.sock.send(out)
            except BlockingIOError:
                return False
            except InterruptedError:
                continue
            except OSError:
                self.closed = True
                out.clear()
                return True
            del out[:n]
        return True

    @property
    def pending_output(self) -> bool:
        return bool(self._out)

    def close(self) -> None:
        self.closed = True
        for fd in self.fds:  # handed over but never claimed
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
        try:
            self.sock.close()
        except OSError:
            pass


_ids = itertools.count()


class Channel:
    """Blocking client end: ``send(request) -> id`` and ``read_response(id, timeout)``.

    Works over a socketpair (worker started in-process) or a unix socket (``pysozu start``).
    Responses to other ids are kept until asked for; events are queued in ``events``.
    """

    def __init__(self, sock: socket.socket, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        sock.setblocking(True)
        self.sock = sock
        self.decoder = FrameDecoder(max_frame_size)
        self.events: deque[dict[str, Any]] = deque()
        self._responses: dict[str, deque[dict[str, Any]]] = {}
        self.errors: deque[FrameError] = deque()

    @classmethod
    def connect(cls, path: str | os.PathLike[str], timeout: float = 5.0) -> Channel:
        """Connect to a running proxy's command socket."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, request: dict[str, Any]) -> str:
        """Send a request (an id is made if it has none) and return its id."""
        if "id" not in request:
            request = {"id": f"req-{os.getpid()}-{next(_ids)}", **request}
        self.send_raw(encode_frame(request))
        return str(request["id"])

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests use it to send malformed frames)."""
        self.sock.settimeout(None)
        self.sock.sendall(data)

    def _read_some(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelError("timed out waiting for the worker")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise ChannelError("timed out waiting for the worker") from None
        except OSError as e:
            raise ChannelError(f"channel error: {e}") from None
        if not data:
            raise ChannelError("the worker closed the channel")
        for message in self.decoder.feed(data):
            if isinstance(message, FrameError):
                self.errors.append(message)
            elif message.get("id") == "EVENT":
                self.events.append(message)
            else:
                self._responses.setdefault(str(message.get("id")), deque()).append(message)

    def read_response(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next response carrying ``request_id`` (PROCESSING ones included)."""
        deadline = time.monotonic() + timeout
        while True:
            queue = self._responses.get(request_id)
            if queue:
                message = queue.popleft()
                if not queue:
                    del self._responses[request_id]
                return message
            self._read_some(deadline)

    def request(self, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send and wait for the final answer (OK or FAILURE), skipping PROCESSING ones."""
        request_id = self.send(request)
        deadline = time.monotonic() + timeout
        while True:
            answer = self.read_response(request_id, max(deadline - time.monotonic(), 0.001))
            if answer.get("status") != "PROCESSING":
                return answer

    def read_event(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next pushed event."""
        deadline = time.monotonic() + timeout
        while not self.events:
            self._read_some(deadline)
        return self.events.popleft()

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Skip events until one of ``kind`` arrives."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.read_event(max(deadline - time.monotonic(), 0.001))
            if event.get("content", {}).get("kind") == kind:
                return event

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
