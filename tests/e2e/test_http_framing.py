"""Message framing through the proxy: keep-alive, pipelining, HTTP/1.0, chunked bodies and
trailers, close-delimited responses, 100-continue and other 1xx, bodiless responses, large
bodies with bounded memory, back-pressure both ways, and the WebSocket upgrade."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import WAIT
from tests.e2e.helpers import QUIET, in_worker, wait_for
from tests.e2e.http_helpers import (
    RawClient,
    Reader,
    fetch,
    fixed,
    get_request,
    http_app,
    scripted,
    ws_echo_backend,
    ws_frame,
    ws_read_frame,
)

BIG = 50 << 20  # 50 MiB


def _wait_stalled(value, what: str) -> int:
    """Poll ``value()`` until it stays the same for ``QUIET`` seconds (bounded by WAIT): a
    bounded wait that shows progress has stopped, not a synchronisation."""
    deadline = time.monotonic() + WAIT
    last, since = value(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = value()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET:
            return int(last)
    raise AssertionError(f"{what} never stalled")


def _buffers_created(proxy) -> int:
    """High-water mark of the buffer pool: how many buffers were ever allocated."""
    return int(in_worker(proxy, lambda: proxy.worker.server.pool.created))


# -- persistence ---------------------------------------------------------------------------------


def test_pipelined_requests_answered_in_order(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(b"".join(get_request(f"/p{n}") for n in range(3))
                    + get_request("/echo", method="POST", body=b"GET /in-body HTTP/1.1\r\n")
                    + b"".join(get_request(f"/p{n}") for n in range(3, 6)))
        bodies = [client.response().body for _ in range(7)]
    assert bodies[:3] == [b"backend GET /p%d" % n for n in range(3)]
    assert bodies[3] == b"GET /in-body HTTP/1.1\r\n"
    assert bodies[4:] == [b"backend GET /p%d" % n for n in range(3, 6)]
    assert backend.paths() == ["/p0", "/p1", "/p2", "/echo", "/p3", "/p4", "/p5"]


def test_http10_closes_unless_keep_alive(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/a", version="HTTP/1.0"))
        assert response.status == 200 and response.body == b"backend GET /a"
        assert response.header("Connection") == "close"
        client.expect_eof()
    with RawClient(address) as client:
        keep = [("Connection", "keep-alive")]
        for n in range(3):
            response = client.request(get_request(f"/k{n}", version="HTTP/1.0", headers=keep))
            assert response.body == b"backend GET /k%d" % n
    assert backend.last().version == "HTTP/1.0"  # the request line is forwarded as is


def test_connection_close_honoured(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/", headers=[("Connection", "close")]))
        assert response.status == 200
        assert response.header("Connection") == "close"
        client.expect_eof()
    assert backend.last().header("Connection") == "close"  # forwarded as received


def test_backend_connection_close_ends_reuse(proxy, make_backend):
    backend = make_backend(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close"
                                 b"\r\n\r\nok", close=True))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        # the proxy keeps the client connection; each request needs a new backend one
        for _ in range(3):
            response = client.request(get_request("/"))
            assert response.body == b"ok"
    wait_for(lambda: len(backend.conns) == 3, what="three backend connections")


# -- chunked and close-delimited bodies ----------------------------------------------------------


def test_chunked_request_with_trailers_streamed(proxy, make_backend):
    got_first = threading.Event()

    def respond(conn, reader, request):
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(request.body), request.body))

    backend = make_backend(scripted(respond))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/up", method="POST",
                                headers=[("Transfer-Encoding", "chunked"),
                                         ("Trailer", "X-Sum")])
                    + b"5\r\nhello\r\n")
        # the first chunk reaches the backend before the client sent the rest: streamed
        conn = backend.conn(0)
        wait_for(lambda: b"5\r\nhello\r\n" in conn.received(), what="the first chunk")
        got_first.set()
        client.send(b"7;ext=1\r\n, world\r\n0\r\nX-Sum: 42\r\n\r\n")
        response = client.response()
    assert response.status == 200 and response.body == b"hello, world"
    raw = conn.received()
    # framing, extension and trailer section reach the backend byte for byte
    assert raw.endswith(b"\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Sum: 42\r\n\r\n")


def test_chunked_response_with_trailers(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/chunked"))
        assert response.chunked
        assert response.body == b"hello chunked world"
        assert response.trailers == [("X-Checksum", "abc123")]
        assert client.request(get_request("/next")).body == b"backend GET /next"  # kept alive


def test_chunked_response_streamed(proxy, make_backend):
    go_on = threading.Event()

    def respond(conn, reader, request):
        conn.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfirs\r\n")
        go_on.wait(WAIT)
        conn.sock.sendall(b"3\r\nt!!\r\n0\r\n\r\n")

    backend = make_backend(scripted(respond))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/"))
        head = client.reader.read_head()
        assert head is not None and head.startswith(b"HTTP/1.1 200")
        assert client.reader.read_line() == b"4\r\n"  # arrived before the backend went on
        go_on.set()
        assert client.reader.read_exact(4) == b"firs"


def test_close_delimited_response(proxy, make_backend):
    body = bytes(range(256)) * 1000
    backend = make_backend(fixed(b"HTTP/1.1 200 OK\r\nX-Kind: eof\r\n\r\n" + body, close=True))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/"))
        response = client.response()  # no length: read to EOF
    assert response.body == body
    assert response.header("Connection") == "close"  # the client knows the end is the close
    assert response.header("Content-Length") is None


# -- 1xx and bodiless responses ------------------------------------------------------------------


def test_expect_100_continue(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/echo", method="PUT", headers=[
            ("Expect", "100-continue"), ("Content-Length", "11")]))
        # the client waits for the backend's 100 before sending any body byte
        interim = client.response(skip_1xx=False)
        assert interim.status == 100
        client.send(b"hello there")
        response = client.response()
    assert response.status == 200 and response.body == b"hello there"
    assert backend.last().header("Expect") == "100-continue"


def test_1xx_relayed_before_final(proxy, make_backend):
    hints_seen = threading.Event()

    def respond(conn, reader, request):
        if request.path == "/split":
            # the final head comes only once the client has the 103: the proxy must relay
            # the interim head alone and keep waiting for the final one
            conn.sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
            hints_seen.wait(WAIT)
            conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
            return
        conn.sock.sendall(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")

    backend = make_backend(scripted(respond))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(get_request("/"))
        hints = client.response(skip_1xx=False)
        processing = client.response(skip_1xx=False)
        final = client.response(skip_1xx=False)
        again = client.request(get_request("/"))  # still in step after the interim heads
        client.send(get_request("/split"))
        split_hints = client.response(skip_1xx=False)
        hints_seen.set()
        split_final = client.response(skip_1xx=False)
    assert split_hints.status == 103 and split_hints.header("Link") == "</a.css>"
    assert split_final.status == 200 and split_final.body == b"final"
    assert hints.status == 103 and hints.header("Link") == "</style.css>; rel=preload"
    assert processing.status == 102
    assert final.status == 200 and final.body == b"done"
    assert final.header("Sozu-Id")
    assert again.body == b"done"


def test_head_204_304_have_no_body(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        head = client.request(get_request("/x", method="HEAD"), method="HEAD")
        # the backend announced the GET length, sent no body: the proxy must not wait for one
        assert head.status == 200 and head.header("Content-Length") == str(len(b"backend HEAD /x"))
        assert client.request(get_request("/status/204")).status == 204
        assert client.request(get_request("/status/304")).status == 304
        after = client.request(get_request("/after"))
    assert after.body == b"backend GET /after"
    assert backend.paths() == ["/x", "/status/204", "/status/304", "/after"]


# -- large bodies, bounded memory, back-pressure ------------------------------------------------


@pytest.mark.parametrize("poller", ["epoll"])  # throughput, not readiness: one poller is enough
def test_large_download_and_upload_bounded_memory(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    data = backend.payload(BIG)
    response = fetch(address, f"/big/{BIG}")
    assert response.status == 200
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(data).digest()
    response = fetch(address, "/sink", method="POST", body=data)
    assert response.body == f"{BIG} {hashlib.sha256(data).hexdigest()}".encode()
    # 100 MiB went through a handful of 16 KiB buffers
    assert _buffers_created(proxy) <= 4
    assert proxy.worker.server.pool.in_use == 0


def test_slow_client_stops_backend_reads(proxy, make_http_backend):
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    host, port = address.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)  # no autotuning
    sock.settimeout(WAIT)
    sock.connect((host, int(port)))
    with sock:
        sock.sendall(get_request(f"/big/{BIG}"))
        reader = Reader.of(sock)
        assert reader.read_head() is not None
        # the client reads nothing more: the backend's sends must block far from the end
        sent = _wait_stalled(lambda: backend.sent_bytes, "the backend's sends")
        assert sent < BIG // 2, sent
        assert proxy.worker.server.pool.in_use <= 2
        body = reader.read_exact(BIG)
    assert hashlib.sha256(body).digest() == hashlib.sha256(backend.payload(BIG)).digest()
    assert _buffers_created(proxy) <= 4


def test_upload_backpressure(proxy, make_http_backend):
    backend = make_http_backend()
    backend.release.clear()  # the backend reads the head, then nothing until released
    address = http_app(proxy, [backend.address])
    data = backend.payload(BIG)
    progress = [0]
    with RawClient(address) as client:
        def upload():
            client.send(get_request("/sink", method="POST",
                                    headers=[("Content-Length", str(BIG))]))
            view = memoryview(data)
            for offset in range(0, BIG, 1 << 16):
                client.sock.sendall(view[offset: offset + (1 << 16)])
                progress[0] = offset + len(view[offset: offset + (1 << 16)])

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        try:
            assert backend.arrived.wait(WAIT)
            sent = _wait_stalled(lambda: progress[0], "the client's upload")
            assert sent < BIG // 2, sent  # the proxy stopped reading the client
            assert proxy.worker.server.pool.in_use <= 2
        finally:
            backend.release.set()
            sender.join(WAIT)
        assert not sender.is_alive()
        response = client.response()
    assert response.body == f"{BIG} {hashlib.sha256(data).hexdigest()}".encode()
    assert _buffers_created(proxy) <= 4


def test_curl_chunked_upload_100_continue_and_reuse(proxy, make_http_backend, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    backend = make_http_backend()
    address = http_app(proxy, [backend.address])
    upload = tmp_path / "upload.bin"
    data = backend.payload(3 << 20)
    upload.write_bytes(data)
    host = ["-H", "Host: app.test"]
    result = subprocess.run(
        [curl, "-sS", "--fail", "-v", "--http1.1", *host, "-H", "Transfer-Encoding: chunked",
         "-H", "Expect: 100-continue", "--expect100-timeout", str(WAIT), "-T", str(upload),
         f"http://{address}/echo",
         "--next", "-sS", "--fail", *host, f"http://{address}/chunked",
         "--next", "-sS", "--fail", *host, "-I", f"http://{address}/head"],
        capture_output=True, timeout=WAIT * 2, check=False)
    log = result.stderr.decode("latin-1")
    assert result.returncode == 0, log[-2000:]
    body = result.stdout
    assert body.startswith(data)  # the chunked upload came back whole
    assert body[len(data):].startswith(b"hello chunked world")
    assert b"HTTP/1.1 200 OK" in body[len(data):]  # the HEAD answer's head (-I)
    assert "HTTP/1.1 100 Continue" in log  # curl waited for it and got it
    assert re.search(r"[Rr]e-?using existing connection", log), log[-2000:]
    assert backend.requests[0].header("Transfer-Encoding") == "chunked"
    assert backend.paths() == ["/echo", "/chunked", "/head"]
    assert backend.connections == 1  # one client connection, one backend connection


# -- WebSocket -----------------------------------------------------------------------------------


def test_websocket_upgrade_and_echo(proxy, make_backend):
    backend = make_backend(ws_echo_backend)
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        # the first frame goes in the same write as the handshake: it must not be lost
        client.send(get_request("/chat", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ]) + ws_frame(b"early bird", mask=True))
        response = client.response(skip_1xx=False)
        assert response.status == 101
        assert response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert ws_read_frame(client.reader) == (1, b"early bird")
        for n, size in enumerate((5, 200, 70_000)):
            payload = bytes([n]) * size
            client.send(ws_frame(payload, 2, mask=True))
            assert ws_read_frame(client.reader) == (2, payload)
        client.send(ws_frame(b"\x03\xe8", 8, mask=True))
        assert ws_read_frame(client.reader) == (8, b"\x03\xe8")
        # the backend ends the connection: the pipe closes the client's side too
        assert client.reader.read_to_eof() == b""
    request = backend.conn(0).received()
    assert b"Upgrade: websocket" in request and b"Sozu-Id: " in request
    wait_for(lambda: proxy.worker.server.pool.in_use == 0, what="the pipe's buffers back")


def test_websocket_upgrade_refused_stays_http(proxy, make_http_backend):
    backend = make_http_backend()  # http.server knows no WebSocket: a plain 200
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        response = client.request(get_request("/chat", headers=[
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
        ]))
        assert response.status == 200 and response.body == b"backend GET /chat"
        assert client.request(get_request("/next")).body == b"backend GET /next"
