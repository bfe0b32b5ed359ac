#!/usr/bin/env bash
# Build the thumbs module: thumbs.c -> build/thumbs.wasm (wasm32-wasi reactor).
# Needs Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32
# (scripts/install-system-deps.sh installs them). CC overrides the compiler.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CC="${CC:-clang}"
die() { echo "thumbs-c/build.sh: error: $*" >&2; exit 1; }

command -v "$CC" >/dev/null 2>&1 ||
    die "'$CC' not found: install clang, lld, wasi-libc and libclang-rt-dev-wasm32 (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32, or run scripts/install-system-deps.sh)"
command -v wasm-ld >/dev/null 2>&1 || command -v wasm-ld-14 >/dev/null 2>&1 ||
    die "wasm-ld not found: install lld (apt-get install lld)"
# Debian bookworm ships wasi-libc as wasm32-wasi; newer releases as wasm32-wasip1.
target=""
for t in wasm32-wasi wasm32-wasip1; do
    if [ -f "/usr/include/$t/stdio.h" ] && [ -f "/usr/lib/$t/crt1-reactor.o" ]; then target="$t"; break; fi
done
[ -n "$target" ] ||
    die "wasi-libc not found in /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi: apt-get install wasi-libc"

mkdir -p "$here/build"
out="$here/build/thumbs.wasm"
# --sysroot=/usr: Debian puts wasi-libc at /usr/{include,lib}/$target.
# -mexec-model=reactor: no main; exports _initialize, which the host calls once.
# --strip-debug keeps the name section (readable trap backtraces) but drops DWARF.
"$CC" --target="$target" --sysroot=/usr -mexec-model=reactor -O2 \
    -Wall -Wextra -Werror -Wl,--strip-debug \
    -o "$out.tmp" "$here/thumbs.c" ||
    die "compiling thumbs.c failed (is libclang-rt-dev-wasm32 installed? it provides libclang_rt.builtins-wasm32.a)"
mv -f "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
