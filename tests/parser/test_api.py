"""The public surface of pysozu.parser: backend selection, heads and their helpers, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pysozu import parser
from pysozu.parser import (
    BodyKind,
    Limits,
    ParseError,
    RequestHead,
    parse_request_head,
    parse_response_head,
)
from pysozu.parser.errors import ERRORS, error

REQUEST = (b"GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Multi: 1\r\n"
           b"x-multi:  2 \r\nCookie: c=d\r\n\r\n")


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        env={**os.environ, **env}, timeout=60, check=True,
    )
    return result.stdout.strip()


def test_environment_forces_pure() -> None:
    out = run_python("from pysozu import parser; print(parser.BACKEND)", PYSOZU_PURE_PYTHON="1")
    assert out == "python"


def test_default_backend_is_native_when_built() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYSOZU_PURE_PYTHON"}
    result = subprocess.run(
        [sys.executable, "-c", "from pysozu import parser; print(parser.BACKEND)"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    assert result.stdout.strip() == ("native" if parser.NATIVE_AVAILABLE else "python")
    out = run_python("from pysozu import parser; print(parser.BACKEND)", PYSOZU_PURE_PYTHON="0")
    assert out == ("native" if parser.NATIVE_AVAILABLE else "python")


def test_missing_native_module_falls_back() -> None:
    out = run_python("""
        import sys
        sys.modules["pysozu.native"] = None  # makes `from pysozu import native` fail
        from pysozu import parser
        print(parser.BACKEND, parser.NATIVE_AVAILABLE)
        try:
            parser.set_backend("native")
        except RuntimeError:
            print("refused")
        print(parser.parse_request_head(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n").host)
    """)
    assert out.splitlines() == ["python False", "refused", "b'a'"]


def test_set_backend(parser_backend: str) -> None:
    with pytest.raises(ValueError, match="unknown parser backend"):
        parser.set_backend("rust")
    active = parser.BACKEND
    assert active == parser_backend
    parser.set_backend("python")
    assert parser.BACKEND == "python"
    assert parser.scan_head(b"GET / HTTP/1.1\r\n\r\n", 18, 0, True, 100, 10)[0] == 18
    assert parser.pure_scan_head is parser._pyscan.scan_head


def test_head_helpers() -> None:
    head = parse_request_head(REQUEST)
    assert isinstance(head, RequestHead)
    assert len(head) == 5
    assert head.start_line() == b"GET /a?b HTTP/1.1"
    assert head.head == REQUEST
    assert head.get("x-multi") == [b"1", b"2"]
    assert head.get(b"X-MULTI") == [b"1", b"2"]
    assert head.get("cookie") == [b"c=d"]
    assert head.get("host") == [b"example.com"]
    assert head.get("missing") == []
    assert head.headers[0] == (4, 19, 23, 25, 36)
    assert [h[0] for h in head.headers] == [4, 0, 0, 0, 7]
    assert list(head.iter_headers())[3] == (b"x-multi", b"2")
    assert "GET /a?b HTTP/1.1" in repr(head)


def test_head_without_headers() -> None:
    head = parse_request_head(b"GET / HTTP/1.0\r\n\r\n")
    assert head is not None and len(head) == 0 and head.start_line() == b"GET / HTTP/1.0"
    resp = parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n")
    assert resp is not None and resp.start_line() == b"HTTP/1.1 200 OK"
    assert resp.reason == b"OK" and resp.body == BodyKind.CLOSE_DELIMITED


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_types(kind: type) -> None:
    buf = kind(REQUEST + b"tail")
    head = parse_request_head(buf, len(REQUEST))
    assert head is not None
    assert head.method == b"GET" and type(head.method) is bytes
    assert head.host == b"example.com" and type(head.host) is bytes
    assert head.get("accept") == [b"*/*"]
    assert parse_request_head(buf, len(REQUEST) - 1) is None


def test_incremental_with_last_len() -> None:
    buf = bytearray()
    last = 0
    head = None
    for i in range(len(REQUEST)):
        buf.append(REQUEST[i])
        head = parse_request_head(buf, len(buf), last)
        if head is None:
            last = len(buf)
    assert head is not None and head.length == len(REQUEST)


def test_parse_error() -> None:
    with pytest.raises(ParseError) as e:
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\n\nX: y\r\n\r\n")
    err = e.value
    assert (err.status, err.code, err.offset) == (400, "BARE_LF", 25)
    assert str(err) == "400 bare LF (lines must end with CRLF)"
    assert repr(err) == "ParseError(400, 'bare LF (lines must end with CRLF)', 'BARE_LF', 25)"
    up = err.upstream()
    assert (up.status, up.code, up.offset, up.reason) == (502, "BARE_LF", 25, err.reason)
    assert error(6).status == 505 and error("URI_TOO_LONG").status == 414
    assert error("CL_TE", response=True).status == 502
    assert {status for status, _ in ERRORS.values()} == {400, 413, 414, 431, 501, 505}


def test_response_errors_are_502() -> None:
    with pytest.raises(ParseError) as e:
        parse_response_head(b"HTTP/2.0 200 OK\r\n\r\n")
    assert (e.value.status, e.value.code) == (502, "VERSION_NOT_SUPPORTED")


def test_limits_are_frozen() -> None:
    limits = Limits()
    assert (limits.max_head, limits.max_headers, limits.max_body) == (16384, 100, None)
    with pytest.raises(AttributeError):
        limits.max_head = 1  # type: ignore[misc]


def test_memos_stay_bounded() -> None:
    """Per-value memos (header ids, valid Host values, Connection options) cannot grow
    without bound, whatever names and values a peer sends."""
    from pysozu.parser import _pyscan, h1

    for i in range(3000):
        head = parse_request_head(b"GET / HTTP/1.1\r\nHost: h%d.example\r\nConnection: x%d\r\n"
                                  b"X-Random-%d: 1\r\n\r\n" % (i, i, i))
        assert head is not None and head.host == b"h%d.example" % i
        assert head.connection_tokens == (b"x%d" % i,)
    assert len(h1._VALID_HOSTS) <= h1._MEMO_SIZE
    assert len(h1._TOKENS) <= h1._MEMO_SIZE
    assert len(_pyscan._IDS) <= _pyscan._ID_CACHE_MAX
    # a memoised value is only ever a valid one
    with pytest.raises(ParseError) as e:
        parse_request_head(b"GET / HTTP/1.1\r\nHost: h1.example, evil\r\n\r\n")
    assert e.value.code == "BAD_HOST"
    head = parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, X\r\n\r\n")
    assert head is not None and head.connection_tokens == (b"keep-alive", b"x")
