"""``python -m pysozu.native [-v]``: build the C scanner in place and say what is in use."""

from __future__ import annotations

import argparse
import sys
import warnings

from pysozu import native


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pysozu.native",
        description="Build pysozu's C head scanner (cffi) into the installed package.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the compiler")
    args = parser.parse_args(argv)
    was_loaded = native.AVAILABLE
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = native.build(verbose=args.verbose)
    if not ok:
        reason = "; ".join(str(w.message) for w in caught) or "unknown error"
        print(f"cannot build the C scanner: {reason}", file=sys.stderr)
        print("pysozu keeps working with its pure Python parser; install a C compiler "
              "(gcc or clang) and the Python headers, then run this again.", file=sys.stderr)
        return 1
    print(f"built {native.module_path()}")
    if was_loaded:
        print("(this process had the previous build loaded; new processes load the new one)")
    if native.SIMD:
        print("SIMD: SSE4.2 path active")
    else:
        print("SIMD: not active (scalar C path: this CPU or platform has no SSE4.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
