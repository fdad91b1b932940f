#!/usr/bin/env bash
# Installs the programs `make test` needs beyond Go, when they are missing:
# promtool and the Prometheus server (Debian's prometheus package) for the
# tests of deploy/monitoring, and curl for the demo. It needs root and
# apt-get; without them it says what to install and fails.
set -euo pipefail
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
	need+=(prometheus)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "make test needs: ${need[*]} (Debian: apt-get install ${need[*]});" \
		"or set GROUPID_SKIP_PROMETHEUS=1 to skip the Prometheus tests" >&2
	[ -n "${GROUPID_SKIP_PROMETHEUS:-}" ] && exit 0
	exit 1
fi
echo "installing: ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
