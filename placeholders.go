package groupidauth

import (
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// Placeholders of a request that passed groupid_auth, for log_append,
// header_down, matchers and anything else that reads Caddy's replacer:
//
//	{http.groupid_auth.credential}        the credential the request was sent with
//	{http.groupid_auth.token_source}      "own" or "shared": who obtained that token
//	{http.groupid_auth.replayed}          true after a replay with a fresh token (401), else false
//	{http.groupid_auth.token_expires_in}  that token's remaining lifetime, whole seconds
//
// credential, token_source and token_expires_in are empty until a token
// was sent with the request (for example when it was refused for lack of
// one). replayed is a boolean and token_expires_in a number: JSON true and
// 1187 in a log_append field, "true" and "1187" in a header.
//
// They cost one small allocation per client request and nothing per
// lookup of any other placeholder beyond a prefix test: the first
// groupid_auth a request passes adds one provider to the request's
// replacer, which reads the request's record when a placeholder is
// evaluated (as Caddy reads {http.vars.*}); nothing is computed or stored
// for a request whose placeholders are never read.
const placeholderPrefix = "http.groupid_auth."

// requestRecord is what the groupid_auth handlers of one client request
// record about it, shared by nested handlers (the outermost passage holds
// it): written by the round trips, read by the placeholders.
type requestRecord struct {
	// replayed is set once the request was replayed after a 401 (at most
	// one replay per client request).
	replayed atomic.Bool
	// cred and tok are the credential and token of the last round trip
	// that sent a token.
	cred atomic.Pointer[credential]
	tok  atomic.Pointer[tokencache.Token]
}

// sent records a round trip that carries tok of cred.
func (cr *requestRecord) sent(cred *credential, tok *tokencache.Token) {
	cr.cred.Store(cred)
	cr.tok.Store(tok)
}

// provide adds the request's placeholders to repl (nil: none).
func (cr *requestRecord) provide(repl *caddy.Replacer) {
	if repl != nil {
		repl.Map(cr.placeholder)
	}
}

// placeholder is the replacer provider: the value of key if it is one of
// the placeholders above.
func (cr *requestRecord) placeholder(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, placeholderPrefix)
	if !ok {
		return nil, false
	}
	if name == "replayed" {
		return cr.replayed.Load(), true
	}
	cred, tok := cr.cred.Load(), cr.tok.Load()
	switch name {
	case "credential":
		if cred == nil {
			return "", true
		}
		return cred.info.Name, true
	case "token_source":
		switch {
		case tok == nil:
			return "", true
		case tok.Shared:
			return "shared", true
		}
		return "own", true
	case "token_expires_in":
		if tok == nil || cred == nil {
			return "", true
		}
		return wholeSeconds(tok.Expiry.Sub(cred.clock.Now())), true
	}
	return nil, false
}
