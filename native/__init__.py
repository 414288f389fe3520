"""The optional C head scanner behind ``pysozu.parser`` (cffi, API mode).

``scan_head`` is the function of ``parser/SCANNER.md`` (the contract it shares with the pure
Python scanner, byte for byte); the C lives in ``scanner.c``: 16-byte SIMD compares and
nibble lookups where the CPU has SSE4.2 (``SIMD``), a scalar loop with lookup tables
elsewhere.

* ``AVAILABLE``: the compiled module ``pysozu.native._scanner`` could be imported.
* ``SIMD``: the SSE4.2 path is in use.
* ``build(verbose=False)``: compile the module in place (next to this file); False, with a
  warning, when there is no compiler or cffi fails. ``python -m pysozu.native`` does the same.
* ``force_scalar(True)``: run the scalar path even where SSE4.2 is there (tests).
* ``scan_head_ids``: what ``pysozu.parser.h1`` calls: ``scan_head``'s answer and the mask
  of the header ids present (SCANNER.md, "The id mask").
* ``simple_response``: ``h1.simple_response_head`` (the proxies' fast path for the usual
  response) in one C call: the scan, and the checks of its few fields, with no span
  returned to Python.

The module is built at install time when a C compiler is there (``setup.py``); without one
the install still succeeds and ``AVAILABLE`` is False.

The per-call cost is on the hot path: ``scan_head`` is a closure over local bindings, the
``out`` array is an ``array('i')`` (its ``tolist`` is much cheaper than ``ffi.unpack``)
cached per thread and per ``max_headers`` (cffi releases the GIL during the C call, so
threads cannot share one), and ``bytes`` go to C without ``ffi.from_buffer``. Even
``tolist`` makes one Python int per span; small ones are shared, and compiled code then
indexes the list natively (an array would cost a generic call per read).
"""

from __future__ import annotations

import importlib
import os
import warnings
from importlib import util
from typing import Any

from ._wrap import Buffer, ScanHead, ScanHeadIds, SimpleResponse

__all__ = ["AVAILABLE", "SIMD", "build", "force_scalar", "scan_head", "scan_head_ids",
           "simple_response"]


_HERE = os.path.dirname(os.path.abspath(__file__))

AVAILABLE: bool = False
SIMD: bool = False
_lib: Any = None


def _unavailable(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int]]:
    raise RuntimeError(
        "pysozu.native is not built (no C compiler at install time?): "
        "run 'python -m pysozu.native', or use the pure backend"
    )


def _unavailable_ids(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int], int]:
    _unavailable(buf, length, last_len, is_request, max_head, max_headers)
    raise AssertionError("unreachable")  # pragma: no cover


def _unavailable_simple(
    buf: Buffer, length: int, max_head: int, max_headers: int
) -> tuple[int, int, int, int, int] | None:
    _unavailable(buf, length, 0, False, max_head, max_headers)
    raise AssertionError("unreachable")  # pragma: no cover


scan_head: ScanHead = _unavailable
scan_head_ids: ScanHeadIds = _unavailable_ids
simple_response: SimpleResponse = _unavailable_simple


def _load() -> bool:
    """Import the compiled module and bind the globals; False when it is not there."""
    global AVAILABLE, SIMD, _lib, scan_head, scan_head_ids, simple_response
    try:
        module: Any = importlib.import_module("pysozu.native._scanner")
    except ImportError:
        return False
    try:
        # the wrapper is a module of its own so that the compiled build (pysozu.compiled)
        # can include it: it runs twice per proxied request
        from pysozu.native._wrap import make_scan_head

        scan_head, scan_head_ids, simple_response = make_scan_head(module.ffi, module.lib)
    except AttributeError:  # a module built from older sources: rebuild it
        return False
    _lib = module.lib
    SIMD = bool(_lib.pysozu_scanner_simd())
    AVAILABLE = True
    return True


def force_scalar(on: bool) -> None:
    """Use the scalar C path (``True``) or the CPU's best (``False``); updates ``SIMD``."""
    global SIMD
    if _lib is None:
        raise RuntimeError("pysozu.native is not built")
    _lib.pysozu_scanner_force_scalar(1 if on else 0)
    SIMD = bool(_lib.pysozu_scanner_simd())


def module_path() -> str | None:
    """Where the compiled module is, if it is importable."""
    spec = util.find_spec("pysozu.native._scanner")
    return spec.origin if spec is not None else None


def build(verbose: bool = False) -> bool:
    """Compile ``_scanner`` into this package's folder and load it; False (with a warning,
    never an exception) when that fails: no C compiler, no cffi, or a build error."""
    try:
        spec = util.spec_from_file_location("_pysozu_native_build", os.path.join(_HERE, "build.py"))
        if spec is None or spec.loader is None:
            raise ImportError("native/build.py is missing")
        builder: Any = util.module_from_spec(spec)
        spec.loader.exec_module(builder)
        builder.build_inplace(verbose=verbose)
    except Exception as exc:  # CompileError, LinkError, VerificationError, ImportError...
        warnings.warn(f"pysozu.native: could not build the C scanner: {exc}",
                      RuntimeWarning, stacklevel=2)
        return False
    importlib.invalidate_caches()
    if AVAILABLE:
        return True  # already loaded: the process keeps the module it has
    if not _load():
        warnings.warn("pysozu.native: the C scanner was built but cannot be imported",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


_load()
