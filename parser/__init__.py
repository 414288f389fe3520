"""HTTP/1.x parsing, pure: bytes in, heads, spans and body bytes out.

No sockets, no clock, no logging: the proxy feeds bytes it received and acts on what comes
back (h11's sans-IO rule). ``h1`` holds the semantic layer (framing, Host, persistence,
chunked bodies, serializers); underneath, ``scan_head`` finds and checks a head and returns
spans, with two implementations that ``SCANNER.md`` binds byte for byte:

* ``"native"``: ``pysozu.native.scan_head``, C with an SSE4.2 path, when it is built;
* ``"python"``: ``pysozu.parser._pyscan.scan_head``, always there.

The native one is used when it is available, unless ``PYSOZU_PURE_PYTHON`` is set to
anything but ``""`` or ``"0"``. ``BACKEND`` names the active one; ``set_backend`` switches
(tests run every parser test on both).
"""

from __future__ import annotations

import os

from . import _pyscan, h1
from ._pyscan import HEADER_IDS
from .errors import ParseError
from .h1 import (
    DEFAULT_LIMITS,
    LAST_CHUNK,
    BodyKind,
    Buffer,
    ChunkedDecoder,
    LengthBody,
    Limits,
    RequestHead,
    ResponseHead,
    ScanHead,
    ScanHeadIds,
    SimpleResponse,
    TargetForm,
    parse_request_head,
    parse_response_head,
    serialize_chunk,
    serialize_last_chunk,
    serialize_request_head,
    serialize_response_head,
    simple_response_head,
)

__all__ = [
    "BACKEND",
    "DEFAULT_LIMITS",
    "HEADER_IDS",
    "LAST_CHUNK",
    "NATIVE_AVAILABLE",
    "BodyKind",
    "ChunkedDecoder",
    "LengthBody",
    "Limits",
    "ParseError",
    "RequestHead",
    "ResponseHead",
    "TargetForm",
    "parse_request_head",
    "parse_response_head",
    "pure_scan_head",
    "scan_head",
    "serialize_chunk",
    "serialize_last_chunk",
    "serialize_request_head",
    "serialize_response_head",
    "set_backend",
    "simple_response_head",
]

pure_scan_head: ScanHead = _pyscan.scan_head


def _load_native() -> tuple[ScanHead, ScanHeadIds, SimpleResponse] | None:
    """The native scanner's three entry points if it was built and loads, else None (never
    an error: the pure backend gives the same results, only slower)."""
    try:
        from pysozu import native
    except ImportError:
        return None
    if not getattr(native, "AVAILABLE", False):
        return None
    scan: ScanHead | None = getattr(native, "scan_head", None)
    scan_ids: ScanHeadIds | None = getattr(native, "scan_head_ids", None)
    simple: SimpleResponse | None = getattr(native, "simple_response", None)
    if scan is None or scan_ids is None or simple is None:
        return None
    return scan, scan_ids, simple


_native = _load_native()
_native_scan: ScanHead | None = _native[0] if _native is not None else None
NATIVE_AVAILABLE: bool = _native is not None
BACKEND: str = "python"


def set_backend(name: str) -> None:
    """Make ``name`` (``"native"`` or ``"python"``) the scanner of every parse.

    Raises:
        RuntimeError: ``"native"`` was asked for but is not available.
        ValueError: an unknown name.
    """
    global BACKEND
    if name == "native":
        if _native is None:
            raise RuntimeError("the native scanner is not available (python -m pysozu.native)")
        h1._set_scanner(*_native)
    elif name == "python":
        h1._set_scanner(_pyscan.scan_head, _pyscan.scan_head_ids, h1.pure_simple_response)
    else:
        raise ValueError(f"unknown parser backend {name!r} (native or python)")
    BACKEND = name


def scan_head(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int]]:
    """The active backend's ``scan_head`` (SCANNER.md)."""
    return h1._scan(buf, length, last_len, is_request, max_head, max_headers)


set_backend(
    "python" if os.environ.get("PYSOZU_PURE_PYTHON", "") not in ("", "0") or _native_scan is None
    else "native"
)
