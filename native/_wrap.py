"""The Python side of the C scanner's two entry points (see ``pysozu.native``): made once
per process over the cffi module, called twice per proxied request. A module of its own so
that the compiled build (``pysozu.compiled``) can include it."""

from __future__ import annotations

import array
import threading
from collections.abc import Callable
from typing import Any

Buffer = bytes | bytearray | memoryview
ScanHead = Callable[[Buffer, int, int, bool, int, int], tuple[int, list[int]]]
ScanHeadIds = Callable[[Buffer, int, int, bool, int, int], tuple[int, list[int], int]]
SimpleResponse = Callable[[Buffer, int, int, int], tuple[int, int, int, int, int] | None]


def make_scan_head(ffi: Any, lib: Any) -> tuple[ScanHead, ScanHeadIds, SimpleResponse]:
    """SCANNER.md's ``scan_head``, ``scan_head_ids`` and ``simple_response`` over the
    compiled module."""
    scan = lib.pysozu_scan_head
    scan_ids = lib.pysozu_scan_head_ids
    simple = lib.pysozu_simple_response
    from_buffer = ffi.from_buffer
    local = threading.local()
    if array.array("i").itemsize != 4:  # pragma: no cover - no such platform in sight
        raise ImportError("pysozu.native needs a 4-byte C int")

    def out_for(max_headers: int) -> tuple[array.array[int], Any]:
        outs: dict[int, tuple[array.array[int], Any]] | None = getattr(local, "outs", None)
        if outs is None:
            outs = local.outs = {}
        if len(outs) >= 16:  # bounded: callers use one or two limits
            outs.clear()
        # 9 + 5 * max_headers: room for scan_head_ids' mask after the last record
        arr = array.array("i", bytes(4 * (9 + 5 * max(max_headers, 0))))
        pair = outs[max_headers] = (arr, from_buffer("int32_t[]", arr))
        return pair

    def prepare(buf: Buffer, length: int, max_head: int,
                max_headers: int) -> tuple[array.array[int], Any, Any]:
        """This thread's output array for the limits (``local.outs``, made on first use),
        its C view, and ``buf`` as the C functions take it."""
        if type(buf) is not bytes:
            buf = from_buffer(buf)
        if length > len(buf):
            raise ValueError("scan_head: length %d is past the buffer's %d bytes"
                             % (length, len(buf)))
        # A header line takes at least 4 bytes ("a:\r\n") and a valid head at most max_head,
        # so no more slots than that can be written, whatever max_headers says.
        slots = max_headers if max_headers < 4096 else min(max_headers, max_head // 4 + 2)
        try:
            arr, out = local.outs[slots]
        except (AttributeError, KeyError):
            arr, out = out_for(slots)
        return arr, out, buf

    def scan_head(
        buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int,
        max_headers: int,
    ) -> tuple[int, list[int]]:
        arr, out, cbuf = prepare(buf, length, max_head, max_headers)
        rc: int = scan(cbuf, length, last_len, is_request, max_head, max_headers, out)
        if rc > 0:
            return rc, arr[:8 + 5 * arr[6]].tolist()
        if rc == 0:
            return 0, []
        return rc, [arr[0]]

    def scan_head_ids(
        buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int,
        max_headers: int,
    ) -> tuple[int, list[int], int]:
        arr, out, cbuf = prepare(buf, length, max_head, max_headers)
        rc: int = scan_ids(cbuf, length, last_len, is_request, max_head, max_headers, out)
        if rc > 0:
            # a list, not an array slice: compiled callers index a list natively
            k = 8 + 5 * arr[6]
            return rc, arr[:k].tolist(), arr[k]
        if rc == 0:
            return 0, [], 0
        return rc, [arr[0]], 0

    def simple_response(
        buf: Buffer, length: int, max_head: int, max_headers: int
    ) -> tuple[int, int, int, int, int] | None:
        """``h1.simple_response_head`` in one C call (SCANNER.md, "The simple response")."""
        arr, out, cbuf = prepare(buf, length, max_head, max_headers)
        content_length: int = simple(cbuf, length, max_head, max_headers, out)
        if content_length < 0:
            return None
        return arr[0], arr[1], content_length, arr[2], arr[3]

    return scan_head, scan_head_ids, simple_response
