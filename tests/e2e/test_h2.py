"""HTTP/2 clients end to end: the ``h2`` package, curl and nghttp against HTTP/1.1 backends.

Cleartext listeners serve HTTP/2 to clients that open with its preface (h2c, prior
knowledge); each stream is routed and proxied like an HTTP/1.1 request, so the backends
here are the recording HTTP/1.1 backends of the HTTP tests.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import socket
import subprocess
import time

import h2.errors
import h2.settings
import hpack
import pytest

from pysozu.parser import h2 as frames
from pysozu.protocols.access_log import AccessLogger
from pysozu.protocols.http import Http
from pysozu.protocols.http2 import H2Stream, StreamHttp
from tests.conftest import WAIT, connect, recv_all
from tests.e2e.h2_helpers import H2Client
from tests.e2e.helpers import counters, in_worker, wait_for, wait_sessions
from tests.e2e.http_helpers import (
    HOST,
    add_cluster,
    add_frontend,
    buffers_in_use,
    fetch,
    fixed,
    gauges,
    http_app,
    http_listen,
)
from tests.e2e.test_http_fast_response import ANSWERS as FAST_PATH_ANSWERS


def test_get_is_routed_and_translated(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        response = client.get("/hello?x=1")
    assert response.status == 200
    assert bytes(response.body) == b"one GET /hello?x=1"
    names = [name for name, _ in response.headers]
    assert b"connection" not in names and b"keep-alive" not in names
    assert response.header(b"x-backend") == b"one"
    assert response.header(b"content-length") == b"%d" % len(response.body)
    seen = backend.last()
    assert seen.header("Host") == HOST
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("Sozu-Id")


def test_many_concurrent_streams_on_one_connection(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        sids = [client.request(f"/s/{n}") for n in range(60)]
        responses = client.wait(*sids)
    assert [r.status for r in responses] == [200] * 60
    assert [bytes(r.body) for r in responses] == [b"one GET /s/%d" % n for n in range(60)]
    assert sorted(backend.paths()) == sorted(f"/s/{n}" for n in range(60))
    # every stream carries the connection's forwarding headers (made once per connection)
    with backend.lock:
        seen = list(backend.requests)
    assert {r.header("X-Forwarded-For") for r in seen} == {"127.0.0.1"}
    assert all('for="127.0.0.1:' in (r.header("Forwarded") or "") for r in seen)
    assert len({r.header("Sozu-Id") for r in seen}) == 60  # and its own request id


def test_finished_streams_are_freed_without_the_cyclic_collector(proxy, make_http_backend):
    """A stream, its HTTP/1.1 machine and their timers must not stay in a reference cycle
    once done: each would wait for the cyclic collector, which then took a tenth of a
    request's CPU. With the collector off, every finished stream must still go."""

    def alive_streams() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, (H2Stream, StreamHttp)))

    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    gc.collect()
    gc.disable()
    try:
        with H2Client(address) as client:
            responses = client.wait(*[client.request(f"/s/{n}") for n in range(20)])
            assert [r.status for r in responses] == [200] * 20
            # the connection stays open: only its finished streams are to go
            wait_for(lambda: alive_streams() == 0, what="finished streams freed")
    finally:
        gc.enable()


def test_a_stream_times_out_alone(proxy, make_http_backend):
    """A stream's timers are its own (polled ones, reactor/timer.py): a backend that does
    not answer one stream gets that stream a 504 after the backend timeout, and a stream
    whose request body stops coming ends too, while the connection's other streams are
    served."""
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address],
                       listener={"back_timeout": 1, "front_timeout": 2})
    backend.release.clear()  # /hold waits for it
    try:
        with H2Client(address) as client:
            started = time.monotonic()
            held = client.request("/hold")
            stalled = client.request("/upload", method="POST", end_stream=False)
            client.send_body(stalled, b"part of a body", end_stream=False)
            assert client.get("/fast").body == b"one GET /fast"
            (held_response,) = client.wait(held)
            assert held_response.status == 504
            assert 0.9 < time.monotonic() - started < 1.9  # the backend timeout, not the front's
            (stalled_response,) = client.wait(stalled)
            assert stalled_response.reset is not None or stalled_response.status in (408, 504)
            assert time.monotonic() - started < 5
            assert client.get("/after").status == 200  # the connection is still fine
        # both streams: the held one, and the upload whose backend waited for its body
        wait_for(lambda: counters(proxy).get("backend.timeout", 0) == 2,
                 what="the backend timeouts counted")
    finally:
        backend.release.set()


def test_h2_and_http1_clients_share_a_listener(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        assert client.get("/a").status == 200
        assert fetch(address, "/b").body == b"one GET /b"
        assert client.get("/c").body == b"one GET /c"


def test_large_download_under_a_small_window(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    size = 3_000_000
    with H2Client(address, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096}
                  ) as client:
        response = client.get(f"/big/{size}")
    assert response.status == 200
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(
        backend.payload(size)).digest()


def test_large_upload_with_content_length(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    body = b"u" * 2_000_000
    with H2Client(address) as client:
        response = client.get("/sink", method="POST", body=body,
                              headers=[("content-length", str(len(body)))])
    assert response.status == 200
    assert bytes(response.body) == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


def test_upload_without_length_reaches_the_backend_chunked(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    body = bytes(range(256)) * 1000
    with H2Client(address) as client:
        response = client.get("/echo", method="POST", body=body)
    assert response.status == 200 and bytes(response.body) == body
    seen = backend.last()
    assert seen.header("Transfer-Encoding") == "chunked" and seen.body == body


def test_request_trailers_reach_the_backend(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        sid = client.request("/echo", method="POST", body=b"part", end_stream=False)
        client.conn.send_headers(sid, [("x-digest", "abc")], end_stream=True)
        client.flush()
        (response,) = client.wait(sid)
    assert bytes(response.body) == b"part"
    assert backend.last().trailers == [("x-digest", "abc")]


def test_response_trailers_reach_the_client(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        response = client.get("/chunked")
    assert bytes(response.body) == b"hello chunked world"
    assert response.trailers == [(b"x-checksum", b"abc123")]
    assert response.header(b"transfer-encoding") is None


def test_head_and_bodiless_statuses(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        head = client.get("/x", method="HEAD")
        no_content = client.get("/status/204")
        not_modified = client.get("/status/304")
    assert head.status == 200 and head.body == b""
    assert head.header(b"content-length") == b"%d" % len(b"one HEAD /x")
    assert (no_content.status, no_content.body) == (204, b"")
    assert (not_modified.status, not_modified.body) == (304, b"")


def test_default_answers_are_headers_and_data(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        missing = client.get("/", host="unknown.example")
        served = client.get("/after")
    assert missing.status == 404 and b"404" in missing.body
    assert served.status == 200  # the connection goes on after an answer
    assert backend.paths() == ["/after"]


def test_client_reset_mid_download_closes_that_backend_connection(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024},
                  auto_ack=False) as client:
        sid = client.request("/big/50000000")
        while not client.responses[sid].body:
            client.read_once()
        client.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        # the backend's connection is closed: its writes stop well before the end
        wait_for(lambda: backend.sent_bytes < 50_000_000 and _backend_closed(backend),
                 what="the backend connection of the reset stream closed")
        client.auto_ack = True
        assert client.get("/after").status == 200
    assert counters(proxy).get("http2.streams.reset_by_client", 0) >= 1


def _backend_closed(backend) -> bool:
    with backend.lock:
        conns = list(backend.conns)
    return any(sock.fileno() == -1 or _peer_gone(sock) for sock in conns)


def _peer_gone(sock) -> bool:
    try:
        sock.send(b"")
        import socket as _socket

        data = sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_backend_dying_mid_response_resets_only_that_stream(proxy, make_backend,
                                                            make_http_backend):
    good = make_http_backend("good")
    broken = make_backend(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
                                close=True))
    address = http_listen(proxy)
    proxy.ok("ADD_CLUSTER", cluster_id="broken")
    proxy.ok("ADD_BACKEND", cluster_id="broken", backend_id="b0", address=broken.address)
    proxy.ok("ADD_CLUSTER", cluster_id="good")
    proxy.ok("ADD_BACKEND", cluster_id="good", backend_id="g0", address=good.address)
    proxy.ok("ADD_HTTP_FRONTEND", address=address, hostname="broken.example",
             cluster_id="broken")
    proxy.ok("ADD_HTTP_FRONTEND", address=address, hostname=HOST, cluster_id="good")
    with H2Client(address) as client:
        bad = client.request("/", host="broken.example")
        fine = client.request("/fine")
        bad_r, fine_r = client.wait(bad, fine)
        assert bad_r.reset == h2.errors.ErrorCodes.INTERNAL_ERROR
        assert fine_r.status == 200 and bytes(fine_r.body) == b"good GET /fine"
        assert client.get("/again").status == 200


def test_malformed_request_resets_the_stream_only(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        client.conn.config.validate_outbound_headers = False
        client.conn.config.normalize_outbound_headers = False
        sid = client.request("/", headers=[("connection", "close")])
        (response,) = client.wait(sid)
        assert response.reset == h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert client.get("/ok").status == 200
    assert backend.paths() == ["/ok"]


def test_per_ip_limit_counts_an_h2_connection_once(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    proxy.ok("SET_MAX_CONNECTIONS_PER_IP", limit=1)
    with H2Client(address) as client:
        sids = [client.request(f"/{n}") for n in range(10)]
        assert [r.status for r in client.wait(*sids)] == [200] * 10
        with H2Client(address) as other:
            assert other.get("/second").status == 429


def test_access_log_has_a_line_per_stream(proxy, make_http_backend, tmp_path):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    path = tmp_path / "access.log"
    logger = AccessLogger(f"file://{path}", "json")

    def install() -> None:
        proxy.worker.http.access_log = logger

    in_worker(proxy, install)
    try:
        with H2Client(address) as client:
            client.wait(*[client.request(f"/log/{n}") for n in range(3)])
        wait_for(lambda: path.exists() and path.read_text().count("/log/") == 3,
                 what="three access log lines")
        records = [json.loads(line) for line in path.read_text().splitlines()]
    finally:
        in_worker(proxy, lambda: setattr(proxy.worker.http, "access_log", None))
        logger.close()
    assert sorted(r["path"] for r in records) == ["/log/0", "/log/1", "/log/2"]
    assert {r["protocol"] for r in records} == {"H2C"}
    assert {r["status"] for r in records} == {200}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_prior_knowledge(proxy, make_http_backend):
    # one URL per run: curl 7.88 fails to reuse a prior-knowledge connection (nginx too)
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-H", f"Host: {HOST}", "-o", "-",
         "-w", "\n%{http_version} %{http_code}", f"http://{address}/curl"],
        capture_output=True, timeout=WAIT, check=True, text=True)
    assert out.stdout.splitlines() == ["one GET /curl", "2 200"]
    upload = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-H", f"Host: {HOST}", "--data-binary",
         "@-", f"http://{address}/echo"],
        input="x" * 100_000, capture_output=True, timeout=WAIT, check=True, text=True)
    assert upload.stdout == "x" * 100_000


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) missing")
def test_nghttp_many_streams(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    urls = [f"http://{address}/ng/{n}" for n in range(20)]
    out = subprocess.run(["nghttp", "-n", "-s", "-H", f":authority: {HOST}", *urls],
                         capture_output=True, timeout=WAIT, text=True)
    assert out.returncode == 0, out.stderr
    assert sorted(backend.paths()) == sorted(f"/ng/{n}" for n in range(20))


def test_h2c_off_refuses_the_preface(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address], listener={"h2c": False})
    with connect(address) as sock:
        sock.sendall(frames.PREFACE)
        answer = recv_all(sock)
    assert answer.startswith(b"HTTP/1.1 505 ")  # HTTP/1 refuses the version, as before h2c
    assert backend.paths() == []


def test_soft_stop_double_goaway_lets_streams_in_flight_finish(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    backend.release.clear()  # /hold waits until released
    with H2Client(address) as client:
        held = client.request("/hold")
        wait_for(backend.arrived.is_set, what="the held request at the backend")
        request_id = proxy.channel.send({"id": "soft", "type": "SOFT_STOP"})
        assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "PROCESSING"
        # from here the frames are read raw: the h2 package treats any GOAWAY as the end
        reader = frames.FrameReader(frames.MAX_MAX_FRAME_SIZE)
        decoder = hpack.Decoder()
        goaways: list[tuple[int, int]] = []
        status = None
        body = b""
        ended = False
        while not ended:
            data = client.sock.recv(65536)
            assert data, "the connection closed before the held stream ended"
            for ftype, flags, sid, payload in reader.feed(data):
                if ftype == frames.GOAWAY:
                    goaways.append(frames.parse_goaway(payload)[:2])
                elif ftype == frames.PING and not flags & frames.ACK:
                    client.sock.sendall(frames.ping_frame(payload, ack=True))
                    backend.release.set()  # the final GOAWAY is on its way
                elif ftype == frames.HEADERS and sid == held:
                    status = dict(decoder.decode(frames.parse_headers(flags, payload)[0],
                                                 raw=True))[b":status"]
                elif ftype == frames.DATA and sid == held:
                    body += payload
                    ended = bool(flags & frames.END_STREAM)
        # first GOAWAY: last stream 2^31-1; after the PING's round trip, the final one
        # names the stream in flight, which still completes
        assert goaways == [(2**31 - 1, 0), (held, 0)]
        assert status == b"200" and body == b"one GET /hold"
    assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "OK"


def test_backend_connections_pass_from_stream_to_stream(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        for n in range(5):
            assert client.get(f"/seq/{n}").status == 200
        # a stream that finished left its keep-alive backend connection to the next one
        assert backend.connections == 1
        sids = [client.request(f"/par/{n}") for n in range(4)]
        assert [r.status for r in client.wait(*sids)] == [200] * 4
    assert backend.connections <= 4
    assert counters(proxy).get("backend.pool.hit", 0) >= 4


def test_a_parked_backend_connection_that_closes_is_dropped(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address) as client:
        assert client.get("/first").status == 200
        with backend.lock:
            conns = list(backend.conns)
        for sock in conns:  # the backend ends its idle keep-alive connection
            sock.shutdown(socket.SHUT_RDWR)
        wait_for(lambda: in_worker(proxy, lambda: _parked(proxy)) == 0,
                 what="the closed parked connection dropped")
        assert client.get("/second").body == b"one GET /second"
    assert backend.connections == 2


def _parked(proxy) -> int:
    from pysozu.protocols.http2 import Http2

    return sum(len(s.state.parked) for s in proxy.worker.server.sessions
               if isinstance(getattr(s, "state", None), Http2))


def test_urgency_orders_what_the_connection_window_lets_out(proxy, make_http_backend):
    """RFC 9218: with the connection window shut, two responses wait; when it opens, the
    more urgent stream's DATA goes first whatever the order of the requests."""
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    with H2Client(address, auto_ack=False) as client:
        first = client.request("/big/65535")  # takes the whole connection window, unacked
        while len(client.responses[first].body) < 65535:
            client.read_once()
        lazy = client.request("/big/20000", headers=[("priority", "u=7")])
        urgent = client.request("/big/20000", headers=[("priority", "u=0")])
        while client.responses[lazy].status is None or client.responses[urgent].status is None:
            client.read_once()
        # both bodies wholly queued in the proxy before the window opens: the order is then
        # the scheduler's alone (with part of the urgent body still on its way from the
        # backend, sending the lazy one meanwhile is right, and the test would wait forever)
        wait_for(lambda: in_worker(proxy, lambda: _stream_output(proxy, (lazy, urgent)))
                 == 40000,
                 what="both response bodies queued in the proxy")
        order = []
        client.conn.increment_flow_control_window(30000)
        client.flush()
        while len(client.responses[urgent].body) < 20000:
            order += [e.stream_id for e in client.read_once()
                      if isinstance(e, h2.events.DataReceived)]
        # every DATA frame of the urgent stream came before any of the lazy one
        assert urgent in order
        assert lazy not in order or order.index(lazy) > len(order) - 1 - order[::-1].index(
            urgent)


def test_a_slow_client_holds_the_backend_back_with_bounded_memory(proxy, make_http_backend):
    backend = make_http_backend("one")
    address = http_app(proxy, [backend.address])
    size = 200_000_000
    with H2Client(address, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384},
                  auto_ack=False) as client:
        sid = client.request(f"/big/{size}")
        while not client.responses[sid].body:
            client.read_once()
        for n in range(5):  # round trips through the proxy: time for it to read on
            client.conn.ping(b"slow%04d" % n)
            client.flush()
            while not any(isinstance(e, h2.events.PingAckReceived) for e in client.read_once()):
                pass
        held = in_worker(proxy, lambda: _stream_output(proxy))
        assert 0 < held <= 64 * 1024 + 16384  # what a stream may hold beyond the windows
        assert backend.sent_bytes < size // 4  # the backend waits on full socket buffers
        assert len(client.responses[sid].body) <= 16384


def _stream_output(proxy, ids=None) -> int:
    """Bytes of response DATA the proxy holds for its HTTP/2 streams (those of ``ids``)."""
    from pysozu.protocols.http2 import Http2

    return sum(stream.out_bytes for s in proxy.worker.server.sessions
               if isinstance(getattr(s, "state", None), Http2)
               for sid, stream in s.state.streams.items() if ids is None or sid in ids)


def test_nothing_leaks_whatever_way_streams_end(proxy, make_backend, make_http_backend):
    backend = make_http_backend("one")
    broken = make_backend(fixed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
                                close=True))
    address = http_app(proxy, [backend.address])
    proxy.ok("ADD_CLUSTER", cluster_id="broken")
    proxy.ok("ADD_BACKEND", cluster_id="broken", backend_id="b0", address=broken.address)
    proxy.ok("ADD_HTTP_FRONTEND", address=address, hostname="broken.example",
             cluster_id="broken")
    for _ in range(3):
        with H2Client(address) as client:
            ok = [client.request(f"/ok/{n}") for n in range(10)]
            bad = client.request("/", host="broken.example")
            missing = client.request("/", host="nowhere.example")
            upload = client.request("/echo", method="POST", body=b"x" * 100_000)
            cut = client.request("/big/5000000")
            while not client.responses[cut].body:
                client.read_once()
            client.conn.reset_stream(cut)
            client.flush()
            client.wait(*ok, bad, missing, upload)
            held = client.request("/big/5000000")  # left open when the client goes
            while not client.responses[held].body:
                client.read_once()
    wait_sessions(proxy, 0)
    # a closed session has released everything at once (no backend timeout needed)
    assert buffers_in_use(proxy) == 0
    assert gauges(proxy).get("protocol.http2", 0) == 0
    assert gauges(proxy)["backend.connections"] == 0


@pytest.mark.parametrize("answer", FAST_PATH_ANSWERS, ids=range(len(FAST_PATH_ANSWERS)))
def test_stream_responses_are_the_same_on_the_fast_and_general_paths(proxy, make_backend,
                                                                     answer):
    """A stream's machine takes ``Http._fast_response`` for the usual answer (its reader is
    told the head it wrote): the client gets the fields and body the general path gives."""
    backend = make_backend(fixed(answer))
    address = http_listen(proxy)
    add_cluster(proxy, "app", [backend.address])
    add_frontend(proxy, address, "app", headers=[
        {"position": "RESPONSE", "key": "X-Edge", "val": "pysozu"}])
    previous = Http.FAST_RESPONSES
    seen = {}
    try:
        for fast in (True, False):
            in_worker(proxy, lambda fast=fast: setattr(Http, "FAST_RESPONSES", fast))
            with H2Client(address) as client:
                responses = [client.get("/") for _ in range(2)]
            seen[fast] = [
                (r.status, [(n, b"ID" if n == b"sozu-id" else v) for n, v in r.headers],
                 bytes(r.body), r.ended, r.informational) for r in responses]
    finally:
        in_worker(proxy, lambda: setattr(Http, "FAST_RESPONSES", previous))
    assert seen[True] == seen[False]
    for _status, headers, _body, ended, _informational in seen[True]:
        names = [n for n, _ in headers]
        assert ended and (b"x-edge", b"pysozu") in headers and b"sozu-id" in names
        assert b"connection" not in names and b"keep-alive" not in names


def test_streams_of_one_connection_are_routed_by_their_own_authority(proxy,
                                                                       make_http_backend):
    """The connection keeps its last authority's split for the next streams: a stream that
    names another host (or port) must still be routed, and forwarded, by its own."""
    one, two = make_http_backend("one"), make_http_backend("two")
    address = http_listen(proxy)
    add_cluster(proxy, "one", [one.address])
    add_cluster(proxy, "two", [two.address])
    add_frontend(proxy, address, "one", hostname="one.test")
    add_frontend(proxy, address, "two", hostname="two.test")
    hosts = ["one.test", "two.test", "two.test", "one.test:8080", "none.test", "one.test"]
    with H2Client(address) as client:
        sids = [client.request(f"/{n}", host=host) for n, host in enumerate(hosts)]
        responses = client.wait(*sids)
    got = [(r.status, bytes(r.body)) for r in responses]
    assert got == [
        (200, b"one GET /0"), (200, b"two GET /1"), (200, b"two GET /2"),
        (200, b"one GET /3"), (404, got[4][1]), (200, b"one GET /5"),
    ]
    # the streams run side by side, each on its own backend connection: in any order
    assert sorted(r.header("Host") for r in one.requests) == [
        "one.test", "one.test", "one.test:8080"]
    assert sorted(r.header("Host") for r in two.requests) == ["two.test", "two.test"]
