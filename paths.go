package groupidauth

import (
	"fmt"
	"net/url"
	"strings"
)

// refusePath reports whether a request's path is one the token must not be
// sent with. Caddy's path matchers test the decoded, cleaned path, while
// reverse_proxy forwards the raw one, and IIS decodes and folds it again;
// wherever those two views can differ, a matcher that allowed a Users path
// could send the token somewhere else. Refused: "." and ".." segments
// (also "..;"), a backslash, a NUL, an encoded slash, backslash or NUL
// (%2F, %5C, %00) in the raw path, and a percent escape that survives
// decoding (double encoding such as %252F).
func refusePath(u *url.URL) bool {
	return unsafePath(u.Path) || (u.RawPath != "" && encodedSeparator(u.RawPath))
}

// unsafePath checks the decoded path: dot segments, backslashes, NULs and
// leftover percent escapes of separators or dots.
func unsafePath(p string) bool {
	if strings.IndexByte(p, '\\') >= 0 || strings.IndexByte(p, 0) >= 0 {
		return true
	}
	if strings.IndexByte(p, '%') >= 0 && encodedSeparator(p) {
		return true
	}
	// Only a "/." can start a dot segment; most paths have none.
	for i := strings.Index(p, "/."); i >= 0; {
		j := i + 2
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' || p[j] == ';' {
			return true
		}
		next := strings.Index(p[i+2:], "/.")
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

// encodedSeparator reports whether s holds %2F, %5C, %00 or %2E in any case.
func encodedSeparator(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		hi, lo := s[i+1], s[i+2]|0x20
		if (hi == '2' && (lo == 'f' || lo == 'e')) || (hi == '5' && lo == 'c') || (hi == '0' && lo == '0') {
			return true
		}
		next := strings.IndexByte(s[i+1:], '%')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// apiScope is the part of GroupID's URL space a credential's token may be
// sent to: the User and Group APIs of its identity store, under the Data
// Service's API base path. Compared without regard to case, as IIS does.
type apiScope struct {
	prefix string // "<api_base>/IdentityStores/<id>/"
}

func newAPIScope(base, store string) apiScope {
	return apiScope{prefix: strings.TrimSuffix(base, "/") + "/IdentityStores/" + store + "/"}
}

// apiCollections are the APIs the token is for, below the store's prefix.
var apiCollections = [...]string{"Users", "Groups"}

// check returns an error unless p (the decoded path as it is sent to the
// upstream, after every rewrite) is <prefix>Users or <prefix>Groups, or
// below one of them.
func (s apiScope) check(p string) error {
	if s.admits(p) {
		return nil
	}
	return fmt.Errorf("not sending the groupid token to %q: only %sUsers and %sGroups (and below) get it", clip(p), s.prefix, s.prefix)
}

// admits reports, without allocating, whether p is in the scope (check).
func (s apiScope) admits(p string) bool {
	if len(p) < len(s.prefix) || !strings.EqualFold(p[:len(s.prefix)], s.prefix) {
		return false
	}
	rest := p[len(s.prefix):]
	for _, c := range apiCollections {
		if len(rest) >= len(c) && strings.EqualFold(rest[:len(c)], c) && (len(rest) == len(c) || rest[len(c)] == '/') {
			return true
		}
	}
	return false
}

// clip shortens a path quoted in an error.
func clip(p string) string {
	if len(p) > 200 {
		return p[:200] + "..."
	}
	return p
}
