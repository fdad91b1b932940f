package groupidauth

import (
	"maps"
	"net/http"
	"net/textproto"
	"strings"
)

// overrideHeaders are request headers that IIS modules and some frameworks
// honour to change the URL or method a request is handled as. They could
// steer a request that carries the service token to another API, so they
// never travel with it. Compared after mapping '_' to '-' and ignoring case:
// IIS exposes X_Original_URL and X-Original-URL as the same variable.
var overrideHeaders = [...]string{
	"x-original-url",
	"x-rewrite-url",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
}

// outgoingHeader is the header of a request sent to GroupID with the
// token: a copy of h (value slices shared, never changed) without any
// Authorization field, URL or method override header, or Connection token
// naming Authorization (a hop-by-hop hint that must not remove the token
// downstream), plus Authorization set to auth (shared, never changed).
// The copy is made in the round trip, after every header_up and
// request_header, so nothing added by the config can steer the token
// either. h is only read: it is reverse_proxy's, which logs it and sends
// it again on a retry (see withToken).
//
// The copy is maps.Clone, which copies the map's table as it is (no
// rehashing of each field); the fields that must not travel are then
// deleted from the copy in one pass over it. Every key is looked at, not
// only the canonical spellings: a module may have set a field under any
// spelling.
func outgoingHeader(h http.Header, auth []string) http.Header {
	out := maps.Clone(h)
	if out == nil {
		out = make(http.Header, 1)
	}
	scrubHeader(out, auth)
	return out
}

// scrubHeader is outgoingHeader's hygiene done on h itself: for a header
// map that nothing has sent or will read for the client (see
// passage.tokenRequest).
func scrubHeader(out http.Header, auth []string) {
	for k, v := range out {
		switch {
		case len(k) < len("Connection"):
		case k == "Connection":
			if kept := keepConnectionTokens(v); len(kept) == 0 {
				delete(out, k)
			} else {
				out[k] = kept
			}
		case len(k) == len("Authorization") && strings.EqualFold(k, "Authorization"):
			delete(out, k)
		// Every override header starts with X and is 13 to 22 bytes long.
		case len(k) >= 13 && len(k) <= 22 && k[0]|0x20 == 'x' && isOverrideHeader(k):
			delete(out, k)
		}
	}
	out["Authorization"] = auth
}

func isOverrideHeader(k string) bool {
	for _, o := range overrideHeaders {
		if sameOverrideName(k, o) {
			return true
		}
	}
	return false
}

// sameOverrideName reports whether k is o (lower case, with '-') in any
// case and with '_' for any '-', without allocating.
func sameOverrideName(k, o string) bool {
	if len(k) != len(o) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != o[i] {
			return false
		}
	}
	return true
}

// keepConnectionTokens returns the Connection values without any token that
// names Authorization, read the way reverse_proxy reads them (comma
// separated, trimmed, case-insensitive). Values without such a token are
// returned as they are.
func keepConnectionTokens(values []string) []string {
	dirty := false
	for _, v := range values {
		if namesAuthorization(v) {
			dirty = true
			break
		}
	}
	if !dirty {
		return values
	}
	var out []string
	for _, v := range values {
		var kept []string
		for tok := range strings.SplitSeq(v, ",") {
			if t := textproto.TrimString(tok); t != "" && !strings.EqualFold(http.CanonicalHeaderKey(t), "Authorization") {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, ", "))
		}
	}
	return out
}

// namesAuthorization reports whether a Connection value might name the
// Authorization header (a cheap, case-insensitive substring test).
func namesAuthorization(v string) bool {
	const name = "authorization"
	for i := 0; i+len(name) <= len(v); i++ {
		if strings.EqualFold(v[i:i+len(name)], name) {
			return true
		}
	}
	return false
}
