#!/usr/bin/env bash
# Install the project-local tools the tests use from npm (called by `make setup`):
#   tools/typescript   the TypeScript compiler, pinned by its package-lock.json; the tests compile
#                      the SDK `gati codegen typescript` writes with it (tsc --strict).
# Idempotent: nothing is fetched when the installed tree is newer than the lock file.
# Without npm it says so and carries on (those tests are then skipped).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tools/typescript"
if ! command -v npm >/dev/null; then
    echo "install-tools: npm not found; the TypeScript SDK tests will be skipped (install nodejs and npm)" >&2
    exit 0
fi
if [ -x "$dir/node_modules/.bin/tsc" ] && [ "$dir/node_modules" -nt "$dir/package-lock.json" ]; then
    exit 0
fi
echo "install-tools: typescript (npm ci in tools/typescript)"
(cd "$dir" && npm ci --no-audit --no-fund --silent) || { echo "install-tools: npm ci failed" >&2; exit 1; }
touch "$dir/node_modules"
