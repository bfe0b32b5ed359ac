#!/bin/sh
# assembly/index.ts -> build/{{name}}.wasm with asc from npm's assemblyscript, installed here
# (node_modules/) from package.json the first time: needs node and npm (gati's
# scripts/install-system-deps.sh installs them).
set -eu
command -v npm >/dev/null 2>&1 || { echo "error: npm not found: apt-get install nodejs npm" >&2; exit 1; }
if [ ! -x node_modules/.bin/asc ] || [ package.json -nt node_modules/.bin/asc ]; then
    npm install --no-audit --no-fund --silent
    touch node_modules/.bin/asc
fi
mkdir -p build
# --runtime stub: a bump allocator, nothing to collect in a call's fresh instance.
# --use abort=: no env.abort import (gati links only the gati and WASI imports).
node_modules/.bin/asc assembly/index.ts --outFile build/{{name}}.wasm.tmp --optimize --runtime stub --use abort=
mv -f build/{{name}}.wasm.tmp build/{{name}}.wasm
echo "built build/{{name}}.wasm"
