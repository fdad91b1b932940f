package groupidauth

import (
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

// scrubRequest prepares a request to carry the token: it removes the URL
// and method override headers, removes "Authorization" from the Connection
// header (reverse_proxy deletes every header a client names there, after
// this handler set the token), and drops request trailers (a trailer named
// Authorization would follow the body to the upstream).
func scrubRequest(r *http.Request) {
	// One pass over the client's headers (most requests have a handful).
	for k, v := range r.Header {
		switch {
		case len(k) < len("Connection"):
		case k == "Connection":
			if kept := keepConnectionTokens(v); len(kept) == 0 {
				delete(r.Header, k)
			} else {
				r.Header[k] = kept
			}
		// Every override header starts with X and is 13 to 22 bytes long.
		case len(k) >= 13 && len(k) <= 22 && k[0]|0x20 == 'x' && isOverrideHeader(k):
			delete(r.Header, k)
		}
	}
	r.Trailer = nil
}

func isOverrideHeader(k string) bool {
	norm := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
	for _, o := range overrideHeaders {
		if norm == o {
			return true
		}
	}
	return false
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
