#!/bin/sh
# Put what the image needs beside the Dockerfile, on the host (the image has no network):
# node_modules from npm, and the gati protos ($GATI_PROTO, set by `gati build`).
set -eu
command -v npm >/dev/null 2>&1 || { echo "error: npm not found: apt-get install nodejs npm" >&2; exit 1; }
[ -n "${GATI_PROTO:-}" ] || { echo "error: GATI_PROTO is not set: build with gati build" >&2; exit 1; }
if [ ! -d node_modules/@grpc/grpc-js ] || [ package.json -nt node_modules ]; then
    npm install --omit=dev --no-audit --no-fund --silent
    touch node_modules
fi
rm -rf proto && mkdir -p proto
cp -RL "$GATI_PROTO/gati" "$GATI_PROTO/grpc" proto/
echo "node_modules and proto/ ready"
