"""The two scanner backends against each other, and the pure one's two paths, on input
Hypothesis makes up: random bytes, and valid heads mutated with the bytes that matter (CR,
LF, NUL, SP, HTAB, colon, DEL, 0x80), with random limits and a resumed scan (``last_len``)
from a random earlier incomplete read. SCANNER.md says the answers are equal byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pysozu import parser
from pysozu.parser import _pyscan as pure

from .helpers import mutations

native_scan = parser._native_scan

SEEDS = [
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n"
    b"Accept: */*\r\nContent-Length: 5\r\n\r\nhello",
    b"\r\n\r\nPOST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n"
    b"X-Ws: \t a b \t\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 404 \r\nA: b\r\n\r\n",
    b"HTTP/1.1 204\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n" + b"".join(b"H%d: %d\r\n" % (i, i) for i in range(20))
    + b"\r\n",
]
SPECIAL = b"\r\n\x00 \t:\x7f\x80\xff"


@pytest.fixture
def parser_backend() -> Iterator[str]:
    """Overrides the autouse pair: these tests call both backends themselves."""
    yield "both"


mutated = partial(mutations, SEEDS, SPECIAL, 4)


inputs = mutated() | st.binary(max_size=80) | st.lists(
    st.sampled_from([b"\r\n", b"\n", b"\r", b"GET / HTTP/1.1", b"HTTP/1.1 200 OK", b"A: b",
                     b" ", b"\t", b":", b"\x00", b"Host: x"]), max_size=12).map(b"".join)


def resumed(scan: parser.ScanHead, data: bytes, length: int, is_request: bool, max_head: int,
            max_headers: int, cut: int) -> tuple[int, list[int]]:
    """Scan as a reader would: first ``data[:cut]``, then, if that was incomplete, all of it
    with ``last_len = cut``."""
    rc, out = scan(data, cut, 0, is_request, max_head, max_headers)
    if rc != 0 or cut == length:
        return rc, out
    return scan(data, length, cut, is_request, max_head, max_headers)


common = settings(max_examples=1500, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])


@common
@given(data=inputs, is_request=st.booleans(), max_head=st.sampled_from([16384, 200, 40, 8]),
       max_headers=st.sampled_from([100, 5, 1, 0]), cut=st.floats(0, 1),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
@example(data=b"GET / HTTP/1.1\r\nA: b\r\n\r\n", is_request=True, max_head=16384,
         max_headers=100, cut=0.5, kind=bytes)
def test_pure_paths_agree(data: bytes, is_request: bool, max_head: int, max_headers: int,
                          cut: float, kind: type) -> None:
    """_pyscan's fast path against its reference path (no native scanner needed)."""
    length = len(data)
    k = int(cut * length)
    fast = resumed(pure.scan_head, kind(data), length, is_request, max_head, max_headers, k)
    ref = resumed(pure._reference, data, length, is_request, max_head, max_headers, k)
    assert fast == ref
    assert fast == pure._reference(data, length, 0, is_request, max_head, max_headers)


@pytest.mark.skipif(native_scan is None, reason="the native scanner is not built")
@common
@given(data=inputs, is_request=st.booleans(), max_head=st.sampled_from([16384, 200, 40, 8]),
       max_headers=st.sampled_from([100, 5, 1, 0]), cut=st.floats(0, 1),
       length_cut=st.floats(0.5, 1), kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_native_and_pure_agree(data: bytes, is_request: bool, max_head: int,
                               max_headers: int, cut: float, length_cut: float,
                               kind: type) -> None:
    assert native_scan is not None
    length = int(length_cut * len(data))  # bytes after `length` must be ignored by both
    k = int(cut * length)
    buf = kind(data)
    assert resumed(native_scan, buf, length, is_request, max_head, max_headers, k) == resumed(
        pure.scan_head, buf, length, is_request, max_head, max_headers, k)


@pytest.mark.skipif(native_scan is None, reason="the native scanner is not built")
@settings(max_examples=300, deadline=None)
@given(data=mutated(), is_request=st.booleans())
def test_native_and_pure_agree_byte_by_byte(data: bytes, is_request: bool) -> None:
    """A whole read loop, one byte at a time, on both backends: the same answer at each step."""
    assert native_scan is not None
    last = 0
    for length in range(1, len(data) + 1):
        a = native_scan(data, length, last, is_request, 200, 10)
        b = pure.scan_head(data, length, last, is_request, 200, 10)
        assert a == b
        if a[0] != 0:
            break
        last = length


def resumed_ids(scan_ids: parser.ScanHeadIds, data: bytes | bytearray | memoryview,
                length: int, is_request: bool, max_head: int, max_headers: int,
                cut: int) -> tuple[int, list[int], int]:
    """``resumed`` for scan_head_ids, with the spans as a list."""
    rc, out, mask = scan_ids(data, cut, 0, is_request, max_head, max_headers)
    if rc == 0 and cut != length:
        rc, out, mask = scan_ids(data, length, cut, is_request, max_head, max_headers)
    return rc, list(out), mask


@pytest.mark.skipif(native_scan is None, reason="the native scanner is not built")
@common
@given(data=inputs, is_request=st.booleans(), max_head=st.sampled_from([16384, 200, 40, 8]),
       max_headers=st.sampled_from([100, 5, 1, 0]), cut=st.floats(0, 1),
       length_cut=st.floats(0.5, 1), kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_native_and_pure_agree_with_the_id_mask(data: bytes, is_request: bool, max_head: int,
                                               max_headers: int, cut: float,
                                               length_cut: float, kind: type) -> None:
    """scan_head_ids: both backends give scan_head's answer and the same mask."""
    from pysozu import native

    length = int(length_cut * len(data))
    k = int(cut * length)
    buf = kind(data)
    got = resumed_ids(native.scan_head_ids, buf, length, is_request, max_head, max_headers, k)
    assert got == resumed_ids(pure.scan_head_ids, buf, length, is_request, max_head,
                              max_headers, k)
    assert got[:2] == resumed(pure.scan_head, buf, length, is_request, max_head, max_headers,
                              k)
    if got[0] > 0:
        assert got[2] == pure.id_mask(got[1])
    else:
        assert got[2] == 0


@common
@given(data=inputs, is_request=st.booleans(), max_head=st.sampled_from([16384, 200, 40, 8]),
       max_headers=st.sampled_from([100, 5, 1, 0]), cut=st.floats(0, 1))
def test_pure_id_mask_agrees_with_its_reference(data: bytes, is_request: bool, max_head: int,
                                                max_headers: int, cut: float) -> None:
    length = len(data)
    k = int(cut * length)
    rc, out, mask = resumed_ids(pure.scan_head_ids, data, length, is_request, max_head,
                                max_headers, k)
    assert (rc, out) == pure._reference(data, length, 0, is_request, max_head, max_headers)
    assert mask == (pure.id_mask(out) if rc > 0 else 0)
