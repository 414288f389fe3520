"""HTTP/2 on the client side of a session: one connection, many streams, each proxied by the
HTTP/1.1 machine.

Theory of operation
-------------------
:class:`Http2` is the session state after the TLS handshake chose ALPN ``h2``, or after
:class:`~pysozu.protocols.http.Http` saw the prior-knowledge preface on a cleartext
listener. It moves bytes between the client socket and a sans-IO
:class:`~pysozu.protocols.h2_connection.H2Connection`, and gives each request stream its
own :class:`StreamHttp`: the HTTP/1.1 machine of ``protocols/http.py``, unchanged in what it
decides (routing, header rules, answers, load balancing, retries, sticky sessions, limits,
access log, metrics), but whose "client socket" is a :class:`StreamFront`:

* reading it yields the stream's request as HTTP/1.1 bytes: the head that
  ``h2_translate.request_to_h1`` made from the HEADERS, then the DATA (chunk-encoded when
  the request gave no content-length) and the trailers; then end of file;
* writing to it feeds an ``H1ResponseReader``, whose events (response heads, body pieces,
  trailers) become HEADERS and DATA frames of the stream. A write is refused
  (would-block) while the stream holds more than ``STREAM_OUTPUT_LIMIT`` bytes that flow
  control does not let out yet, so a slow client slows the backend read, as in HTTP/1.1.

A stream's backend socket is registered with the reactor under the stream itself
(:class:`H2Stream` is a ``ProxySession``): a backend event runs that stream's machine and
then flushes the connection, without looking through the other streams.

Receiving is bounded by flow control: DATA is given back to the peer's windows
(``acknowledge_data``) only when the stream's machine has read it from its ``StreamFront``.
Sending follows RFC 9218: streams with output go out in order of urgency (then stream id),
each up to the windows, and only while the client socket keeps up.

Ending: a response fully sent ends the stream (an unfinished request body is then cut with
RST_STREAM NO_ERROR, RFC 9113 §8.1); a machine that closes mid-response resets the stream
with INTERNAL_ERROR, as an HTTP/1.1 client would see its connection cut; a reset from the
client closes the stream's backend connection. Soft stop sends GOAWAY with the highest stream
id and PING, then the final GOAWAY when the PING returns (RFC 9113 §6.8), and the session
goes once its streams are done, or at the listener's ``h2_graceful_shutdown_deadline``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from pysozu.parser import ParseError
from pysozu.parser import h2 as frames
from pysozu.parser.h1 import BodyKind, RequestHead, ResponseHead
from pysozu.parser.h2 import ErrorCode
from pysozu.reactor.readiness import ERROR, HUP, NONE, READABLE, WRITABLE, Readiness
from pysozu.reactor.session import (
    MAX_LOOP_ITERATIONS,
    ProxySession,
    SessionResult,
    SessionState,
    SocketHandler,
    SocketResult,
    StateMachineSession,
)
from pysozu.reactor.timer import PolledTimeout, Timeout

from .backends import Backend, BackendStatus
from .h2_connection import (
    DataReceived,
    GoAwayReceived,
    H2Connection,
    HeadersReceived,
    PingAcked,
    PriorityUpdated,
    StreamReset,
    Terminated,
)
from .h2_translate import (
    LAST_CHUNK,
    H1Request,
    H1ResponseReader,
    MalformedMessage,
    ResponseData,
    ResponseHeaders,
    ResponseTrailers,
    encode_chunk,
    request_to_h1,
    trailers_to_h1,
)
from .http import _CONNECTED, Http
from .tls import TlsSocketHandler

if TYPE_CHECKING:
    from pysozu.reactor.server import Server

    from .http import HttpListenerConfig, HttpProxy

log = logging.getLogger("pysozu.http2")

#: response bytes a stream may hold beyond what flow control lets out
STREAM_OUTPUT_LIMIT: Final = 64 * 1024
#: bytes queued for the client socket beyond which no more DATA is framed this pass
CONNECTION_OUTPUT_LIMIT: Final = 256 * 1024
_GRACEFUL_PING: Final = b"pysozu\0\0"

_CONTINUE: Final = SocketResult.CONTINUE
_WOULD_BLOCK: Final = SocketResult.WOULD_BLOCK
_CLOSED: Final = SocketResult.CLOSED
_ERROR: Final = SocketResult.ERROR


class StreamFront:
    """The "client socket" of one stream's HTTP/1.1 machine (see the module docstring)."""

    __slots__ = ("stream",)

    def __init__(self, stream: H2Stream) -> None:
        self.stream = stream

    def fileno(self) -> int:
        return -1

    def socket_read(self, buf: memoryview) -> tuple[int, SocketResult]:
        stream = self.stream
        inbox = stream.inbox
        if not inbox:
            return 0, (_CLOSED if stream.in_ended else _WOULD_BLOCK)
        room = len(buf)
        n = 0
        acked = 0
        while inbox and n < room:
            item = inbox[0]
            data, payload = item
            pos = stream.inbox_pos
            take = min(len(data) - pos, room - n)
            buf[n : n + take] = data[pos : pos + take]
            n += take
            pos += take
            if pos == len(data):
                inbox.popleft()
                stream.inbox_pos = 0
                acked += payload
            else:
                stream.inbox_pos = pos
        if acked:
            stream.owner.consumed(stream, acked)
        return n, _CONTINUE

    def socket_write(self, data: Any) -> tuple[int, SocketResult]:
        stream = self.stream
        if stream.out_bytes >= STREAM_OUTPUT_LIMIT:
            return 0, _WOULD_BLOCK
        n = len(data)
        if not stream.write_response(data):
            return 0, _ERROR
        return n, _CONTINUE

    def socket_write_vectored(self, buffers: Sequence[Any]) -> tuple[int, SocketResult]:
        stream = self.stream
        if stream.out_bytes >= STREAM_OUTPUT_LIMIT:
            return 0, _WOULD_BLOCK
        total = 0
        for data in buffers:
            if not stream.write_response(data):
                return 0, _ERROR
            total += len(data)
        return total, _CONTINUE

    def shutdown_write(self) -> None:
        pass

    def close(self) -> None:
        pass


#: idle backend connections an HTTP/2 connection keeps for its next streams
MAX_PARKED_BACKENDS: Final = 32


class ParkedBackend(ProxySession):
    """An idle keep-alive backend connection that a finished stream left to the next stream
    of its HTTP/2 connection for the same cluster. It stays registered with the reactor: a
    backend that closes it (or sends anything) while idle is dropped."""

    protocol = "http2.parked"

    def __init__(self, owner: Http2, cluster_id: str, backend: Backend,
                 sock: Any, handler: SocketHandler, token: int) -> None:
        self.owner = owner
        self.server = owner.server
        self.cluster_id = cluster_id
        self.backend = backend
        self.sock = sock
        self.handler = handler
        self.frontend_token = token
        self.token = token
        self.last_event = owner.server.now
        self.alive = True
        self.events = 0

    def update_readiness(self, token: int, events: int) -> None:
        self.events |= events

    def ready(self) -> bool:
        # idle: readable means the backend closed or broke the protocol (writable is only
        # the edge-triggered poller's news that the socket can be written)
        return bool(self.events & (READABLE | HUP | ERROR))

    def close(self) -> None:
        """Drop the connection (unless a stream took it: ``sock`` is then None)."""
        self.owner.parked = [p for p in self.owner.parked if p is not self]
        if self.sock is not None:
            self.server.unregister(self.token)
            self.handler.close()
            self.sock = None
            self.owner.proxy.upstreams.connection_closed(self.cluster_id, self.backend)

    def tokens(self) -> list[int]:
        return [self.token] if self.sock is not None else []

    def interest(self, token: int) -> int:
        return READABLE | HUP | ERROR


class StreamHttp(Http):
    """The HTTP/1.1 machine of one stream: per-IP limits count the connection once, and
    backend connections pass from stream to stream of the same connection."""

    __slots__ = ("owner", "stream")
    PROTOCOL_NAMES = ("H2C", "H2")

    def __init__(self, session: H2Stream, proxy: HttpProxy, config: HttpListenerConfig) -> None:
        super().__init__(session, proxy, config)
        # ``session`` typed (``Http.session`` is Any): compiled, reading these attributes is
        # a direct load, where ``self.session.owner`` is a generic lookup
        self.stream = session
        owner = self.owner = session.owner
        # a stream carries one request: whatever its bytes might say, the machine never
        # parses a second one (no request hidden in a body can reach a backend)
        self.close_after = True
        # the connection's last authority, split: ``_start_request`` reuses the split when
        # the request repeats it (a client's streams mostly name one host)
        self.authority = owner.authority
        self.host = owner.host
        self.host_port = owner.host_port

    def _request_parsed(self, head: RequestHead, view: memoryview) -> None:
        super()._request_parsed(head, view)
        owner = self.owner
        if self.authority is not owner.authority:
            owner.authority = self.authority
            owner.host = self.host
            owner.host_port = self.host_port

    def _parse_request(self) -> SessionResult | None:
        """The stream's request head is the one ``request_to_h1`` wrote: it is taken as
        ``h1.trusted_request_head`` reads it (from the spans the writer computed), without
        the parser, whenever that can answer (the head whole in the buffer, nothing the
        parser must judge), else parsed."""
        stream = self.stream
        request = stream.request
        if request is not None:
            stream.request = None  # only the first head of the stream is the one written
            mv = self.front_mv
            assert mv is not None
            view = mv[self.front_start : self.front_end]
            head = request.trusted_head(view, self.config.limits)
            if head is not None:
                self._request_parsed(head, view)
                return None
            view.release()
        return super()._parse_request()

    def _response_closes(self) -> bool:
        """Never: an HTTP/2 response has no Connection field to say it. The machine still
        ends with its stream (``close_after``), but the response takes the usual paths,
        ``_fast_response`` included, and its head carries no ``Connection: close`` line
        for the stream's reader to drop."""
        return False

    def _rewrite_response(self, head: ResponseHead, buf: memoryview) -> bytes:
        """The response head for the client, which the stream's reader is told to expect:
        it takes its fields without parsing it again (``H1ResponseReader.expect_head``)."""
        out = super()._rewrite_response(head, buf)
        body = BodyKind.CLOSE_DELIMITED if head.tunnel else head.body
        line, field = self._id_line_field()
        self.stream.reader.expect_head(out, head.status, body, head.content_length or 0,
                                        line, field)
        return out

    def _id_line_field(self) -> tuple[bytes, tuple[bytes, bytes]]:
        """``Http._id_line`` and its HTTP/2 field, for the stream's reader."""
        name = self._sozu_id_name()
        line = self._id_line()
        cache = self.config.constants
        lower = cache.sozu_id_lower if cache is not None else name.lower()
        return line, (lower, line[len(name) + 2 :])

    def _fast_response(self) -> bool:
        """``Http._fast_response``, whose head the stream's reader is told to expect, as
        in ``_rewrite_response``."""
        if not super()._fast_response():
            return False
        status = self.resp_status
        assert status is not None
        # the whole body is in the buffer (the fast path's condition), after the head
        line, field = self._id_line_field()
        self.stream.reader.expect_head(self.front_out[-1], status, BodyKind.LENGTH,
                                        self.resp_fwd_end - self.back_start, line, field)
        return True

    def park_backend(self) -> None:
        """The stream is done: leave an idle keep-alive backend connection to the next
        streams instead of closing it."""
        owner = self.owner
        backend = self.backend
        sock = self.back_sock
        if (self.back_status != _CONNECTED or not self.resp_done or self.back_eof
                or sock is None or self.back is None or backend is None
                or self.back_cluster is None
                or backend.status is not BackendStatus.NORMAL
                or len(owner.parked) >= MAX_PARKED_BACKENDS or not owner.session.alive):
            return
        token = self.back_token
        parked = ParkedBackend(owner, self.back_cluster, backend, sock, self.back, token)
        self.server.rebind(token, parked, READABLE | HUP | ERROR)
        owner.parked.append(parked)
        # forget it here without closing it (``close`` then leaves it alone)
        self.back_sock = None
        self.back = None
        self.back_token = -1

    def _adopt_backend(self) -> bool:
        owner = self.owner
        cluster_id = self.cluster_id
        for parked in owner.parked:
            if parked.cluster_id == cluster_id and parked.sock is not None:
                break
        else:
            return False
        owner.parked.remove(parked)
        token = parked.token
        self.back_sock = parked.sock
        self.back = parked.handler
        parked.sock = None  # taken: its close() leaves the socket alone
        self.back_token = token
        self.backend = parked.backend
        self.back_cluster = cluster_id
        self.back_status = _CONNECTED
        self.back_eof = False
        self.back_tls_conn = None
        back_r = self.back_r
        back_r.event = NONE
        back_r.interest = READABLE | HUP | ERROR
        self.server.rebind(token, self.stream, back_r.interest)
        self._backend_timeouts()
        self.back_timeout.set(self.config.back_timeout)
        return True

    def _new_timeout(self, duration: float, callback: Callable[[], None]) -> Timeout:
        """A stream's timers are polled ones (reactor/timer.py): a stream lives a few
        milliseconds, and a heap entry per timer was 3 % of an HTTP/2 request."""
        return PolledTimeout(self.timers.polled, duration, callback)

    def _acquire_ip_slot(self, cluster_id: str, cluster: Any) -> bool:
        owner = self.owner
        if cluster_id in owner.ip_clusters:
            return True
        if not super()._acquire_ip_slot(cluster_id, cluster):
            return False
        # the slot belongs to the connection, released when it closes
        owner.ip_clusters += (cluster_id,)
        self.ip_clusters = ()
        return True

    def _tls_front(self) -> TlsSocketHandler | None:
        front = self.owner.front
        return front if isinstance(front, TlsSocketHandler) else None

    # what HTTP/1.1 keeps per connection is kept once per HTTP/2 connection, not per stream
    def _local_port(self) -> int:
        owner = self.owner
        port = owner.local_port
        if not port:
            port = owner.local_port = super()._local_port()
        return port

    def _forwarding_block(self, cache: Any) -> bytes:
        owner = self.owner
        if owner.forwarding_src is not cache:
            owner.forwarding = super()._forwarding_block(cache)
            owner.forwarding_src = cache
        return owner.forwarding


class H2Stream(ProxySession):
    """One request stream: what the reactor stores under its backend socket, and the
    "session" its :class:`StreamHttp` sees."""

    protocol = "http2.stream"

    def __init__(self, owner: Http2, stream_id: int, chunked: bool, method: bytes,
                 urgency: int) -> None:
        session = owner.session
        self.owner = owner
        self.id = stream_id
        self.server: Server = session.server
        self.listener = session.listener
        self.front_socket = session.front_socket
        self.frontend_token = session.frontend_token
        self.peer_address = session.peer_address
        self.last_event = session.server.now
        self.alive = True
        self.urgency = urgency
        self.chunked = chunked
        #: request bytes for the machine: (HTTP/1.1 bytes, DATA payload bytes they carry)
        self.inbox: deque[tuple[bytes, int]] = deque()
        self.inbox_pos = 0
        self.in_ended = False
        self.reader = H1ResponseReader(method)
        #: the request whose head opens the inbox, until the machine reads it
        self.request: H1Request | None = None
        #: frames waiting for flow control: ("h", headers, end, block or None) or
        #: ("d", bytes, end)
        self.outbox: deque[list[Any]] = deque()
        self.out_bytes = 0
        self.blocked = False  # the machine was told would-block
        self.response_ended = False  # END_STREAM is queued in ``outbox`` or sent
        self.http: StreamHttp | None = None
        self.state: StreamHttp | None = None  # what Http's timers check (session.state)

    @property
    def front(self) -> StreamFront:
        """The "client socket" for the machine to keep (read once, when it is made). The
        stream itself does not keep it: the only cycle through a stream is then
        stream -> machine -> front -> stream, cut when the machine closes, so a finished
        stream is freed by reference counting, not left to the cyclic collector."""
        return StreamFront(self)

    # -- the response, from the machine ------------------------------------------------------
    def write_response(self, data: Any) -> bool:
        try:
            events = self.reader.feed(data)
        except (ParseError, MalformedMessage) as e:
            log.debug("stream %d: response not translatable: %s", self.id, e)
            return False
        for event in events:
            self._queue(event)
        return True

    def _queue(self, event: Any) -> None:
        outbox = self.outbox
        if isinstance(event, ResponseData):
            data = event.data
            if outbox and outbox[-1][0] == "d" and not outbox[-1][2] and len(outbox[-1][1]) \
                    < 16384:
                last = outbox[-1]
                last[1] += data
                last[2] = event.end_stream
            else:
                outbox.append(["d", data, event.end_stream])
            self.out_bytes += len(data)
            if event.end_stream:
                self.response_ended = True
        elif isinstance(event, ResponseHeaders):
            outbox.append(["h", event.headers, event.end_stream, event.block])
            if event.end_stream:
                self.response_ended = True
        elif isinstance(event, ResponseTrailers):
            outbox.append(["h", event.headers, True, None])
            self.response_ended = True
        self.owner.sending[self.id] = self
        if self.response_ended and self.http is not None:
            # the machine will look for a next request once this one is done: let it read
            # the end of the stream then (its last read was short, so it thinks it drained)
            self.http.front_r.event |= READABLE

    # -- ProxySession (the backend socket's events) -----------------------------------------
    def update_readiness(self, token: int, events: int) -> None:
        http = self.http
        if http is not None:
            http.update_readiness(token, events)

    def ready(self) -> bool:
        owner = self.owner
        owner.run_stream(self)
        owner.flush_later()
        return False

    def close(self) -> None:
        self.owner.kill_stream(self)

    def tokens(self) -> list[int]:
        http = self.http
        return [http.back_token] if http is not None and http.back_token >= 0 else []

    def interest(self, token: int) -> int:
        http = self.http
        return http.interest(token) if http is not None else NONE

    def print_session(self) -> str:
        http = self.http
        return f"H2Stream({self.id}, {http.print_state() if http is not None else 'done'})"


class Http2(SessionState):
    """The HTTP/2 connection state (see the module docstring)."""

    RANK = 60
    NAME = "http2"

    def __init__(self, session: StateMachineSession, proxy: HttpProxy,
                 config: HttpListenerConfig, preread: bytes = b"") -> None:
        server = session.server
        self.session = session
        self.server = server
        self.proxy = proxy
        self.config = config
        self.metrics = server.metrics
        self.front = session.front
        self.front_token = session.frontend_token
        self.front_r = Readiness(READABLE | HUP | ERROR, READABLE | WRITABLE)
        timers = server.timers
        self.conn = H2Connection(limits=config.h2_limits, clock=lambda: timers.now)
        self.conn.initiate()
        self.preread = preread
        self.out: deque[bytes] = deque()
        self.out_pos = 0
        self.out_size = 0
        self.streams: dict[int, H2Stream] = {}
        #: streams whose machine has work (new input, or room again for output)
        self.runnable: dict[int, H2Stream] = {}
        #: streams with frames waiting in their outbox
        self.sending: dict[int, H2Stream] = {}
        self.ip_clusters: tuple[str, ...] = ()
        #: idle backend connections left by finished streams (see ``StreamHttp``)
        self.parked: list[ParkedBackend] = []
        #: the client's forwarding headers and local port, shared by the streams
        self.forwarding = b""
        self.forwarding_src: object | None = None
        self.local_port = 0
        #: the last request's authority and its split (see ``StreamHttp.__init__``)
        self.authority = b""
        self.host = ""
        self.host_port: int | None = None
        self.front_eof = False
        self.failed = False
        self.flush_pending = False
        self.graceful = 0  # 1: first GOAWAY and PING sent; 2: final GOAWAY sent
        self.idle = Timeout(timers, config.front_timeout, self._idle_timed_out)
        self.idle.set()
        self.deadline = Timeout(timers, config.h2_graceful_shutdown_deadline,
                                self._deadline_passed)
        server.metrics.incr("http2.connections")

    # -- readiness ----------------------------------------------------------------------------
    def update_readiness(self, token: int, events: int) -> None:
        if token == self.front_token:
            if events & (HUP | ERROR):
                events |= READABLE
            self.front_r.event |= events

    def interest(self, token: int) -> int:
        if token == self.front_token:
            return self.front_r.interest | (WRITABLE if self.out else NONE)
        for stream in self.streams.values():  # level-triggered pollers only
            http = stream.http
            if http is not None and http.back_token == token:
                return http.interest(token)
        return NONE

    def tokens(self) -> list[int]:
        """The client socket and every stream's backend socket: a level-triggered poller
        must learn the interests that running the streams from here changed."""
        tokens = [self.front_token]
        for stream in self.streams.values():
            http = stream.http
            if http is not None and http.back_token >= 0:
                tokens.append(http.back_token)
        return tokens

    # -- the pump -----------------------------------------------------------------------------
    def ready(self, session: StateMachineSession) -> SessionResult:
        front_r = self.front_r
        for _ in range(MAX_LOOP_ITERATIONS):
            progressed = False
            if self.preread:
                data, self.preread = self.preread, b""
                self._receive(data)
                progressed = True
            if front_r.event & READABLE and not self.front_eof and not self.conn.closed:
                progressed = self._read() or progressed
            if self.runnable:
                self._run_streams()
                progressed = True
            if self.sending and self.out_size < CONNECTION_OUTPUT_LIMIT:
                progressed = self._pump() or progressed
            if (self.conn.has_output or self.out) and (front_r.event & WRITABLE or not self.out):
                self._write()
            if self.failed:
                return SessionResult.CLOSE
            if self._finished():
                return SessionResult.CLOSE
            if not progressed and not self.runnable and not self.preread:
                return SessionResult.CONTINUE
        self.metrics.incr("session.infinite_loop.error")
        return SessionResult.CLOSE

    def _finished(self) -> bool:
        """Nothing more will happen on this connection."""
        if self.out or self.conn.has_output:
            return False
        if self.conn.closed or self.front_eof:
            return True
        if self.streams:
            return False
        return self.conn.goaway_received is not None or self.graceful == 2

    def flush_later(self) -> None:
        """Frame and send what streams produced once this loop pass is over: the responses
        of every backend that answered in the pass leave in one write (one TLS record)."""
        if not self.flush_pending:
            self.flush_pending = True
            self.server.defer(self._deferred_flush)

    def _deferred_flush(self) -> None:
        self.flush_pending = False
        session = self.session
        if session.alive and session.state is self:
            self.after_stream_event()

    def after_stream_event(self) -> None:
        """A stream's backend moved: frame what it produced and flush."""
        if self.sending and self.out_size < CONNECTION_OUTPUT_LIMIT:
            self._pump()
        if self.conn.has_output or self.out:
            self._write()
        if self.failed or self._finished():
            self.server.kill_session(self.session)
        elif self.runnable:
            self.server.run_session(self.session)

    def _read(self) -> bool:
        """Read what the client sent (until the socket would block, or 16 reads: the rest
        waits for the next pass) and process it; the pool's buffer is only borrowed."""
        pool = self.server.pool
        buf = pool.checkout()
        if buf is None:
            self.metrics.incr("buffer.exhausted")
            self.failed = True
            return False
        mv = memoryview(buf)
        read = self.front.socket_read
        got = False
        try:
            for _ in range(16):
                n, result = read(mv)
                if result is _CONTINUE:
                    if n:
                        got = True
                        self._receive(bytes(mv[:n]))
                        if self.conn.closed:
                            break
                    continue
                if result is _WOULD_BLOCK:
                    self.front_r.event &= ~READABLE
                elif result is _CLOSED:
                    self.front_eof = True
                    self.front_r.event &= ~READABLE
                else:
                    self.failed = True
                break
        finally:
            mv.release()
            pool.checkin(buf)
        return got

    def _receive(self, data: bytes) -> None:
        self.idle.last = self.server.timers.now
        events = self.conn.receive(data)
        # WindowUpdated needs nothing here: ``_pump`` runs at every pass with output queued
        for event in events:
            kind = type(event)
            if kind is HeadersReceived:
                self._on_headers(event)  # type: ignore[arg-type]
            elif kind is DataReceived:
                self._on_data(event)  # type: ignore[arg-type]
            elif kind is StreamReset:
                self._on_reset(event)  # type: ignore[arg-type]
            elif kind is PriorityUpdated:
                stream = self.streams.get(event.stream_id)  # type: ignore[union-attr]
                if stream is not None:
                    stream.urgency = event.urgency  # type: ignore[union-attr]
            elif kind is PingAcked:
                if event.payload == _GRACEFUL_PING and self.graceful == 1:  # type: ignore[union-attr]
                    self._final_goaway()
            elif kind is GoAwayReceived:
                self.metrics.incr("http2.goaway.received")
            elif kind is Terminated:
                self._terminated(event)  # type: ignore[arg-type]

    # -- events ------------------------------------------------------------------------------
    def _on_headers(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        stream = self.streams.get(sid)
        if event.trailers:
            if stream is None:
                return
            try:  # checked whatever the framing (RFC 9113 §8.1), forwarded when chunked
                last_chunk = trailers_to_h1(event.headers)
            except MalformedMessage as e:
                self._malformed(sid, stream, e)
                return
            if stream.chunked:
                stream.inbox.append((last_chunk, 0))
            self._request_ended(stream)
            return
        if stream is not None:
            return  # a client's 1xx? (servers receive none): ignored
        if len(event.headers) > self.config.h2_limits.max_header_fields:
            self.metrics.incr("http2.431.errors")
            self.conn.send_headers(sid, [(b":status", b"431"), (b"content-length", b"0")],
                                   end_stream=True)
            self._cut_request(sid)
            return
        try:
            request = request_to_h1(event.headers, end_stream=event.end_stream)
        except MalformedMessage as e:
            self._malformed(sid, None, e)
            return
        conn_stream = self.conn.streams.get(sid)
        if conn_stream is not None:
            # the connection checks DATA against the length the HTTP/1.1 head will carry
            # (one parse for both: a list "3, 3" is 3 here and there, RFC 9113 §8.1.1)
            conn_stream.content_length = request.content_length
        stream = H2Stream(self, sid, request.chunked, request.method, event.urgency)
        stream.inbox.append((request.head, 0))
        stream.request = request
        if event.end_stream:
            stream.in_ended = True
        http = StreamHttp(stream, self.proxy, self.config)
        stream.http = stream.state = http
        self.streams[sid] = stream
        self.runnable[sid] = stream
        http.front_r.event |= READABLE | WRITABLE
        self.idle.cancel()
        self.metrics.incr("http2.streams")

    def _malformed(self, sid: int, stream: H2Stream | None, e: MalformedMessage) -> None:
        log.debug("stream %d: malformed request: %s", sid, e.reason)
        self.metrics.incr("http2.malformed_requests")
        self.conn.reset_stream(sid, ErrorCode.PROTOCOL_ERROR)
        if stream is not None:
            self._drop(stream)

    def _on_data(self, event: DataReceived) -> None:
        sid = event.stream_id
        stream = self.streams.get(sid)
        if stream is None or stream.in_ended:
            self.conn.acknowledge_data(sid, event.flow_length)  # no one reads it: give it back
            return
        data = event.data
        if data:
            stream.inbox.append((encode_chunk(data) if stream.chunked else data,
                                 event.flow_length))
        elif event.flow_length:
            self.conn.acknowledge_data(sid, event.flow_length)
        if event.end_stream:
            self._request_ended(stream)
        else:
            self._wake_read(stream)

    def _request_ended(self, stream: H2Stream) -> None:
        if stream.chunked and not stream.in_ended:
            last = stream.inbox[-1][0] if stream.inbox else b""
            if not last.startswith(b"0\r\n"):
                stream.inbox.append((LAST_CHUNK, 0))
        stream.in_ended = True
        self._wake_read(stream)

    def _wake_read(self, stream: H2Stream) -> None:
        http = stream.http
        if http is not None:
            http.front_r.event |= READABLE
            self.runnable[stream.id] = stream

    def consumed(self, stream: H2Stream, n: int) -> None:
        """The stream's machine read ``n`` bytes of DATA payload: give them back."""
        self.conn.acknowledge_data(stream.id, n)

    def _on_reset(self, event: StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if event.remote:
            self.metrics.incr("http2.streams.reset_by_client")
        else:
            self.metrics.incr("http2.streams.reset_protocol_error")
        if stream is not None:
            self._drop(stream)

    def _terminated(self, event: Terminated) -> None:
        reason = self.conn.calm_reason
        self.metrics.incr(f"http2.errors.{ErrorCode(event.code).name.lower()}"
                          if event.code in ErrorCode._value2member_map_ else "http2.errors.other")
        if reason is not None:
            self.metrics.incr(f"http2.flood.{reason}")
        log.debug("%s HTTP/2 connection error: %s", self.session.peer_address, event.reason)
        for stream in list(self.streams.values()):
            self._drop(stream)

    def _cut_request(self, sid: int) -> None:
        """The response to ``sid`` is complete: if the client may still send, tell it to
        stop (RST_STREAM NO_ERROR, RFC 9113 §8.1)."""
        if sid in self.conn.streams:
            self.conn.reset_stream(sid, ErrorCode.NO_ERROR)

    # -- streams -----------------------------------------------------------------------------
    def _run_streams(self) -> None:
        runnable = self.runnable
        self.runnable = {}
        for stream in runnable.values():
            if stream.alive:
                self.run_stream(stream)

    def run_stream(self, stream: H2Stream) -> None:
        http = stream.http
        if http is None or not stream.alive:
            return
        stream.last_event = self.server.now
        try:
            result = http.ready(stream)
        except Exception:
            log.exception("stream %d of %s failed", stream.id, self.session.print_session())
            self.metrics.incr("session.errors")
            result = SessionResult.CLOSE
        if result is not SessionResult.CONTINUE:
            self._machine_done(stream)

    def _machine_done(self, stream: H2Stream) -> None:
        """The stream's machine closed: keep the stream only to send what is queued."""
        self._close_machine(stream, park=stream.response_ended)
        if not stream.response_ended:
            self._reset(stream, ErrorCode.INTERNAL_ERROR)
        elif not stream.outbox:
            self._stream_sent(stream)

    def kill_stream(self, stream: H2Stream) -> None:
        """The reactor closes the stream (a timer, a crash): as if its machine closed."""
        self._close_machine(stream)
        if stream.id in self.streams:
            if not stream.response_ended or stream.outbox:
                self._reset(stream, ErrorCode.INTERNAL_ERROR if not stream.response_ended
                            else ErrorCode.CANCEL)
            else:
                self._stream_sent(stream)
        self.after_stream_event()

    @staticmethod
    def _close_machine(stream: H2Stream, park: bool = False) -> None:
        """Close the stream's HTTP/1.1 machine, if it still runs; ``park``: first leave its
        idle backend connection to the next streams."""
        stream.alive = False
        http = stream.http
        if http is not None:
            stream.http = stream.state = None
            if park:
                http.park_backend()
            http.close(stream)

    def _reset(self, stream: H2Stream, code: ErrorCode) -> None:
        self.conn.reset_stream(stream.id, code)
        self._drop(stream)

    def _drop(self, stream: H2Stream) -> None:
        """Forget a stream (its machine is closed here if still running)."""
        self._close_machine(stream)
        sid = stream.id
        self.streams.pop(sid, None)
        self.runnable.pop(sid, None)
        self.sending.pop(sid, None)
        stream.outbox.clear()
        stream.out_bytes = 0
        if not self.streams:
            self.idle.set()

    def _stream_sent(self, stream: H2Stream) -> None:
        """The response went out entirely (END_STREAM sent)."""
        self._cut_request(stream.id)
        if stream.http is None:
            self._drop(stream)

    # -- sending -----------------------------------------------------------------------------
    def _pump(self) -> bool:
        """Frame what the streams have queued, by urgency, as far as the windows allow."""
        conn = self.conn
        sending = self.sending
        order = sorted(sending.values(), key=lambda s: (s.urgency, s.id)) \
            if len(sending) > 1 else list(sending.values())
        progressed = False
        budget = CONNECTION_OUTPUT_LIMIT - self.out_size
        for stream in order:
            outbox = stream.outbox
            sid = stream.id
            while outbox and budget > 0:
                item = outbox[0]
                if sid not in conn.streams:
                    outbox.clear()
                    break
                if item[0] == "h":
                    conn.send_headers(sid, item[1], end_stream=item[2], block=item[3])
                    outbox.popleft()
                    progressed = True
                    continue
                data = item[1]
                n = len(data)
                if n:
                    allowed = min(conn.sendable(sid), budget)
                    if allowed <= 0:
                        break
                    if allowed < n:
                        conn.send_data(sid, data[:allowed])
                        item[1] = data[allowed:]
                        stream.out_bytes -= allowed
                        budget -= allowed
                        progressed = True
                        continue
                conn.send_data(sid, data, end_stream=item[2])
                stream.out_bytes -= n
                budget -= n
                outbox.popleft()
                progressed = True
            if not outbox:
                sending.pop(sid, None)
                if stream.response_ended:
                    self._stream_sent(stream)
            if stream.out_bytes < STREAM_OUTPUT_LIMIT and stream.http is not None \
                    and stream.alive:
                http = stream.http
                if not http.front_r.event & WRITABLE:
                    http.front_r.event |= WRITABLE
                    self.runnable[sid] = stream
            if budget <= 0:
                break
        return progressed

    def _write(self) -> None:
        data = self.conn.data_to_send()
        out = self.out
        if data:
            out.append(data)
            self.out_size += len(data)
        write = self.front.socket_write
        while out:
            chunk = out[0]
            n, result = write(memoryview(chunk)[self.out_pos :])
            if result is _CONTINUE:
                self.out_pos += n
                self.out_size -= n
                if self.out_pos >= len(chunk):
                    out.popleft()
                    self.out_pos = 0
                continue
            if result is _WOULD_BLOCK:
                self.front_r.event &= ~WRITABLE
                self.front_r.interest |= WRITABLE
                return
            self.failed = True
            return
        self.front_r.interest &= ~WRITABLE
        self.front_r.event |= WRITABLE  # nothing queued: the socket took it all

    # -- soft stop, timeouts -----------------------------------------------------------------
    def shutting_down(self, session: StateMachineSession) -> bool:
        if self.graceful == 0:
            self.graceful = 1
            self.conn.goaway(ErrorCode.NO_ERROR, last_stream_id=frames.MAX_WINDOW)
            self.conn.ping(_GRACEFUL_PING)
            self.deadline.set()
            self._write()
            return False
        if self.failed or self.front_eof or self.conn.closed:
            return True
        return self.graceful == 2 and not self.streams and not self.out

    def _final_goaway(self) -> None:
        self.graceful = 2
        self.conn.goaway(ErrorCode.NO_ERROR)
        self._write()

    def _deadline_passed(self) -> None:
        session = self.session
        if session.alive and session.state is self:
            self.server.kill_session(session)

    def _idle_timed_out(self) -> None:
        session = self.session
        if not session.alive or session.state is not self or self.streams:
            return
        self.metrics.incr("http2.idle_timeout")
        self.conn.goaway(ErrorCode.NO_ERROR)
        self._write()
        self.server.kill_session(session)

    def close(self, session: StateMachineSession) -> None:
        for stream in list(self.streams.values()):
            self._drop(stream)
        for parked in list(self.parked):
            parked.close()
        self.idle.close()
        self.deadline.close()
        peer = session.peer_address
        ip = peer[0] if isinstance(peer, tuple) else ""
        for cluster_id in self.ip_clusters:
            self.proxy.ip_limiter.release(cluster_id, ip)
        self.ip_clusters = ()

    def print_state(self) -> str:
        return (f"Http2(streams={len(self.streams)}, front={self.front_r}, "
                f"out={self.out_size}B)")
