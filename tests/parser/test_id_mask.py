"""``scan_head_ids`` (SCANNER.md, "The id mask") through the active backend: the same answer
as ``scan_head`` plus the mask, on the table's inputs split at every offset, and the pure
scanner's head-pattern / continuation split (lines with trailing OWS, heads longer than one
regex piece) against its reference path."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pysozu import parser
from pysozu.parser import _pyscan as pure
from pysozu.parser import h1
from tests.parser.cases import CASES

HOST, CONNECTION = 4, 3


def scan_ids(buf: bytes | bytearray | memoryview, length: int | None = None,
             last_len: int = 0, is_request: bool = True, max_head: int = 16384,
             max_headers: int = 100) -> tuple[int, list[int], int]:
    rc, out, mask = h1._scan_ids(buf, len(buf) if length is None else length, last_len,
                                 is_request, max_head, max_headers)
    return rc, list(out), mask


def scan(buf: bytes | bytearray | memoryview, length: int | None = None, last_len: int = 0,
         is_request: bool = True, max_head: int = 16384,
         max_headers: int = 100) -> tuple[int, list[int]]:
    return parser.scan_head(buf, len(buf) if length is None else length, last_len,
                            is_request, max_head, max_headers)


def expected_mask(rc: int, out: Sequence[int]) -> int:
    """SCANNER.md's id mask, from the records, written the slow way."""
    if rc <= 0:
        return 0
    ids = [out[i] for i in range(8, 8 + 5 * out[6], 5)]
    mask = 0
    for hid in ids:
        mask |= 1 << hid
    for hid in range(1, 7):
        if ids.count(hid) > 1:
            mask |= 1 << (18 + hid)
    return mask


def checked(buf: bytes | bytearray | memoryview, length: int | None = None,
            last_len: int = 0, is_request: bool = True, max_head: int = 16384,
            max_headers: int = 100) -> tuple[int, list[int], int]:
    """scan_head_ids, asserted to agree with scan_head and with expected_mask."""
    args = (buf, length, last_len, is_request, max_head, max_headers)
    rc, out, mask = scan_ids(*args)
    assert (rc, out) == scan(*args)
    assert mask == expected_mask(rc, out), (bytes(buf), length, last_len)
    return rc, out, mask


def head(*lines: bytes, start: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"\r\n".join((start, *lines)) + b"\r\n\r\n"


def test_example_of_the_contract() -> None:
    data = head(b"Host: a", b"Accept: b", b"Cookie: c", b"host: d")
    assert checked(data)[2] == 1 << 0 | 1 << 4 | 1 << 7 | 1 << 22


@pytest.mark.parametrize(("lines", "mask"), [
    ((), 0),
    ((b"X: 1",), 1),
    ((b"Host: a",), 1 << HOST),
    ((b"Host: a", b"Connection: close"), 1 << HOST | 1 << CONNECTION),
    ((b"Content-Length: 1", b"content-length: 1"), 1 << 1 | 1 << 19),
    ((b"Transfer-Encoding: a", b"X: y", b"TRANSFER-ENCODING: b"), 1 | 1 << 2 | 1 << 20),
    ((b"Connection: a", b"Connection: b", b"Connection: c"), 1 << 3 | 1 << 21),
    ((b"Upgrade: a", b"Upgrade: b"), 1 << 5 | 1 << 23),
    ((b"Expect: a", b"Expect: b"), 1 << 6 | 1 << 24),
    # repeats of ids past 6 (and of unknown names) only set the id's own bit
    ((b"Cookie: a", b"Cookie: b", b"X: 1", b"Y: 2"), 1 | 1 << 7),
    ((b"X-Request-ID: a", b"x-request-id: b"), 1 << 17),
    # trailing OWS (the pure scanner's continuation) does not change the mask
    ((b"Host: a ", b"Host: b\t"), 1 << HOST | 1 << 22),
])
def test_mask_values(lines: tuple[bytes, ...], mask: int) -> None:
    assert checked(head(*lines))[2] == mask
    response = head(*lines, start=b"HTTP/1.1 200 OK")
    assert checked(response, is_request=False)[2] == mask


def test_every_id_alone_and_twice() -> None:
    for name, hid in pure.HEADER_IDS.items():
        assert checked(head(name + b": v"))[2] == 1 << hid
        twice = 1 << hid | (1 << (18 + hid) if hid <= 6 else 0)
        assert checked(head(name + b": v", name.upper() + b": w"))[2] == twice


def test_no_mask_unless_complete() -> None:
    data = head(b"Host: a")
    assert scan_ids(data, len(data) - 1) == (0, [], 0)
    assert scan_ids(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n") == (-10, [20], 0)
    assert scan_ids(data, max_headers=0) == (-15, [16], 0)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_types(kind: type) -> None:
    data = head(b"Host: a", b"Connection: close", b"Host: b")
    assert checked(kind(data)) == checked(data)


@pytest.mark.parametrize("case", [c for c in CASES if len(c.raw) < 2000], ids=lambda c: c.id)
def test_table_inputs_at_every_split(case: object) -> None:
    """Every table input, whole, cut at every length, and resumed from every incomplete
    prefix (last_len): the mask follows the spans, whatever the split."""
    raw: bytes = case.raw  # type: ignore[attr-defined]
    is_request = case.kind == "request"  # type: ignore[attr-defined]
    limits = case.limits  # type: ignore[attr-defined]
    args = (is_request, limits.max_head, limits.max_headers)
    whole = checked(raw, None, 0, *args)
    for k in range(len(raw)):
        first = checked(raw, k, 0, *args)
        if first[0] == 0:
            assert checked(raw, None, k, *args) == whole


# ---- the pure scanner's pieces ---------------------------------------------------------------


def lines(n: int, ows_at: frozenset[int] = frozenset(), hosts: frozenset[int] = frozenset()
          ) -> list[bytes]:
    out = []
    for i in range(n):
        name = b"Host" if i in hosts else b"H-%d" % i
        out.append(name + b": v%d" % i + (b" \t" if i in ows_at else b""))
    return out


CHUNK = pure._CHUNK
COUNTS = [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1, 99]


@pytest.mark.parametrize("n", COUNTS)
@pytest.mark.parametrize("where", ["none", "first", "last", "piece-edge", "every"])
def test_pure_pieces_agree_with_the_reference(n: int, where: str) -> None:
    """Heads around the piece size, with trailing OWS here and there (the head pattern
    refuses it, the continuation takes it): the fast path and the reference agree."""
    ows = {"none": set(), "first": {0}, "last": {n - 1}, "piece-edge": {CHUNK - 1, CHUNK},
           "every": set(range(n))}[where]
    data = head(*lines(n, frozenset(ows), frozenset({n // 2, n - 1})))
    for is_request, raw in ((True, data),
                            (False, b"HTTP/1.1 200 OK" + data[len(b"GET / HTTP/1.1"):])):
        for max_headers in (100, n, max(n - 1, 0), CHUNK):
            want = pure._reference(raw, len(raw), 0, is_request, 16384, max_headers)
            rc, out, mask = pure.scan_head_ids(raw, len(raw), 0, is_request, 16384,
                                               max_headers)
            assert (rc, out) == want
            assert mask == expected_mask(rc, out)
            # and one byte short: incomplete, whatever the path
            assert pure.scan_head_ids(raw, len(raw) - 1, 0, is_request, 16384,
                                      max_headers) == (0, [], 0)


def test_pure_bad_line_after_trailing_ows() -> None:
    data = head(b"A: 1 ", b"B: 2", b"C : 3")
    assert pure.scan_head_ids(data, len(data), 0, True, 16384, 100) == (
        -10, [data.index(b" : 3")], 0)
    data = head(b"A: 1 ", b"B:\x002")
    assert pure.scan_head_ids(data, len(data), 0, True, 16384, 100) == (
        -12, [data.index(b"\x00")], 0)


def test_masks_memo_stays_bounded() -> None:
    for i in range(pure._MASKS_MAX + 50):
        ids = b"".join(b"Host: a\r\n" if i >> bit & 1 else b"X: b\r\n" for bit in range(11))
        data = b"GET / HTTP/1.0\r\n" + ids + b"\r\n"
        rc, out, mask = pure.scan_head_ids(data, len(data), 0, True, 16384, 100)
        assert rc == len(data) and mask == expected_mask(rc, out)
        assert len(pure._MASKS) <= pure._MASKS_MAX


# ---- the semantic layer's use of it -----------------------------------------------------------


@pytest.mark.parametrize("value", [b"chunked", b"gzip, chunked", b"chunked, chunked", b"foo",
                                   b"chunked;x=1", b",", b"gzip", b"gzip;q=\"a,b\", chunked"])
def test_transfer_encoding_memo_gives_the_same_verdict(value: bytes) -> None:
    data = head(b"Host: a", b"Transfer-Encoding: " + value)
    verdicts = []
    for _ in range(3):  # the first parse fills the memo, the others read it
        try:
            got = parser.parse_request_head(data)
            assert got is not None
            verdicts.append(("ok", got.body))
        except parser.ParseError as e:
            verdicts.append((e.code, e.offset))
    assert verdicts[0] == verdicts[1] == verdicts[2]


def test_transfer_encoding_memo_stays_bounded() -> None:
    for i in range(h1._MEMO_SIZE + 50):
        data = head(b"Host: a", b"Transfer-Encoding: x%d, chunked" % i)
        with pytest.raises(parser.ParseError) as e:
            parser.parse_request_head(data)
        assert e.value.code == "UNKNOWN_TE"
        assert len(h1._CODINGS) <= h1._MEMO_SIZE


def test_repeated_lines_use_every_value() -> None:
    """The "more than one line" bits send the parser to the lines' values, not the first's."""
    got = parser.parse_request_head(head(b"Host: a", b"Connection: keep-alive",
                                         b"Connection: close"))
    assert got is not None and got.keep_alive is False
    assert got.connection_tokens == (b"keep-alive", b"close")
    got = parser.parse_request_head(head(b"Connection: keep-alive", b"Connection: x",
                                         start=b"GET / HTTP/1.0"))
    assert got is not None and got.keep_alive is True
    got = parser.parse_request_head(head(b"Host: a", b"Transfer-Encoding: gzip",
                                         b"Transfer-Encoding: chunked"))
    assert got is not None and got.body == parser.BodyKind.CHUNKED
