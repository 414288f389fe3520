"""The C scanner through its wrapper (pysozu.native.scan_head), on both C paths.

Checked against parser/SCANNER.md: the spans of valid heads (built piece by piece in
``corpus``), the code and offset of each error kind, incomplete heads, independence from
``last_len``, every buffer type, and (Hypothesis) the SSE4.2 and scalar paths against each
other and against ``model``, a literal step-by-step reading of the contract.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysozu import native
from tests.native import corpus, model

pytestmark = pytest.mark.skipif(
    not native.AVAILABLE, reason="pysozu.native is not built (no C compiler at install time)"
)

MAX_HEAD = corpus.MAX_HEAD
MAX_HEADERS = corpus.MAX_HEADERS
VALID = corpus.valid_heads()
INVALID = corpus.invalid_heads()
SIMD_PATHS = ["simd", "scalar"]


@pytest.fixture(params=SIMD_PATHS)
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on the SSE4.2 path (skipped where the CPU has none) and the scalar one."""
    native.force_scalar(request.param == "scalar")
    try:
        if request.param == "simd" and not native.SIMD:
            pytest.skip("this CPU has no SSE4.2: only the scalar path runs")
        yield str(request.param)
    finally:
        native.force_scalar(False)


def scan(data: bytes | bytearray | memoryview, length: int | None = None, last_len: int = 0,
         is_request: bool = True, max_head: int = MAX_HEAD,
         max_headers: int = MAX_HEADERS) -> tuple[int, list[int]]:
    return native.scan_head(data, len(data) if length is None else length, last_len,
                            is_request, max_head, max_headers)


def both_paths(*args: object) -> tuple[int, list[int]]:
    """The result of a scan on the SIMD path, asserted equal to the scalar path's."""
    try:
        native.force_scalar(False)
        fast = native.scan_head(*args)  # type: ignore[arg-type]
        native.force_scalar(True)
        slow = native.scan_head(*args)  # type: ignore[arg-type]
    finally:
        native.force_scalar(False)
    assert fast == slow, args
    return fast


# ---- spans of valid heads ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "head"), VALID, ids=[name for name, _ in VALID])
def test_valid_head_spans(path, name, head):
    data = bytes(head.data)
    assert scan(data, is_request=head.is_request) == head.expected
    assert model.scan_head(data, len(data), 0, head.is_request, MAX_HEAD,
                           MAX_HEADERS) == head.expected


def test_spans_point_at_the_right_bytes():
    head = dict(VALID)["browser-14"]
    data = bytes(head.data)
    rc, out = scan(data)
    assert rc == len(data)
    assert data[out[1]:out[2]] == b"GET"
    assert data[out[3]:out[4]] == b"/catalog/items/42?ref=home"
    headers = [(data[out[i + 1]:out[i + 2]], data[out[i + 3]:out[i + 4]])
               for i in range(8, 8 + 5 * out[6], 5)]
    assert headers == [(name, value) for name, _, value, _ in corpus.BROWSER]
    assert out[8] == 4  # Host


def test_bytes_after_the_head_are_not_part_of_it(path):
    head = dict(VALID)["browser-14"]
    data = bytes(head.data)
    for tail in (b"body", b"\x00\xff" * 40, b"\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"):
        assert scan(data + tail) == head.expected


def test_head_exactly_max_head_is_accepted(path):
    data = bytes(dict(VALID)["browser-14"].data)
    assert scan(data, max_head=len(data))[0] == len(data)
    assert scan(data, max_head=len(data) - 1) == (-corpus.HEAD_TOO_LARGE, [len(data) - 1])


def test_max_headers_exactly_reached(path):
    data = bytes(dict(VALID)["browser-14"].data)
    rc, out = scan(data, max_headers=14)
    assert rc == len(data) and out[6] == 14
    assert scan(data, max_headers=13)[0] == -corpus.TOO_MANY_HEADERS


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INVALID, ids=[case[0] for case in INVALID])
def test_error_code_and_offset(path, case):
    _, data, is_request, max_head, max_headers, code, offset = case
    expected = (-code, [offset])
    assert scan(data, is_request=is_request, max_head=max_head,
                max_headers=max_headers) == expected
    assert model.scan_head(data, len(data), 0, is_request, max_head, max_headers) == expected


def test_every_error_code_is_covered():
    assert {case[5] for case in INVALID} == set(range(1, 16))


@pytest.mark.parametrize("case", corpus.INCOMPLETE, ids=[c[0] for c in corpus.INCOMPLETE])
def test_incomplete(path, case):
    _, data, is_request = case
    assert scan(data, is_request=is_request) == (0, [])


def test_every_strict_prefix_of_a_valid_head_is_incomplete(path):
    for _, head in VALID:
        data = bytes(head.data)
        for n in range(len(data)):
            assert scan(data, n, is_request=head.is_request) == (0, []), (data, n)


# ---- last_len -----------------------------------------------------------------------------


def _all_cases() -> list[tuple[str, bytes, bool, int, int]]:
    return corpus.corpus()


def test_last_len_split_at_every_offset(path):
    """Scan a prefix; if incomplete, resume on the whole with last_len = the prefix length."""
    for _, data, is_request, max_head, max_headers in _all_cases():
        if len(data) > 600:
            data = data[:600]
        whole = scan(data, is_request=is_request, max_head=max_head, max_headers=max_headers)
        for k in range(len(data)):
            first = scan(data, k, is_request=is_request, max_head=max_head,
                         max_headers=max_headers)
            if first[0] != 0:
                continue
            again = scan(data, last_len=k, is_request=is_request, max_head=max_head,
                         max_headers=max_headers)
            assert again == whole, (data, k)


def test_last_len_byte_by_byte(path):
    """Feed one byte at a time, resuming from the previous incomplete length each time."""
    for _, data, is_request, max_head, max_headers in _all_cases():
        data = data[:1200]
        last = 0
        for n in range(len(data) + 1):
            got = scan(data, n, last, is_request, max_head, max_headers)
            assert got == scan(data, n, 0, is_request, max_head, max_headers), (data, n, last)
            if got[0] != 0:
                break
            last = n


def test_last_len_past_length_reads_nothing_beyond(path):
    data = bytearray(b"GET / HTTP/1.1\r\nHost: a\r\n")
    # a caller that breaks the promise gets "not found", never an over-read
    assert scan(data, last_len=10_000) == (0, [])


# ---- buffer types ---------------------------------------------------------------------------


def test_buffer_types(path):
    head = dict(VALID)["browser-14"]
    data = bytes(head.data)
    expected = head.expected
    assert scan(data) == expected
    assert scan(bytearray(data)) == expected
    assert scan(memoryview(data)) == expected
    assert scan(memoryview(bytearray(data))) == expected
    # a slice: spans are relative to the slice's first byte
    padded = b"xxxx" + data + b"yyyy"
    assert scan(memoryview(padded)[4:4 + len(data)]) == expected
    assert scan(memoryview(bytearray(padded))[4:]) == expected
    # only buf[0:length] is read
    pool = bytearray(data + b"\x00" * 4096)
    assert scan(pool, len(data)) == expected
    assert scan(memoryview(pool), len(data)) == expected
    assert scan(pool, len(data) - 1) == (0, [])


def test_length_past_the_buffer_is_refused():
    with pytest.raises(ValueError):
        scan(b"GET / HTTP/1.1\r\n\r\n", 100)
    with pytest.raises(ValueError):
        scan(memoryview(b"xxGET / HTTP/1.1\r\n\r\n")[2:], 19)


def test_bytearray_can_grow_after_a_scan():
    """The wrapper does not keep the buffer exported after the call."""
    buf = bytearray(b"GET / HTTP/1.1\r\n")
    assert scan(buf) == (0, [])
    buf += b"Host: a\r\n\r\n"
    assert scan(buf, last_len=16)[0] == len(buf)


def test_max_headers_values_share_nothing():
    data = bytes(dict(VALID)["browser-14"].data)
    small = scan(data, max_headers=14)
    large = scan(data, max_headers=1000)
    assert small == large
    assert scan(data, max_headers=0) == (-corpus.TOO_MANY_HEADERS, [data.index(b"Host")])
    assert scan(data, max_headers=-1) == (-corpus.TOO_MANY_HEADERS, [data.index(b"Host")])


def test_threads_get_their_own_out_arrays():
    import threading

    heads = [bytes(head.data) for _, head in VALID if head.is_request]
    expected = [scan(data) for data in heads]
    errors: list[object] = []

    def work() -> None:
        for _ in range(200):
            for data, want in zip(heads, expected, strict=True):
                got = scan(data)
                if got != want:
                    errors.append((data, got, want))
                    return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---- SIMD against scalar, and both against the model (Hypothesis) ----------------------------

# Each template has one slot, placed 20 bytes into a long token so that the SSE4.2 path
# (16-byte blocks) meets the byte inside a block, and again at the first byte of the token.
SLOTS = [
    (True, b"GETGETGETGETGETGETGE%sT / HTTP/1.1\r\n\r\n"),
    (True, b"GET /aaaaaaaaaaaaaaaaaaa%sb HTTP/1.1\r\n\r\n"),
    (True, b"GET / HTTP/1.1\r\nNnnnnnnnnnnnnnnnnnnn%sn: v\r\n\r\n"),
    (True, b"GET / HTTP/1.1\r\nN: vvvvvvvvvvvvvvvvvvvv%sv\r\n\r\n"),
    (False, b"HTTP/1.1 200 rrrrrrrrrrrrrrrrrrrrrrr%sr\r\n\r\n"),
    (True, b"%sGET / HTTP/1.1\r\n\r\n"),
    (True, b"GET / HTTP/1.1\r\n%sN: v\r\n\r\n"),
    (True, b"GET / HTTP/1.1\r\nN: %sv\r\n\r\n"),
]


@pytest.mark.parametrize(("is_request", "template"), SLOTS)
def test_every_byte_in_every_class(is_request, template):
    for byte in range(256):
        data = template % bytes([byte])
        args = (data, len(data), 0, is_request, MAX_HEAD, MAX_HEADERS)
        assert both_paths(*args) == model.scan_head(*args), (data, byte)

TOKENS = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b"GET", b"HTTP/1.1", b"HTTP/1.0",
          b"HTTP/2.0", b"/", b"Host", b"200", b"OK", b"\x00", b"\x7f", b"\x80", b"\xff", b"|",
          b"~", b"{", b"x" * 17, b"\r\n\r\n", b"1", b"0", b"Content-Length", b"a-b"]


@st.composite
def heads(draw: st.DrawFn) -> tuple[bytes, bool]:
    is_request = draw(st.booleans())
    if draw(st.booleans()):
        data = b"".join(draw(st.lists(st.sampled_from(TOKENS), max_size=40)))
    else:
        start = b"GET /p HTTP/1.1\r\n" if is_request else b"HTTP/1.1 200 OK\r\n"
        lines = draw(st.lists(st.tuples(
            st.binary(min_size=1, max_size=24).map(lambda b: bytes(c % 26 + 97 for c in b)),
            st.binary(max_size=48).map(lambda b: bytes(c % 95 + 32 for c in b))), max_size=8))
        data = bytearray(start + b"".join(b"%s: %s\r\n" % line for line in lines) + b"\r\n")
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data[at:at + 1] = draw(st.sampled_from(TOKENS))
        data = bytes(data)
    return data, is_request


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads(), st.sampled_from([MAX_HEAD, 8, 40, 100]), st.sampled_from([100, 0, 1, 3]))
def test_simd_scalar_and_model_agree(case, max_head, max_headers):
    data, is_request = case
    args = (data, len(data), 0, is_request, max_head, max_headers)
    assert both_paths(*args) == model.scan_head(*args)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans(), st.sampled_from([MAX_HEAD, 30]))
def test_random_bytes_agree(data, is_request, max_head):
    args = (data, len(data), 0, is_request, max_head, 5)
    assert both_paths(*args) == model.scan_head(*args)


@settings(max_examples=200, deadline=None)
@given(heads(), st.data())
def test_resume_agrees(case, data_strategy):
    data, is_request = case
    cut = data_strategy.draw(st.integers(0, len(data)))
    first = both_paths(data, cut, 0, is_request, MAX_HEAD, 10)
    if first[0] == 0:
        assert both_paths(data, len(data), cut, is_request, MAX_HEAD, 10) == \
            model.scan_head(data, len(data), 0, is_request, MAX_HEAD, 10)


# ---- build and module ------------------------------------------------------------------------


def test_simd_flag_reflects_the_path():
    native.force_scalar(True)
    try:
        assert native.SIMD is False
    finally:
        native.force_scalar(False)
    in_use = bool(native._lib.pysozu_scanner_simd())
    assert in_use == native.SIMD


def test_build_without_a_compiler_warns_and_returns_false(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert native.build() is False
    assert any("could not build" in str(w.message) for w in caught)
    assert native.AVAILABLE  # the loaded module stays


def test_main_without_a_compiler_exits_1():
    env = dict(os.environ, CC="/nonexistent/cc")
    result = subprocess.run([sys.executable, "-m", "pysozu.native"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "cannot build the C scanner" in result.stderr


# ---- scan_head_ids: the id mask ------------------------------------------------------------


def model_mask(rc: int, out: list[int]) -> int:
    """SCANNER.md's id mask, from the records."""
    if rc <= 0:
        return 0
    ids = out[8:8 + 5 * out[6]:5]
    mask = 0
    for hid in ids:
        mask |= 1 << hid
    for hid in range(1, 7):
        if ids.count(hid) > 1:
            mask |= 1 << (18 + hid)
    return mask


def scan_ids(*args: object) -> tuple[int, list[int], int]:
    rc, out, mask = native.scan_head_ids(*args)  # type: ignore[arg-type]
    return rc, list(out), mask


def test_scan_head_ids_on_every_prefix_and_resume(path):
    """On each C path: scan_head's answer and the model's mask, for every prefix of every
    corpus head and every resume from an incomplete prefix."""
    for _, data, is_request, max_head, max_headers in corpus.corpus():
        data = data[:700]
        last = 0
        for n in range(len(data) + 1):
            for last_len in {0, last}:
                args = (data, n, last_len, is_request, max_head, max_headers)
                rc, out, mask = scan_ids(*args)
                assert (rc, out) == native.scan_head(*args)
                assert mask == model_mask(rc, out), (data, n, last_len)
            if rc == 0:
                last = n


def test_scan_head_ids_mask_values(path):
    data = b"GET / HTTP/1.1\r\nHost: a\r\nAccept: b\r\nCookie: c\r\nhost: d\r\n\r\n"
    assert scan_ids(data, len(data), 0, True, MAX_HEAD, MAX_HEADERS)[2] == (
        1 << 0 | 1 << 4 | 1 << 7 | 1 << 22)
    for name, hid in corpus.IDS.items():
        data = b"HTTP/1.1 200 OK\r\n%s: 1\r\nX: 2\r\n%s: 3\r\n\r\n" % (name, name.upper())
        want = 1 | 1 << hid | (1 << (18 + hid) if hid <= 6 else 0)
        assert scan_ids(data, len(data), 0, False, MAX_HEAD, MAX_HEADERS)[2] == want


def test_scan_head_ids_buffer_types_and_limits(path):
    data = bytes(dict(VALID)["browser-14"].data)
    want = scan_ids(data, len(data), 0, True, MAX_HEAD, MAX_HEADERS)
    assert want[2] == model_mask(want[0], want[1]) != 0
    for buf in (bytearray(data), memoryview(data), memoryview(bytearray(data + b"xyz"))):
        assert scan_ids(buf, len(data), 0, True, MAX_HEAD, MAX_HEADERS) == want
    # the out array holds the mask just past the last record: exactly max_headers records
    # still leave it room, and a huge max_headers is bounded by max_head
    assert scan_ids(data, len(data), 0, True, MAX_HEAD, 14) == want
    assert scan_ids(data, len(data), 0, True, len(data), 10**9) == want
    assert scan_ids(data, len(data), 0, True, MAX_HEAD, 13)[2] == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads(), st.sampled_from([MAX_HEAD, 8, 40, 100]), st.sampled_from([100, 0, 1, 3]))
def test_scan_head_ids_simd_scalar_and_model_agree(case, max_head, max_headers):
    data, is_request = case
    args = (data, len(data), 0, is_request, max_head, max_headers)
    try:
        native.force_scalar(False)
        fast = scan_ids(*args)
        native.force_scalar(True)
        slow = scan_ids(*args)
    finally:
        native.force_scalar(False)
    assert fast == slow
    expected = model.scan_head(*args)
    assert fast[:2] == expected
    assert fast[2] == model_mask(*expected)


# ---- the SIMD end-of-head search at every alignment ------------------------------------------


@pytest.mark.parametrize("ending", [b"\r\n\r\n", b"\n\n", b"\r\n\n", b"\n\r\n", b"\r\n\r\r\n"])
def test_end_of_head_at_every_alignment(path, ending):
    """The end ('\\n' then '\\n' or '\\r\\n') at each position of a 16-byte block, with the
    buffer ending right after it or a few bytes later (the three shifted loads must stay
    inside it): both paths and the model agree."""
    for pad in range(40):
        data = b"GET / HTTP/1.1\r\nX: " + b"a" * pad + ending
        for extra in (b"", b"\r", b"\n", b"\r\n", b"xyz", b"\r\n\r\n" * 5):
            full = data + extra
            for length in range(max(len(full) - 20, 0), len(full) + 1):
                args = (full, length, 0, True, MAX_HEAD, MAX_HEADERS)
                assert both_paths(*args) == model.scan_head(*args), (full, length)
