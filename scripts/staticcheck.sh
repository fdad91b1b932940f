#!/usr/bin/env bash
# Runs staticcheck over the module, at a pinned version, from the repo root.
#
#   scripts/staticcheck.sh              # all packages (./...)
#   scripts/staticcheck.sh ./tokencache # other arguments go to staticcheck as they are
#
# The first run downloads and builds staticcheck through the Go module proxy
# (into the module and build caches; go.mod and go.sum are not touched).
# The exit status is staticcheck's: 0 when there are no findings.
set -euo pipefail

# v0.8.2 is staticcheck 2026.2.2, the newest release when this was pinned; it
# builds with and analyses Go 1.26 code (this module's go directive). Bump it
# deliberately, together with any new findings, not ad hoc.
STATICCHECK_VERSION=v0.8.2

cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
	set -- ./...
fi
exec go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" "$@"
