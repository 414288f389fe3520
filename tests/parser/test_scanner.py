"""``scan_head`` itself (SCANNER.md), through the active backend: output layout, header ids,
buffer types, ``length`` and ``last_len``, heads longer than one regex piece, limits."""

from __future__ import annotations

import pytest

from pysozu import parser
from pysozu.parser import HEADER_IDS, scan_head
from pysozu.parser import _pyscan as pure
from pysozu.parser.errors import CODE_NAMES, ERRORS
from tests.parser.cases import CASES

REQ = (b"\r\nPOST /p?q HTTP/1.0\r\nHost: a.example\r\nContent-Length:  3 \r\n"
       b"X-Empty:\r\n\r\nabc")
RESP = b"HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\n"


def scan(buf: bytes | bytearray | memoryview, length: int | None = None, last_len: int = 0,
         is_request: bool = True, max_head: int = 16384,
         max_headers: int = 100) -> tuple[int, list[int]]:
    return scan_head(buf, len(buf) if length is None else length, last_len, is_request,
                     max_head, max_headers)


def test_request_layout() -> None:
    rc, out = scan(REQ)
    assert rc == len(REQ) - 3
    assert out == [2, 2, 6, 7, 11, 0, 3, 0,
                   4, 22, 26, 28, 37,
                   1, 39, 53, 56, 57,
                   0, 60, 67, 68, 68]


def test_response_layout() -> None:
    rc, out = scan(RESP, is_request=False)
    assert rc == len(RESP)
    assert out == [0, 404, 13, 22, 0, 1, 1, 0, 0, 24, 30, 32, 33]


def test_incomplete_and_error_shapes() -> None:
    assert scan(REQ[:20]) == (0, [])
    assert scan(b"GET / HTTP/1.1\r\nX : y\r\n\r\n") == (-10, [17])
    assert CODE_NAMES[10] == "WS_BEFORE_COLON"


@pytest.mark.parametrize("name", sorted(HEADER_IDS))
def test_header_ids_ignore_case(name: bytes) -> None:
    hid = HEADER_IDS[name]
    for spelling in (name, name.upper(), name.title(), name.swapcase()):
        head = b"GET / HTTP/1.1\r\n" + spelling + b": v\r\nX-" + spelling + b": v\r\n\r\n"
        rc, out = scan(head)
        assert rc == len(head) and out[8] == hid and out[13] == 0


def test_header_ids_cover_the_contract() -> None:
    assert sorted(HEADER_IDS.values()) == list(range(1, 18))
    assert list(ERRORS)[:15] == list(CODE_NAMES[1:])


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_types_and_length(kind: type) -> None:
    expected = scan(REQ)
    data = REQ + b"GARBAGE\x00\r\n\r\n"
    buf = kind(data) if kind is not memoryview else memoryview(bytearray(data))
    assert scan(buf, len(REQ)) == expected
    # a head whose final CRLF lies past `length` is not complete, whatever the buffer holds
    head_end = expected[0]
    assert scan(buf, head_end - 1) == (0, [])
    assert scan(buf, head_end - 2, is_request=True) == (0, [])


def test_bytes_after_length_are_never_read() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n"
    stale = head + b"\r\n"
    assert scan(stale, len(head)) == (0, [])
    assert scan(stale, len(head) + 1) == (0, [])
    assert scan(stale, len(head) + 2)[0] == len(stale)


@pytest.mark.parametrize("case", [c for c in CASES if len(c.raw) < 2000], ids=lambda c: c.id)
def test_last_len_never_changes_the_result(case: object) -> None:
    raw: bytes = case.raw  # type: ignore[attr-defined]
    kind = case.kind == "request"  # type: ignore[attr-defined]
    limits = case.limits  # type: ignore[attr-defined]
    full = scan(raw, is_request=kind, max_head=limits.max_head, max_headers=limits.max_headers)
    for last_len in range(len(raw)):
        if scan(raw, last_len, is_request=kind, max_head=limits.max_head,
                max_headers=limits.max_headers)[0] != 0:
            break
        assert scan(raw, None, last_len, kind, limits.max_head, limits.max_headers) == full


def many(n: int) -> bytes:
    return b"GET / HTTP/1.1\r\n" + b"".join(b"H-%d: %d\r\n" % (i, i) for i in range(n)) + b"\r\n"


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, 33, 48, 99, 100])
def test_many_headers(n: int) -> None:
    head = many(n)
    rc, out = scan(head)
    assert rc == len(head) and out[6] == n and len(out) == 8 + 5 * n
    names = [head[out[i + 1] : out[i + 2]] for i in range(8, len(out), 5)]
    values = [head[out[i + 3] : out[i + 4]] for i in range(8, len(out), 5)]
    assert names == [b"H-%d" % i for i in range(n)]
    assert values == [b"%d" % i for i in range(n)]


@pytest.mark.parametrize("limit", [0, 1, 15, 16, 17, 31, 32, 33, 39])
def test_too_many_headers_offset(limit: int) -> None:
    head = many(40)
    rc, out = scan(head, max_headers=limit)
    assert rc == -15
    assert out == [head.index(b"H-%d:" % limit)]


def test_bad_line_after_a_full_regex_piece() -> None:
    head = many(20).replace(b"H-17: 17", b"H-17 : 17")
    assert scan(head) == (-10, [head.index(b" : 17")])
    head = many(40).replace(b"H-35: 35", b"H-35:\x0035")
    assert scan(head) == (-12, [head.index(b"\x00")])


def test_size_limits() -> None:
    head = many(3)
    assert scan(head, max_head=len(head))[0] == len(head)
    assert scan(head, max_head=len(head) - 1) == (-13, [len(head) - 1])
    assert scan(head[:-1], max_head=len(head) - 1) == (0, [])
    assert scan(head, max_head=10) == (-14, [10])
    assert scan(head, is_request=False, max_head=10) == (-13, [10])


def test_pathological_lines_are_linear() -> None:
    """Long runs of blanks before a bad byte must not make the regexes backtrack."""
    import time

    head = b"GET / HTTP/1.1\r\nX:" + b" " * 16000 + b"\x00\r\n\r\n"
    start = time.perf_counter()
    assert scan(head, max_head=20000) == (-12, [head.index(b"\x00")])
    head = b"GET / HTTP/1.1\r\nX: a" + b" a" * 8000 + b" \x01\r\n\r\n"
    assert scan(head, max_head=20000) == (-12, [head.index(b"\x01")])
    assert time.perf_counter() - start < 1.0


def test_pure_fast_path_agrees_with_the_reference(parser_backend: str) -> None:
    """The pure scanner's two paths (see _pyscan's docstring) on every table input."""
    if parser_backend != "python":
        pytest.skip("pure-only")
    for case in CASES:
        limits = case.limits
        args = (case.kind == "request", limits.max_head, limits.max_headers)
        for length in {len(case.raw), *range(0, len(case.raw), 7)}:
            assert pure.scan_head(case.raw, length, 0, *args) == pure._reference(
                case.raw, length, 0, *args), (case.id, length)


def test_backend_is_what_the_fixture_set(parser_backend: str) -> None:
    active = parser.BACKEND
    assert active == parser_backend


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 40])
def test_trailing_ows_trimmed_in_every_piece(kind: type, n: int) -> None:
    lines = [b"H-%d: v%d%s" % (i, i, b" \t "[: i % 4]) for i in range(n)]
    head = b"GET / HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    rc, out = scan(kind(head))
    assert rc == len(head)
    assert [head[out[i + 3] : out[i + 4]] for i in range(8, len(out), 5)] == [
        b"v%d" % i for i in range(n)]
    assert (rc, out) == pure._reference(head, len(head), 0, True, 16384, 100)


def test_reason_keeps_its_blanks() -> None:
    head = b"HTTP/1.1 200 OK \t\r\nA: b \r\n\r\n"
    rc, out = scan(head, is_request=False)
    assert rc == len(head)
    assert head[out[2] : out[3]] == b"OK \t" and head[out[11] : out[12]] == b"b"
