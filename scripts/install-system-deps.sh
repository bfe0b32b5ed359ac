#!/usr/bin/env bash
# Install the Debian packages the project builds and tests with, where they are missing.
# Needs root and apt; elsewhere it says what to install by hand and carries on.
set -uo pipefail

need=()
command -v clang >/dev/null || need+=(clang)
command -v wasm-ld >/dev/null || need+=(lld)
[ -d /usr/lib/wasm32-wasi ] || [ -d /usr/lib/wasm32-wasip1 ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-dev-wasm32)

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "gati: missing system packages: ${need[*]} (install them with your package manager; the C sample module needs them)" >&2
    exit 0
fi
echo "gati: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
