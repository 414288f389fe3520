"""The cffi (API mode) builder of ``pysozu.native._scanner``.

Used three ways: by ``setup.py`` at install time, by ``pysozu.native.build()`` /
``python -m pysozu.native`` on demand, and directly::

    python native/build.py        # writes native/_scanner.<abi>.so (build_inplace)

No -march=native: the SSE4.2 functions carry their own target attribute and are chosen at
run time, so the module runs on any x86-64 (and builds scalar-only elsewhere).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "pysozu.native._scanner"
SOURCES = ["scanner.c"]
DEPENDS = ["scanner.c", "scanner.h", "scan_body.h"]
CFLAGS = ["-O3", "-std=gnu99", "-fvisibility=hidden", "-Wall"]

CDEF = """
int pysozu_scan_head(const unsigned char *buf, size_t length, size_t last_len,
                     int is_request, size_t max_head, int max_headers, int32_t *out);
int pysozu_scan_head_ids(const unsigned char *buf, size_t length, size_t last_len,
                         int is_request, size_t max_head, int max_headers, int32_t *out);
int64_t pysozu_simple_response(const unsigned char *buf, size_t length, size_t max_head,
                               int max_headers, int32_t *out);
int pysozu_scanner_simd(void);
void pysozu_scanner_force_scalar(int force);
"""


def make_builder(base: str = HERE) -> FFI:
    """The builder, with source paths under ``base`` (relative paths suit setuptools, whose
    object files then land in build/temp.*/native/; absolute ones suit ``FFI.compile``)."""
    builder = FFI()
    builder.cdef(CDEF)
    builder.set_source(
        MODULE,
        '#include "scanner.h"\n',
        sources=[os.path.join(base, name) for name in SOURCES],
        depends=[os.path.join(base, name) for name in DEPENDS],
        include_dirs=[base],
        extra_compile_args=CFLAGS,
    )
    return builder


def build_inplace(verbose: bool = False) -> str:
    """Compile the module in a temporary folder and move it next to this file (the
    ``pysozu.native`` package folder); the path of the module. Raises on any failure."""
    with tempfile.TemporaryDirectory(prefix="pysozu-native-") as tmp:
        built = make_builder().compile(tmpdir=tmp, verbose=verbose)
        dest = os.path.join(HERE, os.path.basename(built))
        # Copy then rename: a process that has the old module loaded keeps its mapping.
        partial = dest + ".partial"
        try:
            shutil.copyfile(built, partial)
            os.replace(partial, dest)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return dest


ffibuilder = make_builder()

if __name__ == "__main__":
    print(build_inplace(verbose=True))
