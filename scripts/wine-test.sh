#!/usr/bin/env bash
# Runs the windows/amd64 test binaries of tokencache and the root package
# (built by `make cross` into bin/cross) under Wine, each in its package
# directory as `go test` would.
#
# Needs Debian's wine64 (Wine 8.0 on bookworm) and binutils-mingw-w64-x86-64;
# scripts/test-deps.sh installs both. Without wine the run fails, unless
# GROUPID_SKIP_WINE=1 skips it on purpose.
#
# Two Wine 8.0 gaps are worked around here, not in the code under test:
#  - Go 1.22+ programs need ProcessPrng from bcryptprimitives.dll, which
#    Wine has only since 8.13 ("fatal error: bcryptprimitives.dll not
#    found"). A forwarding DLL (ProcessPrng = advapi32.SystemFunction036,
#    the same generator) is linked with mingw binutils into the prefix.
#  - Wine 8.0 answers FileDispositionInformationEx with
#    STATUS_NOT_IMPLEMENTED, so os.RemoveAll fails ("unlinkat ...: Invalid
#    function") and every t.TempDir cleanup with it; wine_windows_test.go
#    switches Go to its pre-Windows-10 delete under Wine, which needs the
#    root test binary linked with -ldflags=-checklinkname=0 (Makefile).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v wine >/dev/null 2>&1; then
	msg="wine not installed: windows/amd64 tests not run (apt-get install wine64 binutils-mingw-w64-x86-64)"
	if [ -n "${GROUPID_SKIP_WINE:-}" ]; then
		echo "SKIPPED (GROUPID_SKIP_WINE): $msg"
		exit 0
	fi
	echo "$msg" >&2
	exit 1
fi

export WINEPREFIX="${WINEPREFIX:-$root/bin/wineprefix}" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -d "$sys32" ]; then
	wine wineboot --init >/dev/null 2>&1 || true
	wineserver --wait || true
fi
# A Wine that has the DLL (8.13 and later) put a stub of it in system32.
if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
	tmp=$(mktemp -d)
	printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\nProcessPrng = advapi32.SystemFunction036\n' >"$tmp/shim.def"
	x86_64-w64-mingw32-as -o "$tmp/empty.o" /dev/null
	x86_64-w64-mingw32-ld --dll -e 0 -o "$sys32/bcryptprimitives.dll" "$tmp/empty.o" "$tmp/shim.def"
	rm -rf "$tmp"
fi

# TestFailedLoadLeavesNothing counts goroutines after a failed caddy.Load;
# under Wine three more remain than on Linux (see README, Running on
# Windows), so it is left out of this run; the Linux run keeps it.
skip='^TestFailedLoadLeavesNothing$'
# run DIR BINARY ARGS...: the binary in DIR, its output shown on failure
# only (as go test does for a package list); the test names and times are
# kept in bin/cross/*.wine.log.
run() {
	local dir=$1 bin=$2 log
	shift 2
	log="$root/bin/cross/$(basename "$bin" .exe).wine.log"
	if ! (cd "$dir" && wine "$bin" -test.v -test.count=1 "$@") >"$log" 2>&1; then
		grep -v '^=== ' "$log" | tail -200
		echo "wine: $(basename "$bin") failed (full output: $log)" >&2
		return 1
	fi
	echo "wine: $(basename "$bin"): $(grep -c '^--- PASS' "$log") tests passed, $(grep -c '^--- SKIP' "$log") skipped"
}
run "$root/tokencache" "$root/bin/cross/tokencache.test.exe"
run "$root" "$root/bin/cross/groupidauth.test.exe" -test.skip "$skip"
wineserver --kill || true
echo "wine: windows/amd64 tests of tokencache and the root package passed"
