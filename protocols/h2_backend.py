"""HTTP/2 to backends (cluster ``http2``, cleartext with prior knowledge): a socket handler
that lets the HTTP/1.1 machine talk to an h2c backend unchanged.

Theory of operation
-------------------
:class:`H2BackendHandler` sits where the HTTP/1.1 machine (``protocols/http.py``) expects
the ``SocketHandler`` of its backend connection. The machine writes an HTTP/1.1 request and
reads an HTTP/1.1 response, as with any backend; the handler speaks HTTP/2 on the socket
through a client-side :class:`~pysozu.protocols.h2_connection.H2Connection`:

* writing: the request head is parsed (``parse_request_head``) and becomes a HEADERS frame
  on a new stream (``:authority`` from Host, hop-by-hop fields dropped, RFC 9113 §8.2.2);
  its body, read by the same ``LengthBody``/``ChunkedDecoder`` the proxy trusts, becomes
  DATA frames, and chunked trailers a last HEADERS frame;
* reading: the stream's HEADERS, DATA and trailers become an HTTP/1.1 response: the head,
  then the body as is when the backend gave a content-length, or chunk-encoded otherwise
  (trailers then travel in the last chunk), so the connection stays reusable.

One request at a time per connection (the machine's keep-alive: the next request opens the
next stream on the same connection), so a backend connection is one HTTP/2 connection.

Write-behind: frames the kernel does not take at once stay in ``_out``. A write only reports
bytes as consumed once everything they produced reached the kernel, except that it may
report all but the last byte: the machine then calls again with that byte (and keeps its
interest in writability), and the call flushes first. So the machine never believes a
request sent while frames of it still wait here, and nothing is translated twice
(``_taken`` counts bytes already translated but not yet reported).

Flow control: DATA of the request goes out as the backend's windows allow (the rest waits
in ``_out_data``, and the machine is told would-block while it holds more than 64 KiB);
response DATA is given back to the backend's windows as soon as it is copied out, since the
machine reads only when it has room.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence
from typing import Any

from pysozu.parser import (
    BodyKind,
    ChunkedDecoder,
    LengthBody,
    ParseError,
    parse_request_head,
)
from pysozu.reactor.session import SocketHandler, SocketResult

from .h2_connection import (
    DataReceived,
    GoAwayReceived,
    H2Connection,
    H2Limits,
    HeadersReceived,
    StreamReset,
    Terminated,
)
from .h2_translate import CONNECTION_FIELDS, encode_chunk, h2_fields

Header = tuple[bytes, bytes]

_CONTINUE = SocketResult.CONTINUE
_WOULD_BLOCK = SocketResult.WOULD_BLOCK
_CLOSED = SocketResult.CLOSED
_ERROR = SocketResult.ERROR

#: request body bytes held for flow control before the machine is told would-block
PENDING_DATA_LIMIT = 64 * 1024
_REASONS = {200: b"OK", 204: b"No Content", 304: b"Not Modified", 404: b"Not Found"}
_BACKEND_LIMITS = H2Limits(max_concurrent_streams=1, initial_connection_window=1 << 20)


class H2BackendHandler(SocketHandler):
    """The ``SocketHandler`` of an h2c backend connection (see the module docstring)."""

    __slots__ = ("_body", "_conn", "_eof", "_failed", "_head_buf", "_method", "_out",
                 "_out_data", "_resp", "_resp_chunked", "_resp_done", "_resp_pos", "_stream",
                 "_taken")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._conn = H2Connection(client=True, limits=_BACKEND_LIMITS)
        self._conn.initiate()
        self._out = bytearray(self._conn.data_to_send())
        self._head_buf = b""  # request bytes of a head not complete yet
        self._body: LengthBody | ChunkedDecoder | None = None
        self._stream = 0
        self._method = b"GET"
        #: what waits for the backend's windows: (DATA payload, end) or (trailers, True)
        self._out_data: deque[tuple[bytes | list[Header], bool]] = deque()
        self._taken = 0  # bytes translated but not yet reported as written
        self._resp = bytearray()  # HTTP/1.1 response bytes for the machine
        self._resp_pos = 0
        self._resp_chunked = False
        self._resp_done = True
        self._eof = False
        self._failed = False

    # -- writing (the request) ---------------------------------------------------------------
    def socket_write(self, data: Any) -> tuple[int, SocketResult]:
        if self._failed:
            return 0, _ERROR
        if self._out and not self._flush():
            return 0, (_ERROR if self._failed else _WOULD_BLOCK)
        n = len(data)
        if n > self._taken:
            pending = sum(len(d) for d, _ in self._out_data)  # (trailers count their fields)
            if pending >= PENDING_DATA_LIMIT:
                self._pump_data()
                self._flush()
                return 0, (_ERROR if self._failed else _WOULD_BLOCK)
            try:
                self._translate(bytes(data[self._taken :]))
            except (ParseError, ValueError):
                self._failed = True
                return 0, _ERROR
            self._taken = n
        self._pump_data()
        if self._flush():
            self._taken = 0
            return n, _CONTINUE
        if self._broken():
            return 0, _ERROR
        if n > 1:  # report all but the last byte: the machine calls again (see above)
            self._taken = 1
            return n - 1, _CONTINUE
        return 0, _WOULD_BLOCK

    def socket_write_vectored(self, buffers: Sequence[Any]) -> tuple[int, SocketResult]:
        return self.socket_write(b"".join(bytes(b) for b in buffers))

    def _translate(self, data: bytes) -> None:
        conn = self._conn
        while data:
            body = self._body
            if body is None:
                buf = self._head_buf + data
                head = parse_request_head(buf)
                if head is None:
                    self._head_buf = buf
                    return
                self._head_buf = b""
                if self._goaway_refuses():
                    raise ValueError("the backend sent GOAWAY")
                method = head.method
                target = head.target
                if not target.startswith(b"/") and target != b"*":
                    slash = target.find(b"/", target.find(b"://") + 3)
                    target = target[slash:] if slash > 0 else b"/"
                headers = [(b":method", method), (b":scheme", b"http"),
                           (b":authority", head.host or b""), (b":path", target)]
                headers += [field for field in h2_fields(head, buf, keep_te_trailers=True)
                            if field[0] != b"host"]  # Host became :authority
                self._method = method
                self._stream = sid = conn.new_stream_id()
                self._resp_done = False
                self._resp_chunked = False
                if head.body == BodyKind.CHUNKED:
                    self._body = ChunkedDecoder(response=False)
                elif head.body == BodyKind.LENGTH and head.content_length:
                    self._body = LengthBody(head.content_length)
                end = self._body is None
                conn.send_headers(sid, headers, end_stream=end)
                data = buf[head.length :]
                continue
            used = body.feed(data)
            for start, stop in body.data_spans:
                if stop > start:
                    self._out_data.append((data[start:stop], False))
            data = data[used:]
            if body.done:
                self._body = None
                trailers = body.trailers if isinstance(body, ChunkedDecoder) else None
                if trailers:
                    self._out_data.append(([(n.lower(), v) for n, v in trailers], True))
                else:
                    self._out_data.append((b"", True))

    def _broken(self) -> bool:
        """The connection failed (a method: the flag changes under calls mypy cannot see)."""
        return self._failed

    def _goaway_refuses(self) -> bool:
        last = self._conn.goaway_received
        return last is not None and self._conn.next_local_id > last

    def _pump_data(self) -> None:
        conn = self._conn
        sid = self._stream
        queue = self._out_data
        while queue:
            data, end = queue[0]
            if sid not in conn.streams:
                queue.clear()
                return
            if isinstance(data, list):  # trailers
                conn.send_headers(sid, data, end_stream=True)
                queue.popleft()
                continue
            room = conn.sendable(sid)
            if len(data) > room:
                if room <= 0:
                    return
                conn.send_data(sid, data[:room])
                queue[0] = (data[room:], end)
                continue
            conn.send_data(sid, data, end_stream=end)
            queue.popleft()

    def _flush(self) -> bool:
        """Send what is queued; True when nothing is left."""
        out = self._out
        more = self._conn.data_to_send()
        if more:
            out += more
        while out:
            try:
                n = self._send(out)
            except BlockingIOError:
                return False
            except InterruptedError:
                continue
            except OSError:
                self._failed = True
                return False
            del out[:n]
        return True

    # -- reading (the response) --------------------------------------------------------------
    def socket_read(self, buf: memoryview) -> tuple[int, SocketResult]:
        """Fill ``buf`` with response bytes. A short read means the socket is drained (the
        edge-triggered machine relies on it), so this reads the socket until ``buf`` is
        full or the kernel has nothing more, never stopping at what one frame gave."""
        if self._out:
            self._flush()
        room = len(buf)
        n = 0
        resp = self._resp
        while n < room:
            left = len(resp) - self._resp_pos
            if left:
                take = min(left, room - n)
                buf[n : n + take] = resp[self._resp_pos : self._resp_pos + take]
                self._resp_pos += take
                n += take
                continue
            resp.clear()
            self._resp_pos = 0
            if self._failed or self._eof:
                break
            try:
                data = self.sock.recv(65_536)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError:
                self._failed = True
                break
            if not data:
                self._eof = True
                break
            self._on_events(self._conn.receive(data))
            self._pump_data()
            self._flush()
        if n:
            return n, _CONTINUE
        if self._failed:
            return 0, _ERROR
        return (0, _CLOSED) if self._eof else (0, _WOULD_BLOCK)

    def _on_events(self, events: list[Any]) -> None:
        sid = self._stream
        resp = self._resp
        for event in events:
            kind = type(event)
            if kind is DataReceived:
                if event.stream_id == sid and event.data:
                    resp += encode_chunk(event.data) if self._resp_chunked else event.data
                self._conn.acknowledge_data(event.stream_id, event.flow_length)
                if event.stream_id == sid and event.end_stream:
                    self._end_response()
            elif kind is HeadersReceived:
                if event.stream_id != sid:
                    continue
                if event.trailers:
                    if self._resp_chunked:
                        resp += b"0\r\n" + b"".join(
                            b"%s: %s\r\n" % (n, v) for n, v in event.headers
                            if not n.startswith(b":")) + b"\r\n"
                        self._resp_chunked = False
                    self._resp_done = True
                    continue
                self._response_head(event.headers, event.end_stream)
            elif kind is StreamReset:
                if event.stream_id == sid and not self._resp_done:
                    self._failed = True
            elif kind is Terminated:
                self._failed = not self._resp_done
                self._eof = True
            elif kind is GoAwayReceived and not self._resp_done \
                    and event.last_stream_id < sid:
                self._failed = True

    def _response_head(self, headers: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        status = b"502"
        lines = []
        length = None
        for name, value in headers:
            if name == b":status":
                status = value
            elif name.startswith(b":") or name in CONNECTION_FIELDS:
                continue
            else:
                if name == b"content-length":
                    length = value
                lines.append(b"%s: %s\r\n" % (name, value))
        code = int(status) if status.isdigit() else 502
        informational = 100 <= code < 200
        bodiless = (informational or code in (204, 304) or self._method == b"HEAD")
        if not bodiless and length is None and not end_stream:
            lines.append(b"transfer-encoding: chunked\r\n")
            self._resp_chunked = True
        elif not bodiless and length is None and end_stream:
            lines.append(b"content-length: 0\r\n")
        reason = _REASONS.get(code, b"Status")
        self._resp += b"HTTP/1.1 %d %s\r\n%s\r\n" % (code, reason, b"".join(lines))
        if end_stream and not informational:
            self._end_response()

    def _end_response(self) -> None:
        if self._resp_chunked:
            self._resp += b"0\r\n\r\n"
            self._resp_chunked = False
        self._resp_done = True

    def shutdown_write(self) -> None:
        pass
