"""The compiled build's import hook (``pysozu.compiled``): what it loads, and when it
stands aside for the sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pysozu import compiled

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys, pysozu.protocols.http as h, pysozu.reactor.server as s\n"
    "from pysozu import compiled as c\n"
    "print(h.__file__); print(s.__file__); print(len(c.ACTIVE)); print(c.REASON)\n"
)


def probe(**env: str) -> tuple[list[str], str]:
    """Import two hot modules in a fresh interpreter: (their files, ACTIVE count, REASON), and
    what it wrote to stderr."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYSOZU_")}
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines(), proc.stderr


def fake_build(folder: Path) -> dict:
    """A manifest that matches the sources, over empty files: enough for ``_check``."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = compiled._abi()
    modules = {}
    for name in compiled.MODULES:
        (folder / (name + suffix)).write_bytes(b"")
        modules[name] = {"file": name + suffix, "sha256": compiled._digest(compiled._source(name))}
    group = f"{compiled.GROUP}__mypyc{suffix}"
    (folder / group).write_bytes(b"")
    manifest = {"abi": suffix, "group_file": group, "modules": modules}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_a_matching_build_gives_every_module_and_the_shared_library(tmp_path):
    fake_build(tmp_path)
    files = compiled._check(tmp_path)
    assert isinstance(files, dict)
    assert set(files) == set(compiled.MODULES) | {f"{compiled.GROUP}__mypyc"}


def test_no_build_is_said_plainly(tmp_path):
    assert "not built" in compiled._check(tmp_path)


@pytest.mark.parametrize("change", ["hash", "abi", "file", "module"])
def test_anything_out_of_date_turns_the_whole_build_off(tmp_path, change):
    manifest = fake_build(tmp_path)
    victim = "pysozu.protocols.router"
    if change == "hash":  # the source was edited after the build
        manifest["modules"][victim]["sha256"] = "0" * 64
    elif change == "abi":  # another interpreter's build
        manifest["abi"] = ".cpython-399-x86_64-linux-gnu.so"
    elif change == "file":
        (tmp_path / manifest["modules"][victim]["file"]).unlink()
    else:  # a build from before a module joined MODULES
        del manifest["modules"][victim]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    reason = compiled._check(tmp_path)
    assert isinstance(reason, str)
    assert {"hash": "router.py changed", "abi": "cpython-399", "file": "missing files",
            "module": "lacks pysozu.protocols.router"}[change] in reason


def test_switched_off_the_sources_are_imported():
    lines, _ = probe(PYSOZU_COMPILED="0")
    assert lines[0].endswith("http.py") and lines[1].endswith("server.py")
    assert lines[2] == "0" and "turned off" in lines[3]


needs_build = pytest.mark.skipif(
    not (compiled.directory() / "manifest.json").exists(),
    reason="no compiled build here (python -m pysozu.native --compile; scripts/test.sh makes one)",
)


@needs_build
def test_the_build_is_loaded_in_place_of_the_sources():
    lines, err = probe()
    suffix = compiled._abi()
    assert lines[0].endswith(suffix) and lines[1].endswith(suffix), (lines, err)
    assert lines[2] == str(len(compiled.MODULES))


@needs_build
def test_a_stale_build_warns_and_the_sources_run(tmp_path):
    stale = tmp_path / "build"
    shutil.copytree(compiled.directory(), stale)
    manifest = json.loads((stale / "manifest.json").read_text())
    manifest["modules"]["pysozu.protocols.http"]["sha256"] = "f" * 64
    (stale / "manifest.json").write_text(json.dumps(manifest))
    lines, err = probe(PYSOZU_COMPILED=str(stale))
    assert lines[0].endswith("http.py") and lines[1].endswith("server.py")
    assert "http.py changed since the build" in lines[3]
    assert "the compiled build is not used" in err
