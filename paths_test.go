package groupidauth

import "testing"

func TestUnsafePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/a/b":       false,
		"/a/.b":      false,
		"/a/..b":     false,
		"/a/b.":      false,
		"/a/b..":     false,
		"/.well":     false,
		"/a/./b":     true,
		"/a/../b":    true,
		"/a/.":       true,
		"/a/..":      true,
		"/.":         true,
		"/..":        true,
		"/a/.x/../b": true,
		"/a/.x/.y/.": true,
		`/a\b`:       true,
		"":           false,
	} {
		if got := unsafePath(p); got != want {
			t.Errorf("unsafePath(%q) = %v, want %v", p, got, want)
		}
	}
}
