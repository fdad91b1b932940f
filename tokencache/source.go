package tokencache

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache/clock"
)

// Options configure a Source. Only Grant and Client are required.
type Options struct {
	Grant  Grant
	Client *Client
	// Store shares tokens between Sources; nil gives the Source a private one.
	Store *Store
	// Clock defaults to SystemClock.
	Clock Clock
	// RefreshBefore is how long before expiry the background refresh runs.
	// Zero means a quarter of the token's lifetime (300 s for GroupID's
	// 1200 s tokens, 1.25 s for 5 s test tokens). It is capped at half the
	// lifetime. A random extra of up to half the margin is added, so
	// replicas started together do not refresh together.
	RefreshBefore time.Duration
	// TransientBackoff and RejectedBackoff default to the package defaults.
	TransientBackoff Backoff
	RejectedBackoff  Backoff
	// Rand returns numbers in [0, 1) for jitter; defaults to math/rand/v2.
	Rand func() float64
	// Observer, if set, is called from the refresh goroutine after every
	// token request. It must not block for long.
	Observer func(Event)
	// Reread, if set, is called when a password grant is rejected. It
	// returns the grant with its secrets read again (for example from
	// files that a Kubernetes Secret update has replaced) and whether they
	// changed; if they did, the password grant is retried once at once with
	// the new values, which are kept for later requests.
	Reread func() (Grant, bool)
	// Trace, if set, is told of every token request (see TraceFunc); an
	// adopted shared token is no request and is not traced.
	Trace TraceFunc

	// Shared, if set, shares the token with the other replicas of a
	// cluster (see Shared): a newer shared token is adopted, a refresh
	// happens under the storage lock with the shared refresh token, and
	// its result is stored. Nil: the Source works alone.
	Shared Shared
	// ShareLockTimeout bounds the wait for the storage lock and each
	// storage call (wall time). Default: DefaultShareLockTimeout.
	ShareLockTimeout time.Duration
	// ShareCheckInterval is how often storage is read for a newer token.
	// Default: a tenth of the token's lifetime, at most
	// MaxShareCheckInterval; never under MinShareCheckInterval.
	ShareCheckInterval time.Duration
}

// Source keeps one credential's token fresh. Token is safe for concurrent
// use; every token request is made by the Source's own goroutine, one at a
// time.
type Source struct {
	opts  Options
	clock Clock

	// cur is the token callers get. Its expiry timer clears it when it
	// expires, even while a token request is in flight, so reading it
	// needs no clock. Set it with serveLocked only.
	cur atomic.Pointer[Token]
	// last is the newest token obtained, kept for status pages after cur
	// is cleared.
	last atomic.Pointer[Token]

	// mu guards the fields below it, up to and including expiry.
	mu sync.Mutex
	// key is the Store key of the grant in use: opts.Grant's, then that
	// of re-read secrets once the grant policy has adopted them.
	key         string
	lastErr     *Error
	nextAttempt time.Time
	attempting  bool
	attemptDone chan struct{} // closed when the current or next attempt ends
	closed      bool
	// invalidations are the times of recent Invalidate drops.
	invalidations []time.Time
	// drops counts the tokens Invalidate dropped, ever.
	drops uint64
	// expiry is the timer that stops serving cur when it expires; every
	// armed expiry timer is counted in expiries until it has run or been
	// stopped, so that Close can wait for it.
	expiry   clock.Timer
	expiries sync.WaitGroup

	wake    chan struct{}
	started atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	// dropRefresh asks the refresh goroutine to forget its refresh token:
	// after a 401 on a valid token the whole token family is suspect.
	dropRefresh atomic.Bool
	// force asks for a token request now, even during a backoff.
	force atomic.Bool
	// dropped is the token Invalidate dropped, for the refresh goroutine
	// (with sharing, the shared entry is cleared only if it still holds it).
	dropped atomic.Pointer[Token]

	// counters count the use of shared storage.
	counters struct{ lockWaits, storageErrors, fallbacks atomic.Uint64 }

	// owned by the refresh goroutine
	policy   *grantPolicy
	failures int
	everHad  bool
	// forced is set by due when the attempt was asked for by ForceRefresh.
	forced bool
	// underLock is set while sharedAttempt makes token requests under the
	// shared storage lock (TokenRequest.Shared).
	underLock bool
	// nextCheck is when storage is next read for a newer shared token.
	nextCheck time.Time
	// shareState is the storage condition last reported.
	shareState ShareState
	// lastLoadCorrupt is set when the last Load found an entry that cannot
	// be decrypted or decoded.
	lastLoadCorrupt bool
}

// New returns a Source for opts. If opts.Store holds a valid token for the
// grant, the Source starts with it and makes no request until its refresh
// is due. Call Start to begin, Close to stop.
func New(opts Options) *Source {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Store == nil {
		opts.Store = NewStore()
	}
	if opts.TransientBackoff.Min <= 0 {
		opts.TransientBackoff = DefaultTransientBackoff
	}
	if opts.RejectedBackoff.Min <= 0 {
		opts.RejectedBackoff = DefaultRejectedBackoff
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.ShareLockTimeout <= 0 {
		opts.ShareLockTimeout = DefaultShareLockTimeout
	}
	s := &Source{
		shareState:  ShareOK,
		opts:        opts,
		clock:       opts.Clock,
		attemptDone: make(chan struct{}),
		wake:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	s.policy = newGrantPolicy(opts.Grant, opts.Reread, s.fetch, s.emit)
	s.key = s.policy.key
	s.ctx, s.cancel = context.WithCancel(context.Background())
	now := s.clock.Now()
	s.nextAttempt = now
	if t := opts.Store.Get(s.key); t.ValidAt(now) {
		// A refresh token may be in use by another Source of the same
		// grant; reusing a one-time refresh token can revoke the family,
		// so a seeded Source starts its chain with a password grant.
		s.mu.Lock()
		s.serveLocked(t, now)
		s.mu.Unlock()
		s.last.Store(t)
		s.everHad = true
		s.nextAttempt = s.refreshAt(t, now)
	}
	return s
}

// Key is the keyed hash of the grant in use, under which the Source keeps
// its token in the Store: that of Options.Grant until re-read secrets
// (Options.Reread) are adopted, theirs after.
func (s *Source) Key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// Start launches the refresh goroutine; if no valid token is held it makes
// the first request at once (warm-up).
func (s *Source) Start() {
	if s.started.CompareAndSwap(false, true) {
		go s.run()
	}
}

// Close stops the refresh goroutine, aborting any request in flight, and
// waits for it to end. Waiting callers get a NoTokenError.
func (s *Source) Close() {
	s.cancel()
	if s.started.Load() {
		<-s.done
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.attemptDone)
	}
	s.stopExpiryLocked()
	s.cur.Store(nil)
	s.mu.Unlock()
	s.expiries.Wait()
}

// Current returns the newest token obtained, valid or not, without waiting.
func (s *Source) Current() *Token { return s.last.Load() }

// Token returns a valid token. While one is held this is one atomic load:
// no lock and no clock read (a timer of its own drops the token when it
// expires, to within the timer's precision, also while a token request is
// in flight). Otherwise it waits for the request in flight (or starts one
// if no backoff is pending), up to ctx; in backoff it fails at once with a
// *NoTokenError saying when the next attempt is.
func (s *Source) Token(ctx context.Context) (*Token, error) {
	if t := s.cur.Load(); t != nil {
		return t, nil
	}
	return s.slowToken(ctx)
}

// serveLocked makes tok the token that Token hands out and arms its expiry
// timer, which stops serving it at tok.Expiry unless another token has
// replaced it by then. A closed Source serves nothing. Call with s.mu held.
func (s *Source) serveLocked(tok *Token, now time.Time) {
	s.stopExpiryLocked()
	if s.closed {
		return
	}
	s.cur.Store(tok)
	s.expiries.Add(1)
	s.expiry = s.clock.AfterFunc(tok.Expiry.Sub(now), func() {
		defer s.expiries.Done()
		s.cur.CompareAndSwap(tok, nil)
	})
}

// stopExpiryLocked stops the expiry timer of the served token, if it has
// not run yet. Call with s.mu held.
func (s *Source) stopExpiryLocked() {
	if s.expiry != nil && s.expiry.Stop() {
		s.expiries.Done()
	}
	s.expiry = nil
}

// slowToken is Token when no token is served: it waits for an attempt
// (at most one), or fails at once during a backoff.
func (s *Source) slowToken(ctx context.Context) (*Token, error) {
	waited := false
	for {
		s.mu.Lock()
		now := s.clock.Now()
		if t := s.cur.Load(); t.ValidAt(now) {
			s.mu.Unlock()
			return t, nil
		}
		if s.closed {
			s.mu.Unlock()
			return nil, &NoTokenError{Last: s.lastErr, Cause: ErrClosed}
		}
		inBackoff := s.lastErr != nil && !s.attempting && now.Before(s.nextAttempt) && s.dropped.Load() == nil
		if waited || inBackoff {
			err := &NoTokenError{Last: s.lastErr, RetryAt: s.nextAttempt}
			s.mu.Unlock()
			return nil, err
		}
		done := s.attemptDone
		s.mu.Unlock()
		s.kick()
		select {
		case <-done:
			waited = true
		case <-ctx.Done():
			s.mu.Lock()
			err := &NoTokenError{Last: s.lastErr, RetryAt: s.nextAttempt, Cause: ctx.Err()}
			s.mu.Unlock()
			return nil, err
		}
	}
}

// Serving returns the token Token hands out now without waiting, or nil:
// one atomic load.
func (s *Source) Serving() *Token { return s.cur.Load() }

// MaxInvalidations is how many tokens Invalidate may drop within
// InvalidationWindow. If GroupID rejects every fresh token (wrong audience,
// clock skew), 401s would otherwise turn request traffic into token
// requests; past the limit the token is kept and the 401s pass through.
const (
	MaxInvalidations   = 3
	InvalidationWindow = time.Minute
)

// Invalidate drops tok if it is still the current token (the upstream
// answered 401 to it) and wakes the refresh goroutine to get a new one at
// once, even during a backoff left by earlier failures.
// It reports whether tok was dropped; it is not dropped if it is no longer
// current, or if MaxInvalidations drops happened in the last
// InvalidationWindow.
func (s *Source) Invalidate(tok *Token) bool {
	dropped, _ := s.Drop(tok)
	return dropped
}

// Drop is Invalidate that also returns the Source's condition right after
// the drop (when tok was dropped): computed with it, before the token
// request the drop asks for can change it.
func (s *Source) Drop(tok *Token) (dropped bool, after Condition) {
	if tok == nil || s.cur.Load() != tok {
		return false, ""
	}
	s.mu.Lock()
	now := s.clock.Now()
	recent := s.invalidations[:0]
	for _, at := range s.invalidations {
		if now.Sub(at) < InvalidationWindow {
			recent = append(recent, at)
		}
	}
	s.invalidations = recent
	if len(recent) >= MaxInvalidations || !s.cur.CompareAndSwap(tok, nil) {
		s.mu.Unlock()
		return false, ""
	}
	s.invalidations = append(s.invalidations, now)
	s.drops++
	key := s.key
	// Marked before the lock is released: a caller that finds no token
	// served waits for the request the drop asks for, even during a
	// backoff earned by an older failure (a 401 is new information).
	s.dropped.Store(tok)
	s.dropRefresh.Store(true)
	after = s.conditionLocked()
	s.mu.Unlock()
	s.opts.Store.Delete(key)
	s.kick()
	return true, after
}

// ForceRefresh asks the refresh goroutine for a token request now, even
// during a backoff (an operator's action). The current token stays in use
// until the new one arrives.
func (s *Source) ForceRefresh() {
	s.force.Store(true)
	s.kick()
}

// State is a snapshot of a Source for status pages.
type State struct {
	// Serving is the token Token hands out right now without waiting, or
	// nil: the one definition of "a valid token is held". A token dropped
	// after a 401, expired, or from a closed Source is not served.
	Serving *Token
	// Newest is the newest token obtained, served or not (for its expiry
	// and age on status pages).
	Newest      *Token
	LastErr     *Error
	NextAttempt time.Time
	Attempting  bool
	// Condition is computed from Serving, LastErr and Attempting of this
	// same snapshot; Condition.Serving() is Serving != nil.
	Condition Condition
	// Drops is how many tokens Invalidate has dropped (the upstream
	// answered 401 to them) since the Source was made.
	Drops uint64
}

// State returns a snapshot.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Serving: s.cur.Load(), Newest: s.last.Load(), LastErr: s.lastErr, NextAttempt: s.nextAttempt, Attempting: s.attempting, Drops: s.drops}
	st.Condition = conditionOf(st.Serving, st.LastErr, st.Attempting)
	return st
}

// conditionLocked is the Source's condition now. Call with s.mu held.
func (s *Source) conditionLocked() Condition {
	return conditionOf(s.cur.Load(), s.lastErr, s.attempting)
}

func (s *Source) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
