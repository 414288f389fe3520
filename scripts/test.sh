#!/usr/bin/env bash
# Install pysozu and its test dependencies into .venv, then run the whole test suite.
#
# This is the README's test command and what .ci/run runs, so a contributor and CI run the
# same thing. Extra arguments go to pytest (scripts/test.sh -k cli -x).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    # pysozu needs Python >= 3.11 (tomllib): prefer python3.11 where python3 is older.
    python=$(command -v python3.11 || command -v python3 || true)
    if [ -z "$python" ]; then
        echo "scripts/test.sh: no python3 found" >&2
        exit 1
    fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "scripts/test.sh: pysozu needs Python >= 3.11; $python is $("$python" -V 2>&1)" >&2
        exit 1
    fi
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q -e '.[test]'
if [ "${PYSOZU_COMPILED:-}" = 0 ]; then
    exec .venv/bin/python -m pytest "$@"  # the pure Python sources only
fi
# The compiled build of the hot modules (pysozu.compiled, mypyc) is made here and
# the suite runs on it; then, for a whole run, the unit tests and the HTTP/1.1 end-to-end
# tests run again on the pure Python sources (what an install runs until it compiles).
# PYSOZU_COMPILED=0 scripts/test.sh runs everything on the sources alone.
if ! .venv/bin/python -m pysozu.native --compile >/dev/null; then
    echo "scripts/test.sh: the compiled build failed (above); PYSOZU_COMPILED=0 skips it" >&2
    exit 1
fi
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then
    echo "--- again on the pure Python sources (PYSOZU_COMPILED=0)"
    PYSOZU_COMPILED=0 .venv/bin/python -m pytest tests/parser tests/reactor tests/protocols \
        tests/native tests/e2e/test_http*.py
fi
