package groupidauth

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

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

// TestRefusePathRaw: encoded separators in the raw path, NULs and double
// encoding are refused; ordinary escapes pass.
func TestRefusePathRaw(t *testing.T) {
	for raw, want := range map[string]bool{
		"/GroupIDDataService/api/IdentityStores/2/Users/abc":           false,
		"/GroupIDDataService/api/IdentityStores/2/Users/a%20b":         false,
		"/GroupIDDataService/api/IdentityStores/2/Groups/R%26D":        false,
		"/GroupIDDataService/api/IdentityStores/2%2FUsers":             true,
		"/GroupIDDataService/api/IdentityStores/2%2fUsers":             true,
		"/GroupIDDataService/api/IdentityStores/2/Users/x%5C..%5Clogs": true,
		"/GroupIDDataService/api/IdentityStores/2/Users/x%5cy":         true,
		"/GroupIDDataService/api/IdentityStores/2/Users/x%00":          true,
		"/GroupIDDataService/api/IdentityStores/2/Users/%252F..":       true,
		"/GroupIDDataService/api/IdentityStores/2/Users/%252e%252e":    true,
		"/GroupIDDataService/api/IdentityStores/2/Users/..;/Logs":      true,
		"/GroupIDDataService/api/IdentityStores/2/Users/%2e%2e/Logs":   true,
	} {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := refusePath(u); got != want {
			t.Errorf("refusePath(%s) = %v, want %v", raw, got, want)
		}
	}
}

// hasDotSegment reports whether p has a "." or ".." segment (also with a
// ";" parameter).
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || strings.HasPrefix(seg, "..;") || strings.HasPrefix(seg, ".;") {
			return true
		}
	}
	return false
}

// FuzzRefusePath: a path that is not refused means the same thing to a
// matcher (decoded once, cleaned), to reverse_proxy (raw) and to a server
// that decodes twice: no dot segments, no backslash or NUL, and no slash
// that exists in one view and not in another.
func FuzzRefusePath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a%2Fb", "/a/%2e%2e/b", "/a/..;/b", "/a%255Cb", "/a%00", "/x/%252e%252e/y", "/a%20b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || refusePath(u) {
			return
		}
		decoded := u.Path
		if strings.ContainsAny(decoded, "\\\x00") {
			t.Fatalf("accepted %q with a backslash or NUL", raw)
		}
		if cleaned := path.Clean("/" + decoded); decoded != "" && strings.TrimSuffix(cleaned, "/") != strings.TrimSuffix(path.Clean("/"+strings.ReplaceAll(decoded, "//", "/")), "/") {
			t.Fatalf("accepted %q whose path cleans differently", raw)
		}
		if hasDotSegment(decoded) {
			t.Fatalf("accepted %q with a dot segment", raw)
		}
		// What reverse_proxy sends, decoded once, is the matcher's path.
		if sent, err := url.PathUnescape(u.EscapedPath()); err != nil || sent != decoded {
			t.Fatalf("accepted %q: forwarded path decodes to another path", raw)
		}
		// A second decoding adds no separator and no dot segment.
		if twice, err := url.PathUnescape(decoded); err == nil {
			if strings.Count(twice, "/") != strings.Count(decoded, "/") || strings.ContainsAny(twice, "\\\x00") || hasDotSegment(twice) {
				t.Fatalf("accepted %q: decoding twice changes its segments", raw)
			}
		}
	})
}

// FuzzAPIScope: a path that the transport sends with the token (it passes
// the path check and the scope check) is, as IIS reads it (decoded, any
// case, cleaned), below the store's Users or Groups API and nowhere else.
func FuzzAPIScope(f *testing.F) {
	for _, s := range []string{
		"/GroupIDDataService/api/IdentityStores/2/Users/x", "/groupiddataservice/API/identitystores/2/groups",
		"/GroupIDDataService/api/IdentityStores/2/Users/../../3/Users", "/GroupIDDataService/api/IdentityStores/2/Users%2F..%2F..%2F3",
		"/GroupIDDataService/api/IdentityStores/2//Users", "/GroupIDDataService/api/IdentityStores/2/%55sers",
		"/GroupIDDataService/api/IdentityStores/2/Users;x", "/GroupIDDataService/api/IdentityStores/2/Groups\\..\\x",
	} {
		f.Add(s)
	}
	scope := newAPIScope(DefaultAPIBase, "2")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || refusePath(u) || scope.check(u.Path) != nil {
			return
		}
		iis := strings.ToLower(path.Clean(u.Path))
		prefix := strings.ToLower(DefaultAPIBase + "/IdentityStores/2/")
		rest, ok := strings.CutPrefix(iis, prefix)
		if !ok {
			t.Fatalf("sent %q with the token: outside %s", raw, prefix)
		}
		first, _, _ := strings.Cut(rest, "/")
		if first != "users" && first != "groups" {
			t.Fatalf("sent %q with the token: %q is not Users or Groups", raw, first)
		}
	})
}
