#!/usr/bin/env bash
# Build the repo's sample modules (called by `make modules`) through `gati build`, the one build
# path: each module's [artifact] build_command (WebAssembly, Go, Node) and oci image, skipped
# when its build/.gati-build.json says sources and artifact are what the last build left, so
# `make run` and `gati serve` agree on what is up to date.
#
# FORCE=1 rebuilds everything. GATI defaults to the repo's .venv (make venv).
# Exits non-zero if any build fails, after trying all of them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
GATI="${GATI:-$root/.venv/bin/gati}"
if [ ! -x "$GATI" ]; then
    echo "build-modules: error: gati not found at '$GATI' (run 'make venv' or set GATI)" >&2
    exit 1
fi
args=()
[ "${FORCE:-0}" = 1 ] && args+=(--force)
folders=()
for manifest in sample_modules/*/module.toml; do
    folders+=("$(dirname "$manifest")")
done
exec "$GATI" build "${args[@]}" "${folders[@]}"
