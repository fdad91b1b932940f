#!/usr/bin/env bash
# Tests the xcaddy-build tool in this directory, builds Caddy from the root
# xcaddy.json with it and checks that the binary carries the plugin and adapts
# Caddyfile.example.
# Usage: deploy/xcaddy/build.sh [output]   (default: bin/caddy-xcaddy in the repository)
# GO selects the go command (default: go). Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/bin/caddy-xcaddy}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

"${GO:-go}" -C "$here" vet ./...
"${GO:-go}" -C "$here" test -count=1 ./...
start=$SECONDS
"${GO:-go}" -C "$here" run . -config "$root/xcaddy.json" -o "$out"
echo "xcaddy build: $out in $((SECONDS - start)) s"

modules="$("$out" list-modules)"
for m in http.handlers.groupid_auth http.handlers.groupid_ready http.reverse_proxy.transport.groupid groupid; do
	if ! grep -qx "$m" <<<"$modules"; then
		echo "xcaddy build: module $m missing from $out" >&2
		exit 1
	fi
	echo "xcaddy build: list-modules has $m"
done
"$out" adapt --config "$root/Caddyfile.example" --adapter caddyfile >/dev/null
echo "xcaddy build: $out adapts Caddyfile.example"
