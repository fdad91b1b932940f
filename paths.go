package groupidauth

import "strings"

// unsafePath reports whether p has a "." or ".." segment or a backslash.
// Caddy's path matchers test the cleaned path but reverse_proxy forwards
// the raw one, and IIS treats a backslash as a slash, so such a path could
// steer the token to a URL the matcher never allowed.
func unsafePath(p string) bool {
	if strings.IndexByte(p, '\\') >= 0 {
		return true
	}
	// Only a "/." can start a dot segment; most paths have none.
	for i := strings.Index(p, "/."); i >= 0; {
		j := i + 2
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
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
