#!/usr/bin/env bash
# Build every module of the repo that has a build step: WebAssembly, Go, Node (called by `make modules`).
#
#   sample_modules/*/build.sh
#       run with PYTHON set, unless the module's artifact ([artifact] path in its
#       module.toml) is newer than every file of the module outside build/
#
# (WAT modules need no build: wasmtime reads WAT directly, e.g. runtime/reports/probes/wasm.)
#
# Fast and idempotent: a second run with nothing changed builds nothing.
# FORCE=1 rebuilds everything. PYTHON defaults to the repo's .venv python, which
# must have wasmtime installed (make venv). Exits non-zero if any build fails,
# after trying all of them.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
case "$PYTHON" in /*) ;; */*) PYTHON="$root/$PYTHON" ;; esac
export PYTHON
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "build-modules: error: python not found at '$PYTHON' (run 'make venv' or set PYTHON)" >&2
    exit 1
fi

failed=()
built=0
skipped=0

# The [artifact] path of a module.toml, resolved against the module's directory.
artifact_of() {
    "$PYTHON" - "$1" <<'PY'
import os, sys, tomllib
path = sys.argv[1]
with open(path, "rb") as f:
    art = tomllib.load(f).get("artifact", {}).get("path") or ""
print(os.path.join(os.path.dirname(path), art) if art else "")
PY
}

# True when $1 exists and no file under directory $2 (outside build/) is newer.
up_to_date() {
    local out="$1" dir="$2"
    [ "${FORCE:-0}" = 1 ] && return 1
    [ -f "$out" ] || return 1
    [ -z "$(find "$dir" -path "$dir/build" -prune -o -type f -newer "$out" -print -quit)" ]
}

for script in sample_modules/*/build.sh; do
    [ -f "$script" ] || continue
    dir="$(dirname "$script")"
    out=""
    [ -f "$dir/module.toml" ] && out="$(artifact_of "$dir/module.toml")"
    if [ -n "$out" ] && up_to_date "$out" "$dir"; then
        skipped=$((skipped + 1))
        continue
    fi
    echo "build-modules: $dir"
    if bash "$script"; then
        built=$((built + 1))
    else
        failed+=("$dir")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "build-modules: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "build-modules: $built built, $skipped up to date"
