#!/usr/bin/env bash
# Installs the programs `make test` needs beyond Go, when they are missing:
# promtool and the Prometheus server (Debian's prometheus package) for the
# tests of deploy/monitoring, wine64 and mingw binutils for the windows/amd64
# test run (scripts/wine-test.sh), and curl for the demo. It needs root and
# apt-get; without them it says what to install and fails, unless the
# missing parts are skipped on purpose (GROUPID_SKIP_PROMETHEUS=1,
# GROUPID_SKIP_WINE=1).
set -euo pipefail
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ -z "${GROUPID_SKIP_PROMETHEUS:-}" ] && { ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; }; then
	need+=(prometheus)
fi
if [ -z "${GROUPID_SKIP_WINE:-}" ] && { ! command -v wine >/dev/null 2>&1 || ! command -v x86_64-w64-mingw32-ld >/dev/null 2>&1; }; then
	need+=(wine64 binutils-mingw-w64-x86-64)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "make test needs: ${need[*]} (Debian: apt-get install ${need[*]});" \
		"or skip on purpose with GROUPID_SKIP_PROMETHEUS=1 / GROUPID_SKIP_WINE=1" >&2
	exit 1
fi
echo "installing: ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
