package tokencache

import (
	"context"
	"strings"
	"time"
)

// fetchFunc makes one token request: with the refresh_token grant when
// refreshToken is not empty, else with the password grant. It reports how
// long the request took. A Source's fetchFunc is Source.fetch; tests script
// one.
type fetchFunc func(ctx context.Context, g Grant, refreshToken string) (*Token, time.Duration, *Error)

// sent describes the last token request of an attempt, for its Event.
type sent struct {
	grantType string
	took      time.Duration
}

// grantPolicy is GroupID's grant policy: which grant to send, and what to
// do when it is refused. It owns the grant, the refresh token, the
// offline_access addition and the Reread hook. It is not safe for
// concurrent use: a Source's refresh goroutine is its only user.
type grantPolicy struct {
	grant Grant
	// key is grant.Key(), kept in step with grant.
	key          string
	refreshToken string
	// addOffline is set while offline_access is added to a configured
	// scope that lacks it (to get refresh tokens); cleared for good if
	// the server answers invalid_scope.
	addOffline bool
	// refreshFailures counts the transient failures of the refresh grant
	// since its last success (see MaxRefreshFailures).
	refreshFailures int
	// reread, if set, returns the grant with its secrets read again and
	// whether they changed (Options.Reread).
	reread func() (Grant, bool)
	fetch  fetchFunc
	// emit receives the EventFallback notice; it may be nil.
	emit func(Event)
}

// newGrantPolicy returns the policy for g, starting without a refresh
// token (so that its first request is a password grant).
func newGrantPolicy(g Grant, reread func() (Grant, bool), fetch fetchFunc, emit func(Event)) *grantPolicy {
	return &grantPolicy{
		grant:      g,
		key:        g.Key(),
		addOffline: g.Scope != "" && !hasScope(g.Scope, "offline_access"),
		reread:     reread,
		fetch:      fetch,
		emit:       emit,
	}
}

// MaxRefreshFailures is how many transient failures in a row the refresh
// grant may have before the refresh token is given up and the next attempt
// is a password grant: a token endpoint that keeps failing refreshes only
// (a broken refresh-token store, say) must not keep the sidecar from a
// token while the password grant works.
const MaxRefreshFailures = 2

// forgetRefreshToken makes the next attempt a password grant: after a 401
// on a valid token the whole token family is suspect, and after the held
// token expired while refreshes failed the refresh token is no help.
func (p *grantPolicy) forgetRefreshToken() { p.refreshToken, p.refreshFailures = "", 0 }

// attempt makes one attempt at a token. It sends the refresh token if it
// holds one; a refused refresh token is forgotten and a password grant
// follows at once (after an EventFallback). A transient failure of the
// refresh grant ends the attempt and keeps the refresh token, unless it is
// the MaxRefreshFailures-th in a row: then the token is forgotten and the
// next attempt is a password grant. A password
// grant refused with invalid_scope while offline_access was added is sent
// once more without it, and offline_access is never added again. A
// refused password grant is sent once more if Reread reports changed
// secrets, which are kept. On success the token's refresh token replaces
// the held one.
func (p *grantPolicy) attempt(ctx context.Context) (*Token, sent, *Error) {
	if p.refreshToken != "" {
		tok, s, err := p.send(ctx, p.refreshToken)
		if err == nil {
			p.refreshToken, p.refreshFailures = tok.RefreshToken, 0
			return tok, s, nil
		}
		if err.Class != ClassRejected {
			if p.refreshFailures++; p.refreshFailures >= MaxRefreshFailures {
				p.forgetRefreshToken()
			}
			return nil, s, err
		}
		p.forgetRefreshToken()
		if p.emit != nil {
			p.emit(Event{Kind: EventFallback, GrantType: s.grantType, Err: err, Duration: s.took})
		}
	}
	tok, s, err := p.send(ctx, "")
	if err != nil && p.addOffline && err.Code == "invalid_scope" {
		// The client may not have offline_access: ask for the configured
		// scope alone from now on.
		p.addOffline = false
		tok, s, err = p.send(ctx, "")
	}
	if err != nil && err.Class == ClassRejected && p.reread != nil {
		if g, changed := p.reread(); changed {
			p.adopt(g)
			tok, s, err = p.send(ctx, "")
		}
	}
	if err != nil {
		return nil, s, err
	}
	p.refreshToken, p.refreshFailures = tok.RefreshToken, 0
	return tok, s, nil
}

// adopt makes g the grant for this and later requests.
func (p *grantPolicy) adopt(g Grant) {
	p.grant = g
	p.key = g.Key()
	// offline_access is only ever dropped, never added back.
	p.addOffline = p.addOffline && !hasScope(g.Scope, "offline_access")
}

// send makes one request with the grant as configured (offline_access
// added while addOffline is set).
func (p *grantPolicy) send(ctx context.Context, refreshToken string) (*Token, sent, *Error) {
	g := p.grant
	if p.addOffline {
		g.Scope += " offline_access"
	}
	s := sent{grantType: grantTypeOf(refreshToken)}
	tok, took, err := p.fetch(ctx, g, refreshToken)
	s.took = took
	return tok, s, err
}

// grantTypeOf is the grant_type a request with refreshToken sends.
func grantTypeOf(refreshToken string) string {
	if refreshToken != "" {
		return "refresh_token"
	}
	return "password"
}

// hasScope reports whether the space-separated list holds scope.
func hasScope(list, scope string) bool {
	for _, s := range strings.Fields(list) {
		if s == scope {
			return true
		}
	}
	return false
}
