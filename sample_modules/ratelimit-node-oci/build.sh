#!/usr/bin/env bash
# Put what the image needs beside the Dockerfile (its [artifact] build_command: gati build, make modules):
# node_modules from npm (on the host: the image has no network) and the gati protos.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
    echo "ratelimit-node-oci: npm not found; skipped (install nodejs/npm to build this sample)" >&2
    exit 0
fi
if [ ! -d node_modules/@grpc/grpc-js ] || [ package.json -nt node_modules ]; then
    npm install --omit=dev --no-audit --no-fund --silent
    touch node_modules
fi
rm -rf proto && mkdir -p proto
cp -r ../../proto/gati ../../proto/grpc proto/
