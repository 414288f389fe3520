"""Helpers of the end-to-end HTTP tests: backends, raw clients, proxy set-up, load loops.

Everything here talks real HTTP/1.1 over loopback sockets:

* ``Reader`` parses HTTP/1.x messages (requests or responses) from a socket, leniently
  enough to see what the proxy really sent (raw head kept, chunked bodies decoded with
  their trailers, close-delimited bodies read to EOF);
* ``RawClient`` is a client for byte-exact requests (pipelining, malformed heads);
* ``HttpBackend`` is an ``http.server`` backend that records every request it serves and
  knows a few paths (``/echo``, ``/big``, ``/sink``, ``/chunked``, ``/status/N``,
  ``/hold``...); ``ScriptedBackend`` (``helpers.py``) plus ``backend_reader`` script raw
  backends byte by byte;
* ``ws_*`` do the RFC 6455 handshake and frames by hand;
* ``LoadLoop`` makes requests in a thread, bounded in count and time.

Every wait is bounded (``WAIT``); see ``helpers.py`` for the polling helpers.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import WAIT, Proxy, connect
from tests.e2e.helpers import Conn, ScriptedBackend

HOST = "app.test"


# -- messages ------------------------------------------------------------------------------------


@dataclass
class Message:
    """One HTTP/1.x message as it crossed the wire."""

    start: str  # request line or status line
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    raw_head: bytes = b""
    chunked: bool = False
    raw_body: bytes = b""  # the body as framed on the wire (chunk lines included)

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]

    def has(self, name: str) -> bool:
        return bool(self.header_all(name))

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1])

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.start.split(" ", 2)[1]

    @property
    def version(self) -> str:
        parts = self.start.split(" ")
        return parts[0] if parts[0].startswith("HTTP/") else parts[-1]


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name, value.strip(" \t")))
    return lines[0], headers


class Reader:
    """Buffered, blocking reads of HTTP/1.x messages; bytes after a message are kept."""

    def __init__(self, recv: Callable[[], bytes]) -> None:
        self.recv = recv
        self.buf = bytearray()
        self.eof = False

    @classmethod
    def of(cls, sock: socket.socket) -> Reader:
        return cls(lambda: sock.recv(1 << 20))

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.recv()
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes | None:
        """The next head (up to and with its empty line); None on a clean EOF before it."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[: end + 4])
                del self.buf[: end + 4]
                return head
            if not self._fill():
                if self.buf:
                    raise AssertionError(f"EOF inside a head: {bytes(self.buf[:200])!r}")
                return None

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise AssertionError(f"EOF after {len(self.buf)} of {n} body bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[: end + 2])
                del self.buf[: end + 2]
                return line
            if not self._fill():
                raise AssertionError("EOF inside a chunked body")

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def _chunked(self, message: Message) -> None:
        body = bytearray()
        raw = bytearray()
        while True:
            line = self.read_line()
            raw += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = self.read_exact(size + 2)
            raw += data
            assert data[-2:] == b"\r\n", "chunk data not followed by CRLF"
            body += data[:-2]
        while True:
            line = self.read_line()
            raw += line
            if line == b"\r\n":
                break
            name, _, value = line[:-2].decode("latin-1").partition(":")
            message.trailers.append((name, value.strip()))
        message.body = bytes(body)
        message.raw_body = bytes(raw)

    def read_message(self, *, request: bool, method: str = "GET") -> Message | None:
        head = self.read_head()
        if head is None:
            return None
        start, headers = _parse_head(head)
        message = Message(start, headers, raw_head=head)
        te = ",".join(message.header_all("transfer-encoding")).lower()
        cl = message.header("content-length")
        if not request:
            status = message.status
            if status < 200 or status in (204, 304) or method == "HEAD":
                return message
        if "chunked" in te:
            message.chunked = True
            self._chunked(message)
        elif cl is not None:
            message.body = message.raw_body = self.read_exact(int(cl))
        elif not request:
            message.body = message.raw_body = self.read_to_eof()
        return message

    def read_response(self, method: str = "GET", *, skip_1xx: bool = True) -> Message:
        """The next response (1xx skipped unless ``skip_1xx`` is False); fails on EOF."""
        while True:
            message = self.read_message(request=False, method=method)
            assert message is not None, "the connection closed before a response"
            if skip_1xx and message.status < 200:
                continue
            return message


# -- clients -------------------------------------------------------------------------------------


class RawClient:
    """A client socket that sends exact bytes and reads responses with a ``Reader``."""

    def __init__(self, address: str, timeout: float = WAIT) -> None:
        self.sock = connect(address, timeout)
        self.reader = Reader.of(self.sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET", **kwargs: Any) -> Message:
        return self.reader.read_response(method, **kwargs)

    def request(self, data: bytes, method: str = "GET") -> Message:
        self.send(data)
        return self.response(method)

    def expect_eof(self, timeout: float = 2.0) -> None:
        """The proxy closed the connection (EOF or reset), with no further byte."""
        assert not self.reader.buf, f"unexpected bytes {bytes(self.reader.buf[:100])!r}"
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return
        finally:
            self.sock.settimeout(WAIT)
        assert data == b"", f"expected EOF, got {data[:100]!r}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_request(path: str = "/", host: str = HOST, *, method: str = "GET",
                headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                version: str = "HTTP/1.1") -> bytes:
    """A request head (and body, with Content-Length when ``body``) as bytes."""
    lines = [f"{method} {path} {version}", f"Host: {host}"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(address: str, path: str = "/", host: str = HOST, *, method: str = "GET",
          headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
    """One request on a new ``http.client`` connection, closed afterwards."""
    hostname, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(hostname, int(port), timeout=WAIT)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


# -- the proxy ------------------------------------------------------------------------------------


def http_listen(proxy: Proxy, *, protocol: str = "HTTP", **fields: Any) -> str:
    """Add and activate an HTTP (or HTTPS) listener on a port the test bound itself; its
    address."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    address = "127.0.0.1:%d" % sock.getsockname()[1]
    proxy.worker.offer_listen_socket(address, sock)
    proxy.ok(f"ADD_{protocol}_LISTENER", address=address, **fields)
    proxy.ok("ACTIVATE_LISTENER", address=address, proxy=protocol, from_scm=True)
    return address


def add_cluster(proxy: Proxy, cluster_id: str, backends: list[str], **cluster: Any) -> None:
    """A cluster with backends ``<cluster_id>-<n>`` at ``backends``."""
    proxy.ok("ADD_CLUSTER", cluster_id=cluster_id, **cluster)
    for n, backend in enumerate(backends):
        proxy.ok("ADD_BACKEND", cluster_id=cluster_id, backend_id=f"{cluster_id}-{n}",
                 address=backend)


def add_frontend(proxy: Proxy, address: str, cluster_id: str | None, hostname: str = HOST,
                 **fields: Any) -> None:
    if cluster_id is not None:
        fields["cluster_id"] = cluster_id
    proxy.ok("ADD_HTTP_FRONTEND", address=address, hostname=hostname, **fields)


def http_app(proxy: Proxy, backends: list[str], *, cluster_id: str = "app", hostname: str = HOST,
             listener: dict[str, Any] | None = None, **cluster: Any) -> str:
    """Listener + cluster + one frontend for ``hostname``: the listener's address."""
    address = http_listen(proxy, **(listener or {}))
    add_cluster(proxy, cluster_id, backends, **cluster)
    add_frontend(proxy, address, cluster_id, hostname)
    return address


def status(proxy: Proxy) -> dict[str, Any]:
    content: dict[str, Any] = proxy.request("STATUS")["content"]
    return content


def gauges(proxy: Proxy) -> dict[str, int]:
    return dict(status(proxy)["metrics"]["gauges"])


def buffers_in_use(proxy: Proxy) -> int:
    return int(status(proxy)["buffers_in_use"])


# -- backends -------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request as a backend received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    trailers: list[tuple[str, str]]
    version: str
    peer: Any  # the proxy's address on that backend connection (one per connection)

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]


def _pattern(size: int, seed: int = 7) -> bytes:
    """``size`` bytes that differ everywhere (a shifted or repeated slice changes the hash)."""
    block = bytearray()
    counter = 0
    while len(block) < size:
        block += hashlib.sha256(b"%d-%d" % (seed, counter)).digest() * 32
        counter += 1
    return bytes(block[:size])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = WAIT
    server: _Server

    def setup(self) -> None:
        super().setup()
        # no Nagle: http.server writes a head and its body separately, and a delayed ACK
        # would hold each body back 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.backend._track(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_expect_100(self) -> bool:
        backend = self.server.backend
        if backend.refuse_continue:
            return True  # answer without reading the body: the final response decides
        return super().handle_expect_100()

    def _read_body(self) -> tuple[bytes, list[tuple[str, str]]]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                body += self.rfile.read(size)
                assert self.rfile.read(2) == b"\r\n"
            trailers = []
            while True:
                line = self.rfile.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers.append((name, value.strip()))
            return bytes(body), trailers
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length), []

    def _serve(self) -> None:
        backend = self.server.backend
        path = self.path
        if path.startswith("/sink"):  # a large upload: hashed as it streams, not kept
            self._sink()
            return
        if path.startswith("/hold"):
            backend.arrived.set()
            backend.release.wait(WAIT)
        body, trailers = self._read_body()
        backend._record(Recorded(self.command, path, list(self.headers.items()), body,
                                 trailers, self.request_version, self.client_address))
        if path.startswith("/big/"):
            self._big(int(path.split("/")[2]))
        elif path.startswith("/chunked"):
            self._chunked()
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.send_response(code)
            self._extra()
            if code not in (204, 304):
                self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            data = body if path.startswith("/echo") else (
                f"{backend.name} {self.command} {path}".encode())
            self.send_response(200)
            self._extra()
            self.send_header("X-Backend", backend.name)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    def _extra(self) -> None:
        for name, value in self.server.backend.response_headers:
            self.send_header(name, value)

    def _sink(self) -> None:
        backend = self.server.backend
        backend.arrived.set()
        backend.release.wait(WAIT)  # set at once unless a test holds the upload back
        length = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        left = length
        while left:
            data = self.rfile.read(min(left, 1 << 18))
            if not data:
                break
            digest.update(data)
            left -= len(data)
            backend.received_bytes += len(data)
        answer = f"{length - left} {digest.hexdigest()}".encode()
        backend._record(Recorded(self.command, self.path, list(self.headers.items()), answer,
                                 [], self.request_version, self.client_address))
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _big(self, size: int) -> None:
        backend = self.server.backend
        data = backend.payload(size)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        view = memoryview(data)
        step = 1 << 16
        for offset in range(0, size, step):
            self.wfile.write(view[offset: offset + step])
            backend.sent_bytes = offset + len(view[offset: offset + step])

    def _chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Checksum")
        self.end_headers()
        for piece in (b"hello ", b"chunked ", b"world"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\nX-Checksum: abc123\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _serve


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    # HTTP/2 streams open their backend connections all at once: the default backlog of 5
    # would drop SYNs, and each retransmission costs a second
    request_queue_size = 128
    backend: HttpBackend

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a peer that went away is normal
            super().handle_error(request, client_address)


class HttpBackend:
    """An ``http.server`` backend that records every request it serves (``requests``).

    Paths: ``/echo`` answers the request body; ``/big/N`` streams N bytes of ``payload(N)``
    (``sent_bytes`` follows the progress); ``/sink`` hashes an upload as it streams and
    answers ``"<length> <sha256>"``; ``/chunked`` answers a chunked body with a trailer;
    ``/status/N`` answers status N; ``/hold...`` sets ``arrived`` and waits for ``release``
    before answering. Anything else answers ``"<name> <method> <path>"``.
    """

    def __init__(self, name: str = "backend") -> None:
        self.name = name
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.backend = self
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.conns: list[socket.socket] = []
        self.response_headers: list[tuple[str, str]] = []
        self.refuse_continue = False
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.sent_bytes = 0
        self.received_bytes = 0
        self._payloads: dict[int, bytes] = {}
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def payload(self, size: int) -> bytes:
        with self.lock:
            if size not in self._payloads:
                self._payloads[size] = _pattern(size)
            return self._payloads[size]

    def _track(self, sock: socket.socket) -> None:
        with self.lock:
            self.conns.append(sock)

    def _record(self, request: Recorded) -> None:
        with self.lock:
            self.requests.append(request)

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self.lock:
            return len(self.conns)

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def last(self) -> Recorded:
        with self.lock:
            assert self.requests, f"{self.name} received no request"
            return self.requests[-1]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()  # no accept after this
        with self.lock:
            conns = list(self.conns)
        for sock in conns:  # wakes the handlers blocked on keep-alive connections
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server.server_close()  # joins the handler threads
        self.thread.join(WAIT)


def backend_reader(conn: Conn) -> Reader:
    """A ``Reader`` over a ``ScriptedBackend`` connection that records every byte."""
    return Reader(lambda: ScriptedBackend.recv_some(conn))


def scripted(respond: Callable[[Conn, Reader, Message], bool | None],
             ) -> Callable[[ScriptedBackend, Conn], None]:
    """A ``ScriptedBackend`` handler: read each request, then ``respond(conn, reader, req)``
    (which writes on ``conn.sock``); a truthy return ends the connection."""

    def handler(backend: ScriptedBackend, conn: Conn) -> None:
        reader = backend_reader(conn)
        while True:
            try:
                request = reader.read_message(request=True)
            except AssertionError:
                return  # the proxy closed inside a message (tests check what arrived)
            if request is None:
                return
            if respond(conn, reader, request):
                return

    return handler


def fixed(response: bytes, *, close: bool = False) -> Callable[[ScriptedBackend, Conn], None]:
    """A scripted backend that answers every request with ``response`` (then closes)."""

    def respond(conn: Conn, reader: Reader, request: Message) -> bool:
        conn.sock.sendall(response)
        return close

    return scripted(respond)


# -- WebSocket (RFC 6455), by hand -------------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_frame(payload: bytes, opcode: int = 1, *, mask: bool) -> bytes:
    head = bytearray([0x80 | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head.append(mask_bit | length)
    elif length < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", length)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", length)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + key + masked


def ws_read_frame(reader: Reader) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of the next frame."""
    b0, b1 = reader.read_exact(2)
    length = b1 & 0x7F
    if length == 126:
        length = struct.unpack("!H", reader.read_exact(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", reader.read_exact(8))[0]
    key = reader.read_exact(4) if b1 & 0x80 else b""
    payload = reader.read_exact(length)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def ws_echo_backend(backend: ScriptedBackend, conn: Conn) -> None:
    """Answer the upgrade with 101, then echo every frame until a close frame."""
    reader = backend_reader(conn)
    request = reader.read_message(request=True)
    if request is None:
        return
    key = request.header("Sec-WebSocket-Key") or ""
    conn.sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ws_accept(key).encode() + b"\r\n\r\n"
    )
    while True:
        opcode, payload = ws_read_frame(reader)
        conn.sock.sendall(ws_frame(payload, opcode, mask=False))
        if opcode == 8:
            return


# -- load ----------------------------------------------------------------------------------------


class LoadLoop:
    """Requests in a loop from a thread, until ``stop()`` (bounded by ``max_requests`` and
    ``6 * WAIT`` seconds: longer than the waits of any test that drives it, which stops it
    itself; the bound only ends a loop a failed test left running). ``results`` holds
    ``(status, body)``, or ``(0, error)`` for a failure.

    ``keep_alive``: one connection for the whole loop (reopened after a close), else one
    connection per request.
    """

    def __init__(self, address: str, path: str = "/", host: str = HOST, *,
                 keep_alive: bool = False, max_requests: int = 20_000) -> None:
        self.address = address
        self.path = path
        self.host = host
        self.keep_alive = keep_alive
        self.max_requests = max_requests
        self.results: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        hostname, port = self.address.rsplit(":", 1)
        # not WAIT: a test waits up to WAIT for each of its steps while the loop runs (a slow
        # full run once stopped the loop under a test's third step)
        deadline = time.monotonic() + 6 * WAIT
        conn: http.client.HTTPConnection | None = None
        try:
            for _ in range(self.max_requests):
                if self.stopping.is_set() or time.monotonic() > deadline:
                    return
                if conn is None:
                    conn = http.client.HTTPConnection(hostname, int(port), timeout=WAIT)
                try:
                    conn.request("GET", self.path, headers={"Host": self.host})
                    response = conn.getresponse()
                    result = (response.status, response.read())
                    if response.will_close or not self.keep_alive:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as e:
                    result = (0, repr(e).encode())
                    conn.close()
                    conn = None
                with self.lock:
                    self.results.append(result)
        finally:
            if conn is not None:
                conn.close()

    def count(self) -> int:
        with self.lock:
            return len(self.results)

    def bodies_since(self, start: int) -> list[bytes]:
        with self.lock:
            return [body for _, body in self.results[start:]]

    def stop(self) -> list[tuple[int, bytes]]:
        self.stopping.set()
        self.thread.join(WAIT + 5)
        assert not self.thread.is_alive(), "the load loop did not stop"
        with self.lock:
            return list(self.results)


@contextmanager
def load_loop(address: str, **kwargs: Any) -> Iterator[LoadLoop]:
    loop = LoadLoop(address, **kwargs)
    try:
        yield loop
    finally:
        loop.stop()
