#!/usr/bin/env bash
# mypy on the package as it is installed: the code folders reactor/, protocols/, parser/ and
# native/ become pysozu.reactor, ... through setuptools' package_dir, which mypy cannot
# follow. So type-check a throw-away tree of symlinks with the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tree=$(mktemp -d "${TMPDIR:-/tmp}/pysozu-typecheck.XXXXXX")  # one per run: runs may overlap
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/pysozu"
for f in pysozu/*.py pysozu/py.typed; do ln -s "$root/$f" "$tree/pysozu/$(basename "$f")"; done
for sub in reactor protocols parser native; do ln -s "$root/$sub" "$tree/pysozu/$sub"; done
cd "$tree"
"${MYPY:-$root/.venv/bin/mypy}" --config-file "$root/pyproject.toml" \
    --cache-dir "$root/.mypy_cache" -p pysozu "$@"
