package tokencache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MinRefreshInterval is the shortest time between two scheduled refreshes,
// whatever lifetime the server claims.
const MinRefreshInterval = time.Second

// run is the refresh goroutine: it makes every token request of the
// Source, when one is due, until the Source is closed.
func (s *Source) run() {
	defer close(s.done)
	woken := false
	for {
		if s.due(woken) {
			s.attempt()
		} else if s.opts.Shared != nil && !s.clock.Now().Before(s.nextCheck) && s.ctx.Err() == nil {
			s.check()
		}
		woken = false
		s.mu.Lock()
		now := s.clock.Now()
		wait := s.nextAttempt.Sub(now)
		s.mu.Unlock()
		if s.opts.Shared != nil {
			if !now.Before(s.nextCheck) {
				s.nextCheck = now.Add(s.checkInterval(s.last.Load()))
			}
			wait = min(wait, s.nextCheck.Sub(now))
		}
		if wait < 0 {
			wait = 0
		}
		t := s.clock.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		case <-s.wake:
			t.Stop()
			woken = true
		}
	}
}

// due reports whether a token request should be made now: its scheduled
// time has come, or a caller needs a token and no backoff is pending.
func (s *Source) due(woken bool) bool {
	if s.ctx.Err() != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if s.force.Swap(false) {
		s.forced = true
		return true
	}
	if s.dropped.Load() != nil {
		// A token dropped after a 401: get a fresh one now, whatever
		// backoff older failures left (the drop budget bounds these).
		return true
	}
	if !now.Before(s.nextAttempt) {
		return true
	}
	return woken && !s.cur.Load().ValidAt(now) && s.lastErr == nil
}

// attempt makes one attempt through the grant policy and records its
// outcome. Only the refresh goroutine calls it.
func (s *Source) attempt() {
	s.mu.Lock()
	s.attempting = true
	s.mu.Unlock()

	dropped, forced := s.dropped.Swap(nil), s.forced
	s.forced = false
	if s.dropRefresh.Swap(false) {
		s.policy.forgetRefreshToken()
	}
	if s.policy.refreshFailures > 0 && !s.cur.Load().ValidAt(s.clock.Now()) {
		// The held token expired while refreshes failed: the password
		// grant now, at the latest (see MaxRefreshFailures).
		s.policy.forgetRefreshToken()
	}
	var (
		tok *Token
		req sent
		err *Error
	)
	if s.opts.Shared != nil {
		var settled bool
		tok, req, err, settled = s.sharedAttempt(dropped, forced)
		if settled && s.ctx.Err() == nil {
			return
		}
	} else {
		tok, req, err = s.policy.attempt(s.ctx)
	}
	if s.ctx.Err() != nil {
		// Closed while the request was in flight: nothing to record.
		s.mu.Lock()
		s.attempting = false
		s.mu.Unlock()
		return
	}
	s.record(tok, req, err)
}

// record publishes the outcome of an attempt: the token (see publish), or
// the failure (see fail).
func (s *Source) record(tok *Token, req sent, err *Error) {
	now := s.clock.Now()
	if err != nil {
		s.fail(err, req, now)
		return
	}
	s.publish(tok, fetched, req, now)
}

// fetch makes one token request with the Source's client (the grant
// policy's fetchFunc), measures it and traces it (Options.Trace).
func (s *Source) fetch(ctx context.Context, g Grant, refreshToken string) (*Token, time.Duration, *Error) {
	start := s.clock.Now()
	// The tokens held are credentials too: a failure must not quote them.
	var held []string
	for _, t := range []*Token{s.cur.Load(), s.last.Load()} {
		if t != nil {
			held = append(held, t.AccessToken, t.RefreshToken)
		}
	}
	ctx, traced := s.traceStart(ctx, refreshToken)
	tok, err := fetchSafely(ctx, s.opts.Client, g, refreshToken, start, held...)
	end := s.clock.Now()
	status := statusOf(err)
	if err == nil {
		err = unusableOnArrival(tok, start, end)
	}
	if err != nil {
		tok = nil
	}
	if traced != nil {
		traced(TokenResult{StatusCode: status, Err: err})
	}
	return tok, end.Sub(start), err
}

// unusableOnArrival fails a token that has expired, or has less than
// MinRefreshInterval left, by the time its answer arrived (a tiny
// expires_in or exp, a slow answer): serving it would refuse every request, and
// counting it a success would send the next request at once. It is a
// transient failure, retried with backoff, that names the cause.
func unusableOnArrival(tok *Token, start, end time.Time) *Error {
	if tok.ValidAt(end.Add(MinRefreshInterval)) {
		return nil
	}
	return &Error{Class: ClassTransient, GrantType: tok.GrantType, Reason: fmt.Sprintf(
		"token unusable on arrival: lifetime %s (from %s) from the request, the answer took %s, less than %s left",
		tok.Lifetime().Round(time.Millisecond), tok.LifetimeFrom, end.Sub(start).Round(time.Millisecond), MinRefreshInterval)}
}

// fetchSafely calls c.Fetch, turning a panic or an error that is not an
// *Error into a transient *Error, so that the refresh goroutine survives.
// The *Error returned is a copy scrubbed of the request's secrets and of
// held (the tokens the caller holds). A panic's value is not quoted (it
// could hold anything, a secret included): only its type is named.
func fetchSafely(ctx context.Context, c *Client, g Grant, refreshToken string, now time.Time, held ...string) (*Token, *Error) {
	grantType := grantTypeOf(refreshToken)
	var tok *Token
	var err error
	if r := recovered(func() { tok, err = c.Fetch(ctx, g, refreshToken, now) }); r != nil {
		return nil, &Error{Class: ClassTransient, GrantType: grantType, Reason: fmt.Sprintf("internal error (panic with a %T)", r)}
	}
	if err == nil {
		return tok, nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return nil, &Error{Class: ClassTransient, GrantType: grantType, Reason: "unexpected error"}
	}
	cp := *e
	newRedactor(append(requestSecrets(g, refreshToken), held...)...).scrub(&cp)
	return nil, &cp
}

// recovered runs f and returns the value it panicked with, or nil.
func recovered(f func()) any {
	var r any
	func() {
		defer func() { r = recover() }()
		f()
	}()
	return r
}

// emit reports ev to the Observer, if any.
func (s *Source) emit(ev Event) {
	if s.opts.Observer != nil {
		s.opts.Observer(ev)
	}
}

// refreshAt is when the background refresh for tok should run.
func (s *Source) refreshAt(tok *Token, now time.Time) time.Time {
	margin := RefreshMargin(tok.Lifetime(), s.opts.RefreshBefore)
	jitter := time.Duration(s.opts.Rand() * float64(margin) / 2)
	at := tok.Expiry.Add(-margin - jitter)
	if floor := now.Add(MinRefreshInterval); at.Before(floor) {
		at = floor
	}
	return at
}

// RefreshMargin is how long before expiry the refresh of a token with the
// given lifetime is scheduled, before jitter: refreshBefore, or a quarter
// of the lifetime when it is zero, capped at half the lifetime.
func RefreshMargin(lifetime, refreshBefore time.Duration) time.Duration {
	margin := refreshBefore
	if margin <= 0 {
		margin = lifetime / 4
	}
	return min(margin, lifetime/2)
}

// RefreshInterval is the range of times from a token's issue to its
// scheduled refresh: the lifetime less the margin, less a random extra of
// up to half the margin. Ignores the MinRefreshInterval floor.
func RefreshInterval(lifetime, refreshBefore time.Duration) (shortest, longest time.Duration) {
	margin := RefreshMargin(lifetime, refreshBefore)
	return lifetime - margin - margin/2, lifetime - margin
}
