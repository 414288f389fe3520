"""The optional C scanner (pysozu.native._scanner); setup.cfg holds everything else.

``pip install .`` and ``pip install -e .`` compile native/scanner.c through cffi (API mode)
when a C compiler is there. Without one, or when the build fails for any other reason, the
install goes on without the module: a warning is printed, ``pysozu.native.AVAILABLE`` is
False and the parser uses its pure Python backend. ``python -m pysozu.native`` builds it
later.
"""

from __future__ import annotations

import os
import sys
from importlib import util
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "pysozu.native._scanner"


def _native_build() -> Any:
    """native/build.py as a module (it imports cffi)."""
    path = os.path.join(HERE, "native", "build.py")
    spec = util.spec_from_file_location("_pysozu_native_build", path)
    if spec is None or spec.loader is None:
        raise ImportError("native/build.py is missing")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class optional_build_ext(build_ext):
    """build_ext that generates the cffi C file first and never fails the install."""

    def run(self) -> None:
        try:
            self._generate()
            super().run()
        except Exception as exc:  # no compiler, no cffi, a compile error...
            self._give_up(exc)

    def _generate(self) -> None:
        native = _native_build()
        for ext in self.extensions:
            if ext.name != MODULE:
                continue
            os.makedirs(self.build_temp, exist_ok=True)
            c_file = os.path.join(self.build_temp, "_scanner_cffi.c")
            native.make_builder(base="native").emit_c_code(c_file)
            ext.sources = [c_file] + [os.path.join("native", s) for s in native.SOURCES]
            ext.depends = [os.path.join("native", s) for s in native.DEPENDS]
            ext.include_dirs = ["native"]
            ext.extra_compile_args = list(native.CFLAGS)

    def _give_up(self, exc: BaseException) -> None:
        print(
            f"\nWARNING: pysozu's optional C scanner was not built ({exc}).\n"
            "pysozu works without it (pure Python parser); build it later with "
            "'python -m pysozu.native'.\n",
            file=sys.stderr,
        )
        # Nothing to copy or to put in the wheel.
        self.extensions = []
        self.distribution.ext_modules = []

    def get_outputs(self) -> list[str]:
        return [path for path in super().get_outputs() if os.path.exists(path)]

    def get_output_mapping(self) -> dict[str, str]:
        mapping: dict[str, str] = super().get_output_mapping()
        return {dest: src for dest, src in mapping.items() if os.path.exists(src)}


setup(
    ext_modules=[Extension(MODULE, sources=["native/scanner.c"])],
    cmdclass={"build_ext": optional_build_ext},
)
