"""``python -m pysozu.native [-v] [--compile]``: build the C scanner in place (and, with
``--compile``, the mypyc build of the hot modules: ``pysozu.compiled``) and say what
is in use."""

from __future__ import annotations

import argparse
import sys
import warnings

from pysozu import compiled, native


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pysozu.native",
        description="Build pysozu's C head scanner (cffi) into the installed package.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the compiler")
    parser.add_argument("--compile", action="store_true",
                        help="also compile the hot modules with mypyc (needs mypy installed)")
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
    if args.compile:
        try:
            out = compiled.build(verbose=args.verbose)
        except compiled.BuildError as e:
            print(f"cannot compile the hot modules: {e}", file=sys.stderr)
            print("pysozu keeps working with their Python sources.", file=sys.stderr)
            return 1
        print(f"compiled {len(compiled.MODULES)} modules into {out}: new processes load them "
              "(PYSOZU_COMPILED=0 turns them off)")
    elif compiled.ACTIVE:
        print(f"compiled modules in use: {len(compiled.ACTIVE)}")
    else:
        print(f"compiled modules: not in use ({compiled.REASON})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
