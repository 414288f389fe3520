"""Request smuggling: ambiguous or malformed requests are refused before any byte reaches a
backend, and a second request hidden in a body only ever travels as body bytes.

Every malformed request is sent in one write together with a valid ``GET /smuggled``: a
proxy that misread the framing would forward that second request. The backend records
every byte it receives.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import counters, wait_for
from tests.e2e.http_helpers import (
    HOST,
    RawClient,
    Reader,
    backend_reader,
    fetch,
    get_request,
    http_app,
    scripted,
)

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"


def _ok(conn, reader, request):
    conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(request.body), request.body))


def _h(*lines: str, body: bytes = b"", version: str = "HTTP/1.1", method: str = "POST") -> bytes:
    head = f"{method} /target {version}\r\nHost: {HOST}\r\n" + "".join(f"{x}\r\n" for x in lines)
    return head.encode("latin-1") + b"\r\n" + body


# (id, request bytes sent before the smuggled request, expected status)
HEAD_CASES = [
    ("cl-te", _h("Content-Length: 5", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    ("te-cl", _h("Transfer-Encoding: chunked", "Content-Length: 5", body=b"0\r\n\r\n"), 400),
    ("two-cl", _h("Content-Length: 5", "Content-Length: 0", body=b"hello"), 400),
    ("cl-list", _h("Content-Length: 5, 5", body=b"hello"), 400),
    ("cl-plus", _h("Content-Length: +5", body=b"hello"), 400),
    ("cl-hex", _h("Content-Length: 0x5", body=b"hello"), 400),
    ("cl-space-colon", _h("Content-Length : 5", body=b"hello"), 400),
    ("te-not-final", _h("Transfer-Encoding: gzip", body=b"0\r\n\r\n"), 400),
    ("te-identity", _h("Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"), 501),
    ("te-twice", _h("Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                    body=b"0\r\n\r\n"), 400),
    ("te-http10", _h("Transfer-Encoding: chunked", version="HTTP/1.0", body=b"0\r\n\r\n"), 400),
    ("te-unknown", _h("Transfer-Encoding: xchunked", body=b"0\r\n\r\n"), 501),
    ("te-quoted", _h('Transfer-Encoding: "chunked"', body=b"0\r\n\r\n"), 400),
    ("obs-fold", _h("X-Folded: a", " b", "Content-Length: 0"), 400),
    ("obs-fold-te", _h("X-Folded: a", " Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    ("bare-lf", b"GET /target HTTP/1.1\nHost: app.test\n\n", 400),
    ("bare-lf-header", b"GET /target HTTP/1.1\r\nHost: app.test\nX: y\r\n\r\n", 400),
    ("bare-cr", b"GET /target HTTP/1.1\r\nHost: app.test\rX: y\r\n\r\n", 400),
    ("nul-in-value", _h("X-Nul: a\x00b", "Content-Length: 0"), 400),
    ("space-in-name", _h("Content Length: 5", body=b"hello"), 400),
    ("two-hosts", _h("Host: other.test", "Content-Length: 0"), 400),
    ("no-host", b"GET /target HTTP/1.1\r\n\r\n", 400),
    ("double-space", b"GET  /target HTTP/1.1\r\nHost: app.test\r\n\r\n", 400),
    ("bad-method", b"G(T /target HTTP/1.1\r\nHost: app.test\r\n\r\n", 400),
    ("bad-version", b"GET /target HTTP/1.x\r\nHost: app.test\r\n\r\n", 400),
]

BODY_CASES = [
    ("chunk-size-bad", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-0x", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-sign", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-huge", b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("chunk-size-space", b"5 \r\nhello\r\n0\r\n\r\n"),
    ("chunk-no-crlf", b"5\r\nhelloXX0\r\n\r\n"),
    ("chunk-bare-lf", b"5\nhello\n0\n\n"),
    ("chunk-short", b"3\r\nhello\r\n0\r\n\r\n"),
    ("trailer-cl", b"0\r\nContent-Length: 5\r\n\r\n"),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in HEAD_CASES],
                         ids=[c[0] for c in HEAD_CASES])
def test_bad_head_refused_before_the_backend(proxy, make_backend, data, expected):
    backend = make_backend(scripted(_ok))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(data + SMUGGLED)
        response = client.response()
        assert response.status == expected, response.start
        assert response.header("Connection") == "close"
        client.expect_eof()  # the smuggled request is never answered either
    assert backend.conns == []  # nothing was even connected
    assert counters(proxy)["http.frontend_parse_errors"] == 1


@pytest.mark.parametrize("body", [c[1] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES])
def test_bad_chunked_body_refused(proxy, make_backend, body):
    backend = make_backend(scripted(_ok))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(_h("Transfer-Encoding: chunked", body=body) + SMUGGLED)
        response = client.response()
        assert response.status == 400, response.start
        client.expect_eof()
    # the whole body arrived with the head, so the proxy saw the error before connecting
    assert backend.conns == []


def test_bad_chunk_after_forwarding_cuts_both_sides(proxy, make_backend):
    backend = make_backend(scripted(_ok))
    address = http_app(proxy, [backend.address])
    with RawClient(address) as client:
        client.send(_h("Transfer-Encoding: chunked", body=b"5\r\nhello\r\n"))
        conn = backend.conn(0)
        wait_for(lambda: conn.received().endswith(b"5\r\nhello\r\n"), what="the first chunk")
        client.send(b"zz\r\n" + SMUGGLED)
        # part of the body already went: no answer can be trusted, both ends are closed
        assert client.reader.read_to_eof() == b""
    assert conn.eof.wait(5)
    assert b"smuggled" not in conn.received() and b"zz" not in conn.received()


def test_body_hiding_a_request_is_one_body(proxy, make_backend):
    backend = make_backend(scripted(_ok))
    address = http_app(proxy, [backend.address])
    hidden = b"GET /hidden HTTP/1.1\r\nHost: app.test\r\n\r\n"
    with RawClient(address) as client:
        response = client.request(get_request("/form", method="POST", body=hidden))
        assert response.status == 200 and response.body == hidden
        chunked = _h("Transfer-Encoding: chunked",
                     body=b"%x\r\n%s\r\n0\r\n\r\n" % (len(hidden), hidden))
        response = client.request(chunked)
        assert response.status == 200 and response.body == hidden
        assert client.request(get_request("/after")).status == 200
    # parsed as a backend would: three requests, the hidden one only ever inside bodies
    chunks = [backend.conn(0).received()]
    reader = Reader(lambda: chunks.pop() if chunks else b"")
    seen = []
    while (message := reader.read_message(request=True)) is not None:
        seen.append((message.method, message.path, message.body))
    assert seen == [("POST", "/form", hidden), ("POST", "/target", hidden),
                    ("GET", "/after", b"")]


def test_valid_requests_still_served(proxy, make_backend):
    backend = make_backend(scripted(_ok))
    address = http_app(proxy, [backend.address])
    # lenient but valid forms: chunk extensions, OWS around values, a lower-case TE token
    response = fetch(address, "/", method="POST", body=b"x",
                     headers={"Content-Length": "1", "X-Spaces": "  padded  "})
    assert response.status == 200 and response.body == b"x"
    with RawClient(address) as client:
        response = client.request(_h("Transfer-Encoding: Chunked",
                                     body=b"1;name=\"quoted value\"\r\ny\r\n0\r\n\r\n"))
        assert response.status == 200 and response.body == b"y"


@pytest.mark.parametrize("expect", [True, False], ids=["expect-100", "plain"])
def test_early_response_before_body_closes(proxy, make_backend, expect):
    def answer_at_once(backend, conn):
        # answers right after the head and never reads the body (a 401 before an upload)
        reader = backend_reader(conn)
        while reader.read_head() is not None:
            conn.sock.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")

    backend = make_backend(answer_at_once)
    address = http_app(proxy, [backend.address])
    headers = [("Content-Length", str(len(SMUGGLED)))]
    if expect:
        headers.append(("Expect", "100-continue"))
    with RawClient(address) as client:
        client.send(get_request("/upload", method="POST", headers=headers))
        response = client.response()
        assert response.status == 401
        # the proxy cannot tell where the unsent body ends: it says it closes, and does
        assert response.header("Connection") == "close"
        try:
            client.send(SMUGGLED)  # the body, which happens to look like a request
        except OSError:
            pass
        try:
            assert client.reader.read_to_eof() == b""
        except ConnectionResetError:
            pass
    # the backend got one request: the proxy stamps a Sozu-Id on each request it forwards,
    # so a body turned into a request would carry a second one
    data = b"".join(conn.received() for conn in backend.conns)
    assert data.startswith(b"POST /upload HTTP/1.1\r\n")
    assert data.count(b"Sozu-Id: ") == 1, data
