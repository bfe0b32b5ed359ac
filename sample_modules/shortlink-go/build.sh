#!/usr/bin/env bash
# Build the shortlink module: main.go -> build/shortlink (a static Linux executable).
# Offline, from Debian's packages only (scripts/install-system-deps.sh installs them):
#   golang-go, golang-google-grpc-dev, golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev
#   (Go sources in /usr/share/gocode),
#   protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc (the Go stubs, generated from proto/ here).
# GOPATH mode (GO111MODULE=off): the Debian -dev packages are a GOPATH tree, no module proxy needed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { echo "shortlink-go/build.sh: error: $*" >&2; exit 1; }
packages="golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev protobuf-compiler protoc-gen-go protoc-gen-go-grpc"

for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' not found: apt-get install $packages (or run scripts/install-system-deps.sh)"
done
[ -d /usr/share/gocode/src/google.golang.org/grpc ] ||
    die "Go gRPC sources not found in /usr/share/gocode: apt-get install golang-google-grpc-dev golang-google-protobuf-dev"
# grpc-go marshals through github.com/golang/protobuf; its 1.3 API (which golang-google-grpc-dev may
# pull in) cannot handle messages from today's protoc-gen-go, and the module panics on its first call.
grep -q protoimpl /usr/share/gocode/src/github.com/golang/protobuf/proto/proto.go 2>/dev/null ||
    die "github.com/golang/protobuf in /usr/share/gocode is older than 1.4: apt-get install golang-github-golang-protobuf-1-5-dev"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pkg="$work/src/gati.local/shortlink"
mkdir -p "$pkg/gen"
cp "$here/main.go" "$pkg/"
# The .proto files name no go_package: map each one to its import path here.
maps="Mgati/module/v1/module.proto=gati.local/shortlink/gen/gati/module/v1,Mgati/host/v1/host.proto=gati.local/shortlink/gen/gati/host/v1"
protoc -I "$root/proto" \
    --go_out="$pkg/gen" --go_opt=paths=source_relative,"$maps" \
    --go-grpc_out="$pkg/gen" --go-grpc_opt=paths=source_relative,"$maps" \
    gati/module/v1/module.proto gati/host/v1/host.proto ||
    die "protoc could not generate the Go stubs from proto/"

mkdir -p "$here/build"
out="$here/build/shortlink"
(
    cd "$pkg"
    export GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="${GOCACHE:-$here/build/go-cache}" GOFLAGS= CGO_ENABLED=0
    go build -trimpath -ldflags="-s -w" -o "$out.tmp" .
) || die "go build failed (are golang-google-grpc-dev and golang-google-protobuf-dev installed?)"
mv -f "$out.tmp" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
