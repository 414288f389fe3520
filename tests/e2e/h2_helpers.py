"""An HTTP/2 client for the tests: the ``h2`` package (an independent implementation) over a
real socket, cleartext (prior knowledge) or TLS with ALPN ``h2``."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from tests.conftest import WAIT
from tests.e2e.http_helpers import HOST


@dataclass
class H2Response:
    stream_id: int
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    reset: int | None = None

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


class H2Client:
    """Requests over one HTTP/2 connection; every read is bounded by ``timeout``."""

    def __init__(self, address: str, *, tls: ssl.SSLContext | None = None,
                 server_hostname: str = HOST, timeout: float = WAIT,
                 settings: dict[int, int] | None = None, auto_ack: bool = True) -> None:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname)
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        self.sock = sock
        self.auto_ack = auto_ack
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.responses: dict[int, H2Response] = {}
        self.events: list[Any] = []
        self.closed = False
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str = "/", *, method: str = "GET", host: str = HOST,
                headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
                end_stream: bool = True, scheme: str = "http") -> int:
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", scheme),
                (":authority", host), *(headers or [])]
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and body is None)
        self.responses[sid] = H2Response(sid)
        if body is not None:
            self.send_body(sid, body, end_stream=end_stream)
        self.flush()
        return sid

    def send_body(self, sid: int, body: bytes, end_stream: bool = True) -> None:
        """Send ``body``, waiting for window updates as flow control asks."""
        view = memoryview(body)
        while view:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                self.flush()
                self.read_once()
                continue
            chunk, view = view[:window], view[window:]
            self.conn.send_data(sid, bytes(chunk), end_stream=end_stream and not view)
            self.flush()
        if end_stream and not body:
            self.conn.end_stream(sid)
        self.flush()

    def read_once(self) -> list[Any]:
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        for event in events:
            self._on(event)
        self.events += events
        self.flush()
        return events

    def _on(self, event: Any) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            r = self.responses[event.stream_id]
            r.headers = list(event.headers)
            r.status = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.InformationalResponseReceived):
            self.responses[event.stream_id].informational.append(list(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            self.responses[event.stream_id].body += event.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                    event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.responses[event.stream_id].trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.responses[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self.responses:
                self.responses[event.stream_id].reset = event.error_code
                self.responses[event.stream_id].ended = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    def wait(self, *sids: int) -> list[H2Response]:
        """Read until every stream in ``sids`` ended (or was reset)."""
        while not all(self.responses[s].ended for s in sids):
            if self.closed:
                raise AssertionError(f"connection closed before streams {sids} ended")
            self.read_once()
        return [self.responses[s] for s in sids]

    def get(self, path: str = "/", **kwargs: Any) -> H2Response:
        return self.wait(self.request(path, **kwargs))[0]

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class H2Backend:
    """An h2c backend (prior knowledge) built on the ``h2`` package, one thread per
    connection. Paths: ``/echo`` answers the request body; ``/big/N`` answers N bytes (no
    content-length, so the proxy chunk-encodes it for HTTP/1.1 clients); ``/trailers``
    answers with a trailer; ``/reset`` resets the stream; ``/health`` answers
    ``health_status``; anything else answers ``"h2 <method> <path>"`` with a
    content-length. ``requests`` records (connection number, headers, body, trailers) per
    request."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests: list[tuple[int, dict[bytes, bytes], bytes, list[Any]]] = []
        self.connections = 0
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.closing = False
        self.health_status = 200  # what ``/health`` answers
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
                self.conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, number), daemon=True)
            with self.lock:
                self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, dict[str, Any]] = {}
        pending: dict[int, memoryview] = {}
        sock.settimeout(WAIT)
        try:
            while not self.closing:
                data = sock.recv(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = {"headers": dict(event.headers),
                                                    "body": bytearray(), "trailers": []}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length,
                                                       event.stream_id)
                    elif isinstance(event, h2.events.TrailersReceived):
                        streams[event.stream_id]["trailers"] = list(event.headers)
                    elif isinstance(event, h2.events.StreamEnded):
                        body = self._respond(conn, event.stream_id, streams.pop(event.stream_id),
                                             number)
                        if body is not None:
                            pending[event.stream_id] = memoryview(body)
                self._send_pending(conn, pending)
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        except OSError:
            return
        finally:
            sock.close()

    def _send_pending(self, conn: Any, pending: dict[int, memoryview]) -> None:
        for sid in list(pending):
            view = pending[sid]
            while view:
                room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                conn.send_data(sid, bytes(view[:room]))
                view = view[room:]
            if view:
                pending[sid] = view
            else:
                conn.end_stream(sid)
                del pending[sid]

    def _respond(self, conn: Any, sid: int, request: dict[str, Any], number: int
                 ) -> bytes | None:
        headers = request["headers"]
        path = headers[b":path"].decode()
        method = headers[b":method"].decode()
        with self.lock:
            self.requests.append((number, headers, bytes(request["body"]),
                                  request["trailers"]))
        if path.startswith("/health"):
            conn.send_headers(sid, [(":status", str(self.health_status)),
                                    ("content-length", "0")], end_stream=True)
            return None
        if path.startswith("/reset"):
            conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return None
        if path.startswith("/big/"):
            conn.send_headers(sid, [(":status", "200")])
            return bytes(range(256)) * (int(path.split("/")[2]) // 256)
        if path.startswith("/trailers"):
            conn.send_headers(sid, [(":status", "200")])
            conn.send_data(sid, b"with trailers")
            conn.send_headers(sid, [("x-checksum", "h2sum")], end_stream=True)
            return None
        body = bytes(request["body"]) if path.startswith("/echo") else (
            f"h2 {method} {path}".encode())
        conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))],
                          end_stream=method == "HEAD")
        return body if method != "HEAD" else None

    def close(self) -> None:
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close would not)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
            threads = list(self.threads)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(WAIT)
        self.thread.join(WAIT)
