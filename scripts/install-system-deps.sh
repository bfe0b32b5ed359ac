#!/usr/bin/env bash
# Install the Debian packages the project builds and tests with, where they are missing,
# and start the Docker engine where it is not running. Needs root and apt; elsewhere it
# says what is missing and carries on (the WASM side of gati needs only gcc and the Python headers).
set -uo pipefail

need=()
# The WASM call path (sandboxes/wasm/_callpath.c), compiled by `pip install` against the interpreter's headers.
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/include/stdio.h ] || need+=(libc6-dev)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || need+=(python3-dev)
command -v clang >/dev/null || need+=(clang)
command -v wasm-ld >/dev/null || need+=(lld)
[ -d /usr/lib/wasm32-wasi ] || [ -d /usr/lib/wasm32-wasip1 ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-dev-wasm32)
# Rust to wasm32 (gati new module --lang rust): Debian's rustc and its wasm32 standard library;
# a rustup toolchain elsewhere on PATH has no wasm32 target and cannot fetch one here.
[ -d /usr/lib/rustlib/wasm32-unknown-unknown ] || need+=(rustc libstd-rust-dev-wasm32)
# Node.js: the node container template and AssemblyScript (npm packages install into each module's folder).
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
command -v wrk >/dev/null || need+=(wrk)  # the HTTP load of bench/lifecycle_bench.py
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
# The Rust sample module (sample_modules/wordcount-rust): Debian's rustc with the wasm32 standard library.
ls /usr/lib/rustlib/wasm32-unknown-unknown/lib/libstd-*.rlib >/dev/null 2>&1 || need+=(rustc libstd-rust-dev-wasm32)
# Native sample modules in Go, built offline against Debian's Go sources (sample_modules/shortlink-go).
command -v go >/dev/null || need+=(golang-go)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v protoc-gen-go >/dev/null || need+=(protoc-gen-go)
command -v protoc-gen-go-grpc >/dev/null || need+=(protoc-gen-go-grpc)
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || need+=(golang-google-grpc-dev)
[ -d /usr/share/gocode/src/google.golang.org/protobuf ] || need+=(golang-google-protobuf-dev)
# The playground's browser tests (tests/test_playground_browser.py): headless Chromium and its driver, driven by selenium.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
grep -qs protoimpl /usr/share/gocode/src/github.com/golang/protobuf/proto/proto.go || need+=(golang-github-golang-protobuf-1-5-dev)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "gati: missing system packages: ${need[*]} (install them as root; WASM modules work without them)" >&2
    else
        echo "gati: installing ${need[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "${need[@]}" >/dev/null || echo "gati: apt-get install ${need[*]} failed" >&2
    fi
fi

bash "$(dirname "$0")/start-docker.sh"
exit 0
