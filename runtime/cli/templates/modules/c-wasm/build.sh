#!/bin/sh
# {{name}}.c -> build/{{name}}.wasm with Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32
# (gati's scripts/install-system-deps.sh installs them). CC overrides the compiler.
set -eu
CC="${CC:-clang}"
command -v "$CC" >/dev/null 2>&1 || { echo "error: $CC not found: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32" >&2; exit 1; }
# Debian bookworm ships wasi-libc as wasm32-wasi, newer releases as wasm32-wasip1.
target=""
for t in wasm32-wasi wasm32-wasip1; do
    if [ -f "/usr/include/$t/stdio.h" ]; then target="$t"; break; fi
done
[ -n "$target" ] || { echo "error: wasi-libc not found: apt-get install wasi-libc" >&2; exit 1; }
mkdir -p build
"$CC" --target="$target" --sysroot=/usr -mexec-model=reactor -O2 -Wall -Wextra -Werror \
    -o build/{{name}}.wasm.tmp {{name}}.c
mv -f build/{{name}}.wasm.tmp build/{{name}}.wasm
echo "built build/{{name}}.wasm"
