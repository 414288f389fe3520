"""The optional compiled build of pysozu's hot modules (mypyc), and the import hook that
loads it in place of their sources.

Why: a proxied keep-alive request runs a few thousand Python bytecodes in the reactor, the
HTTP machine and the parser, and on the loopback benchmark most of pysozu's CPU time is that
interpretation (``benchmarks/http_bytecodes.py``), spread thin over hundreds of lines that
each do something needed. mypyc compiles the same typed sources to C: attribute reads on
slotted classes become struct reads, calls between compiled functions become C calls. On the
wrk benchmark it cut the user CPU per request by about 40 %. The sources stay the reference
and the fallback: nothing here changes what pysozu does, only how fast the interpreter does it.

Theory of operation
-------------------
* ``build()`` (``python -m pysozu.native --compile``) copies the package's sources into a
  temporary tree laid out as the installed package, compiles ``MODULES`` there with mypyc
  (one shared library for the group ``GROUP`` and a small extension per module) and puts the
  results in ``pysozu/_compiled/`` with ``manifest.json``: each module's extension file and
  the SHA-256 of the source it was compiled from, and the interpreter's ABI tag.
* ``install()``, called by ``pysozu/__init__`` before any other module of the package is
  imported (this module imports nothing of pysozu, so every compiled module, the native
  scanner's wrapper included, is still to come), puts a finder in front of
  ``sys.meta_path`` that loads those extensions for the names in the manifest. It does so
  only when every listed source still has its hash, the ABI tag matches and neither
  ``PYSOZU_PURE_PYTHON=1`` nor ``PYSOZU_COMPILED=0`` is set (``PYSOZU_COMPILED=<folder>``
  loads a build made elsewhere with ``build(<folder>)``).
  All or nothing: compiled modules of one group call each other directly in C, so a stale
  one cannot be mixed with fresh sources. An edited source therefore turns the whole build
  off, with a warning, instead of running code that is not the source's.
* ``ACTIVE`` names the compiled modules in use (empty: pure Python), ``REASON`` why the
  build is not in use.

What compiled code changes for a reader of the sources: classes the other modules (and
users) subclass carry ``@mypyc_attr(allow_interpreted_subclasses=True)``; class-level
constants meant to be read or switched on the class are ``ClassVar``; a parameter annotated
with a class is checked at run time, so duck-typed arguments are annotated ``Any``.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

__all__ = ["ACTIVE", "GROUP", "MODULES", "REASON", "BuildError", "build", "directory", "install"]

#: the modules compiled: the hot path of a proxied request, and what it calls each time
MODULES: tuple[str, ...] = (
    "pysozu.reactor.readiness",
    "pysozu.reactor.timer",
    "pysozu.reactor.pool",
    "pysozu.reactor.metrics",
    "pysozu.reactor.poller",
    "pysozu.reactor.session",
    "pysozu.reactor.server",
    "pysozu.parser.h1",
    "pysozu.protocols.router",
    "pysozu.protocols.http",
    "pysozu.native._wrap",
    "pysozu.protocols.tls",
    "pysozu.parser.h2",
    "pysozu.parser.h2_hpack",
    "pysozu.protocols.h2_connection",
    "pysozu.protocols.h2_translate",
    "pysozu.protocols.http2",
)
#: mypyc's group name: the shared library is the top-level module ``GROUP + "__mypyc"``
GROUP = "pysozu_compiled"
#: the packages whose sources the build copies (mypyc type-checks what the modules import)
_PACKAGES = ("pysozu", "pysozu.reactor", "pysozu.protocols", "pysozu.parser", "pysozu.native")
_MANIFEST = "manifest.json"

ACTIVE: tuple[str, ...] = ()
REASON = "not installed yet"


class BuildError(Exception):
    """The compiled build could not be made (no mypyc, no compiler, a compile error)."""


def directory() -> Path:
    """Where the build lives: ``pysozu/_compiled/`` of this installation."""
    return Path(__file__).resolve().parent / "_compiled"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"cannot locate the package {name}")
    return Path(next(iter(spec.submodule_search_locations)))


def _source(module: str) -> Path:
    package, _, leaf = module.rpartition(".")
    return _package_dir(package) / f"{leaf}.py"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _abi() -> str:
    return importlib.machinery.EXTENSION_SUFFIXES[0]


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled extension of each name it knows (a ``sys.meta_path`` finder)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)

    def invalidate_caches(self) -> None:
        pass


def _check(folder: Path) -> dict[str, Path] | str:
    """The files to load, or why the build in ``folder`` is not usable."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
    except FileNotFoundError:
        return "not built (python -m pysozu.native --compile)"
    except (OSError, ValueError) as e:
        return f"unreadable manifest: {e}"
    if manifest.get("abi") != _abi():
        return f"built for {manifest.get('abi')}, this interpreter loads {_abi()}"
    modules = manifest.get("modules", {})
    files = {f"{GROUP}__mypyc": folder / manifest.get("group_file", "")}
    for name in MODULES:
        entry = modules.get(name)
        if entry is None:
            return f"the build lacks {name}: build again"
        try:
            if _digest(_source(name)) != entry["sha256"]:
                return f"{_source(name)} changed since the build: build again"
        except (OSError, ImportError) as e:
            return f"cannot read the source of {name}: {e}"
        files[name] = folder / entry["file"]
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        return f"missing files: {', '.join(missing)}"
    return files


def install(folder: Path | None = None) -> tuple[str, ...]:
    """Load the compiled modules from now on when the build is usable (see the module
    docstring); returns ``ACTIVE``. Call before any of ``MODULES`` is imported."""
    global ACTIVE, REASON
    choice = os.environ.get("PYSOZU_COMPILED", "")
    if os.environ.get("PYSOZU_PURE_PYTHON") == "1" or choice == "0":
        REASON = "turned off by PYSOZU_PURE_PYTHON=1 or PYSOZU_COMPILED=0"
        return ACTIVE
    if ACTIVE:
        return ACTIVE
    if folder is None:
        folder = Path(choice) if choice not in ("", "1") else directory()
    if not folder.exists():
        REASON = "not built (python -m pysozu.native --compile)"
        return ACTIVE
    found = _check(folder)
    if isinstance(found, str):
        REASON = found
        warnings.warn(f"pysozu: the compiled build is not used: {found}", stacklevel=2)
        return ACTIVE
    loaded = [name for name in MODULES if name in sys.modules]
    if loaded:
        REASON = f"{', '.join(loaded)} imported before the build could be installed"
        return ACTIVE
    sys.meta_path.insert(0, _CompiledFinder(found))
    ACTIVE = MODULES
    REASON = ""
    return ACTIVE


_SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(name="pysozu_compiled", ext_modules=mypycify({paths!r}, opt_level="3",
      group_name={group!r}))
"""


def build(out: Path | None = None, verbose: bool = False) -> Path:
    """Compile ``MODULES`` into ``out`` (default ``directory()``; a previous build there is
    replaced) and return it; raises ``BuildError`` with the compiler's last words when it
    cannot."""
    if importlib.util.find_spec("mypyc") is None:
        raise BuildError("mypyc is not installed (it comes with mypy: pip install mypy)")
    out = out or directory()
    with tempfile.TemporaryDirectory(prefix="pysozu-mypyc-") as tmp:
        root = Path(tmp)
        for package in _PACKAGES:
            source = _package_dir(package)
            target = root.joinpath(*package.split("."))
            target.mkdir(parents=True, exist_ok=True)
            for path in source.iterdir():
                if path.suffix in (".py", ".pyi") or path.name == "py.typed":
                    shutil.copy2(path, target / path.name)
        paths = ["/".join(name.split(".")) + ".py" for name in MODULES]
        (root / "setup.py").write_text(_SETUP.format(paths=paths, group=GROUP))
        proc = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"], cwd=root,
            stdout=None if verbose else subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if proc.returncode:
            tail = "\n".join((proc.stdout or "").splitlines()[-30:])
            raise BuildError(f"mypyc failed (exit {proc.returncode}):\n{tail}")
        suffix = _abi()
        group_file = f"{GROUP}__mypyc{suffix}"
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy2(root / group_file, out / group_file)
        modules = {}
        for name in MODULES:
            # the hash of the copy that was compiled: a source edited during the build
            # must not pass for the code built from its previous text
            compiled_source = root.joinpath(*name.split(".")).with_suffix(".py")
            file = name + suffix
            shutil.copy2(compiled_source.with_suffix(suffix), out / file)
            modules[name] = {"file": file, "sha256": _digest(compiled_source)}
        manifest = {"abi": suffix, "group_file": group_file, "modules": modules}
        (out / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out
