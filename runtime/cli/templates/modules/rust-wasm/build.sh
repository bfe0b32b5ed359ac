#!/bin/sh
# src/lib.rs -> build/{{name}}.wasm with a rustc that has the wasm32-unknown-unknown standard
# library: Debian's rustc with libstd-rust-dev-wasm32 (gati's scripts/install-system-deps.sh
# installs them), or RUSTC. A rustup toolchain earlier on PATH without that target is passed over.
set -eu
rustc=""
for candidate in ${RUSTC:-} rustc /usr/bin/rustc; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    sysroot="$("$candidate" --print sysroot 2>/dev/null)" || continue
    if [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown" ]; then rustc="$candidate"; break; fi
done
[ -n "$rustc" ] || { echo "error: no rustc with the wasm32-unknown-unknown target: apt-get install rustc libstd-rust-dev-wasm32" >&2; exit 1; }
mkdir -p build
"$rustc" --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown -C opt-level=s -C strip=debuginfo \
    --crate-name {{crate}} -o build/{{name}}.wasm.tmp src/lib.rs
mv -f build/{{name}}.wasm.tmp build/{{name}}.wasm
echo "built build/{{name}}.wasm"
