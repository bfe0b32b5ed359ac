#!/usr/bin/env bash
# Build the probe test module: probe.wat -> build/probe.wasm.
# Compiles with wasmtime-py's wat2wasm, validates the result and checks that it
# exports `memory` and every method of module.toml as a `() -> i32` function.
# PYTHON names a python with wasmtime installed (default: the repo's .venv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "probe/build.sh: error: python not found at '$PYTHON' (set PYTHON or run 'make venv')" >&2
    exit 1
fi
mkdir -p "$here/build"
"$PYTHON" - "$here/probe.wat" "$here/build/probe.wasm" "$here/module.toml" <<'PY'
import os, sys, tomllib
src, out, manifest = sys.argv[1:4]
try:
    import wasmtime
except ImportError:
    sys.exit(f"error: wasmtime-py is not installed for {sys.executable} (run 'make venv')")
try:
    wasm = wasmtime.wat2wasm(open(src, encoding="utf-8").read())
    module = wasmtime.Module(wasmtime.Engine(), wasm)
except Exception as exc:
    sys.exit(f"error: {src}: {exc}")
exports = {e.name: e.type for e in module.exports}
if not isinstance(exports.get("memory"), wasmtime.MemoryType):
    sys.exit(f"error: {src}: does not export its memory as 'memory'")
with open(manifest, "rb") as f:
    methods = tomllib.load(f).get("methods", {})
for name in methods:
    t = exports.get(name)
    if not isinstance(t, wasmtime.FuncType) or t.params or [str(r) for r in t.results] != ["i32"]:
        sys.exit(f"error: {src}: method {name!r} is not exported as a () -> i32 function")
tmp = out + ".tmp"
with open(tmp, "wb") as f:
    f.write(wasm)
os.replace(tmp, out)
print(f"built {out} ({len(wasm)} bytes)")
PY
