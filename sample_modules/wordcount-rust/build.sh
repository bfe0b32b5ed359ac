#!/usr/bin/env bash
# Build the wordcount module: src/lib.rs -> build/wordcount.wasm (wasm32-unknown-unknown, no crates).
# Needs a rustc with the wasm32 standard library: Debian's rustc and libstd-rust-dev-wasm32
# (scripts/install-system-deps.sh installs them; a rustup toolchain works if it has the target).
# RUSTC overrides the compiler.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "wordcount-rust/build.sh: error: $*" >&2; exit 1; }

# The first rustc that has the wasm32-unknown-unknown standard library (rustup's may lack it).
rustc=""
for candidate in ${RUSTC:-} /usr/bin/rustc rustc; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    sysroot="$("$candidate" --print sysroot 2>/dev/null)" || continue
    if ls "$sysroot"/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib >/dev/null 2>&1; then rustc="$candidate"; break; fi
done
[ -n "$rustc" ] ||
    die "no rustc with the wasm32-unknown-unknown target: apt-get install rustc libstd-rust-dev-wasm32 (or run scripts/install-system-deps.sh)"

mkdir -p "$here/build"
out="$here/build/wordcount.wasm"
# cdylib: exports the #[no_mangle] methods and the linear memory as "memory", as the ABI asks.
"$rustc" --edition 2021 --crate-type cdylib --crate-name wordcount --target wasm32-unknown-unknown \
    -C opt-level=2 -C strip=debuginfo -D warnings -o "$out.tmp" "$here/src/lib.rs" ||
    die "compiling src/lib.rs failed"
mv -f "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
