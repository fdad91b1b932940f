package tokencache

import "time"

// origin says where a published token came from.
type origin int

const (
	// fetched: the Source's own token request; reported as an EventToken.
	fetched origin = iota + 1
	// adopted: read from shared storage, obtained by another replica (no
	// token request); reported as an EventAdopt.
	adopted
)

// publish makes tok the Source's token, whichever way it came: the one
// step for a fetched token (record) and an adopted one (adopt), so that
// the two cannot drift. Tokens belong to the grant in use (after re-read
// secrets are adopted, a Source created for the new grant by a reload
// finds them); tok is served, with its expiry timer armed, kept as the
// newest token and put in the Store; the run of failures ends; the next
// attempt is scheduled. Then the Event is reported, and the callers
// waiting for an attempt are woken. req is the token request that
// obtained a fetched token (zero for an adopted one). Refresh goroutine
// only.
func (s *Source) publish(tok *Token, from origin, req sent, now time.Time) {
	ev := Event{Kind: EventToken, GrantType: req.grantType, Duration: req.took, Expiry: tok.Expiry,
		LifetimeFrom: tok.LifetimeFrom, LifetimeNote: tok.LifetimeNote}
	s.mu.Lock()
	// For an adopted token this changes nothing: the policy's key changes
	// only during a token request, whose outcome record publishes (or
	// fails) before the refresh goroutine can adopt anything.
	s.key = s.policy.key
	s.serveLocked(tok, now)
	s.last.Store(tok)
	s.opts.Store.Put(s.key, tok, now)
	ev.First, ev.Recovered = !s.everHad, s.lastErr != nil
	s.everHad = true
	s.lastErr = nil
	s.failures = 0
	s.nextAttempt = s.refreshAt(tok, now)
	if from == adopted {
		ev.Kind, ev.GrantType = EventAdopt, tok.GrantType
		// The replica that obtained the token refreshes it; this one
		// waits longer by the jitter's span (still half the margin before
		// expiry), and normally adopts the refreshed token before its own
		// turn comes. So the cluster keeps one refresher and refreshes as
		// one replica would.
		s.nextAttempt = s.nextAttempt.Add(RefreshMargin(tok.Lifetime(), s.opts.RefreshBefore) / 2)
	}
	done := s.endAttemptLocked()
	ev.Condition = s.conditionLocked()
	s.mu.Unlock()
	// Observe first, then wake the waiters: a log line is written before
	// anyone acts on what it reports.
	s.emit(ev)
	close(done)
}

// fail records the failure err of the token request req: it is kept, and
// the next attempt is scheduled after a backoff (longer for rejected
// credentials). The token served, if any, stays served until it expires.
// Then the EventFailure is reported and the callers waiting for the
// attempt are woken. Refresh goroutine only.
func (s *Source) fail(err *Error, req sent, now time.Time) {
	ev := Event{Kind: EventFailure, GrantType: req.grantType, Duration: req.took, Err: err}
	s.mu.Lock()
	s.key = s.policy.key // see publish
	s.failures++
	b := s.opts.TransientBackoff
	if err.Class == ClassRejected {
		b = s.opts.RejectedBackoff
	}
	ev.Changed = s.lastErr == nil || s.lastErr.Class != err.Class || s.lastErr.Code != err.Code || s.lastErr.StatusCode != err.StatusCode
	s.lastErr = err
	s.nextAttempt = now.Add(b.Delay(s.failures, s.opts.Rand()))
	ev.RetryAt = s.nextAttempt
	done := s.endAttemptLocked()
	ev.Condition = s.conditionLocked()
	s.mu.Unlock()
	// Observe first, then wake the waiters: a log line about a failure is
	// written before any request is refused because of it.
	s.emit(ev)
	close(done)
}

// endAttemptLocked ends the attempt in flight, if any: it returns the
// channel to close (after the lock is released) to wake the callers
// waiting for it, and gives later callers a new one. Call with s.mu held.
func (s *Source) endAttemptLocked() chan struct{} {
	s.attempting = false
	done := s.attemptDone
	s.attemptDone = make(chan struct{})
	return done
}
