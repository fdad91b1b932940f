package groupidauth

import (
	"syscall"
	_ "unsafe" // go:linkname
)

// deleteatFallback is Go's switch to the pre-Windows-10 way of deleting a
// file in os.RemoveAll (internal/syscall/windows.TestDeleteatFallback).
// Wine 8.0 (Debian bookworm) answers the Windows 10 way (a
// FileDispositionInformationEx request) with STATUS_NOT_IMPLEMENTED, which
// Go does not take as "unsupported", so every t.TempDir cleanup would fail
// with "unlinkat ...: Invalid function". Linking it needs
// -ldflags=-checklinkname=0, which only the Wine run passes (Makefile).
//
//go:linkname deleteatFallback internal/syscall/windows.TestDeleteatFallback
var deleteatFallback bool

// underWine reports whether this process runs under Wine, whose ntdll
// exports wine_get_version and Windows' does not.
func underWine() bool {
	return syscall.NewLazyDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func init() {
	if underWine() {
		deleteatFallback = true
	}
}
