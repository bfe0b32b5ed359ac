#!/bin/sh
# main.go -> build/{{name}} (a static Linux executable), offline, from Debian's packages only
# (gati's scripts/install-system-deps.sh installs them): golang-go, golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev, protobuf-compiler,
# protoc-gen-go, protoc-gen-go-grpc. GOPATH mode against /usr/share/gocode: no module proxy.
# GATI_PROTO (set by `gati build`) holds the gati protos the Go stubs are generated from.
set -eu
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found: apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev protobuf-compiler protoc-gen-go protoc-gen-go-grpc" >&2; exit 1; }
done
[ -n "${GATI_PROTO:-}" ] || { echo "error: GATI_PROTO is not set: build with gati build" >&2; exit 1; }
here="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pkg="$work/src/gati.local/{{name}}"
mkdir -p "$pkg/gen"
cp main.go "$pkg/"
# The .proto files name no go_package: map the one used here to its import path.
map="Mgati/module/v1/module.proto=gati.local/{{name}}/gen/gati/module/v1"
protoc -I "$GATI_PROTO" --go_out="$pkg/gen" --go_opt=paths=source_relative,"$map" \
    --go-grpc_out="$pkg/gen" --go-grpc_opt=paths=source_relative,"$map" gati/module/v1/module.proto
mkdir -p build
(
    cd "$pkg"
    export GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOFLAGS= CGO_ENABLED=0
    go build -trimpath -ldflags="-s -w" -o "$here/build/{{name}}.tmp" .
)
mv -f "build/{{name}}.tmp" "build/{{name}}"
echo "built build/{{name}}"
