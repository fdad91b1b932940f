package tokencache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MinRefreshInterval is the shortest time between two scheduled refreshes,
// whatever lifetime the server claims.
const MinRefreshInterval = time.Second

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
}

// EventKind says what an Event reports.
type EventKind int

const (
	// EventToken: a token request succeeded.
	EventToken EventKind = iota + 1
	// EventFailure: a token request failed.
	EventFailure
	// EventFallback: a refresh token was refused; a password grant follows.
	EventFallback
)

// Event describes one token request, for logs and metrics. It holds no
// secret and no token.
type Event struct {
	Kind      EventKind
	GrantType string
	Err       *Error
	Duration  time.Duration
	// Expiry of the new token (EventToken).
	Expiry time.Time
	// RetryAt is the next scheduled attempt (EventFailure).
	RetryAt time.Time
	// First is set on the first token this Source obtained.
	First bool
	// Recovered is set on a success that ends a run of failures.
	Recovered bool
	// Changed is set on a failure whose class or code differs from the
	// previous one (or that follows a success): log these, not every retry.
	Changed bool
}

// Source keeps one credential's token fresh. Token is safe for concurrent
// use; every token request is made by the Source's own goroutine, one at a
// time.
type Source struct {
	opts  Options
	key   string
	clock Clock

	// cur is the token callers get. The refresh goroutine clears it when
	// it expires (it wakes up for that), so reading it needs no clock.
	cur atomic.Pointer[Token]
	// last is the newest token obtained, kept for status pages after cur
	// is cleared.
	last atomic.Pointer[Token]

	mu          sync.Mutex
	lastErr     *Error
	nextAttempt time.Time
	attempting  bool
	attemptDone chan struct{} // closed when the current or next attempt ends
	closed      bool
	// invalidations are the times of recent Invalidate drops.
	invalidations []time.Time

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

	// owned by the refresh goroutine
	grant        Grant
	refreshToken string
	// addOffline is set while offline_access is added to a configured
	// scope that lacks it (to get refresh tokens); cleared for good if
	// the server answers invalid_scope.
	addOffline bool
	failures   int
	everHad    bool
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
	s := &Source{
		opts:        opts,
		key:         opts.Grant.Key(),
		grant:       opts.Grant,
		addOffline:  opts.Grant.Scope != "" && !hasScope(opts.Grant.Scope, "offline_access"),
		clock:       opts.Clock,
		attemptDone: make(chan struct{}),
		wake:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	now := s.clock.Now()
	s.nextAttempt = now
	if t := opts.Store.Get(s.key); t.ValidAt(now) {
		// A refresh token may be in use by another Source of the same
		// grant; reusing a one-time refresh token can revoke the family,
		// so a seeded Source starts its chain with a password grant.
		s.cur.Store(t)
		s.last.Store(t)
		s.everHad = true
		s.nextAttempt = s.refreshAt(t, now)
	}
	return s
}

// Key is the grant's keyed hash.
func (s *Source) Key() string { return s.key }

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
	s.mu.Unlock()
	// Nothing drops an expiring token any more: stop serving it.
	s.cur.Store(nil)
}

// Current returns the newest token obtained, valid or not, without waiting.
func (s *Source) Current() *Token { return s.last.Load() }

// Token returns a valid token. While one is held this is one atomic load:
// no lock and no clock read (the refresh goroutine drops the token when it
// expires, to within the timer's precision). Otherwise it waits for the
// request in flight (or starts one if no backoff is pending), up to ctx; in
// backoff it fails at once with a *NoTokenError saying when the next
// attempt is.
func (s *Source) Token(ctx context.Context) (*Token, error) {
	if t := s.cur.Load(); t != nil {
		return t, nil
	}
	return s.slowToken(ctx)
}

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
		inBackoff := s.lastErr != nil && !s.attempting && now.Before(s.nextAttempt)
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

// MaxInvalidations is how many tokens Invalidate may drop within
// InvalidationWindow. If GroupID rejects every fresh token (wrong audience,
// clock skew), 401s would otherwise turn request traffic into token
// requests; past the limit the token is kept and the 401s pass through.
const (
	MaxInvalidations   = 3
	InvalidationWindow = time.Minute
)

// Invalidate drops tok if it is still the current token (the upstream
// answered 401 to it) and wakes the refresh goroutine to get a new one.
// It reports whether tok was dropped; it is not dropped if it is no longer
// current, or if MaxInvalidations drops happened in the last
// InvalidationWindow.
func (s *Source) Invalidate(tok *Token) bool {
	if tok == nil || s.cur.Load() != tok {
		return false
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
		return false
	}
	s.invalidations = append(s.invalidations, now)
	s.mu.Unlock()
	s.dropRefresh.Store(true)
	s.opts.Store.Delete(s.key)
	s.kick()
	return true
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
}

// State returns a snapshot.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{Serving: s.cur.Load(), Newest: s.last.Load(), LastErr: s.lastErr, NextAttempt: s.nextAttempt, Attempting: s.attempting}
}

func (s *Source) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Source) run() {
	defer close(s.done)
	woken := false
	for {
		s.dropExpired()
		if s.due(woken) {
			s.attempt()
		}
		woken = false
		s.mu.Lock()
		now := s.clock.Now()
		wait := s.nextAttempt.Sub(now)
		if t := s.cur.Load(); t != nil && t.Expiry.Sub(now) < wait {
			wait = t.Expiry.Sub(now)
		}
		s.mu.Unlock()
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

// dropExpired clears the current token once it has expired, so that
// callers stop getting it.
func (s *Source) dropExpired() {
	if t := s.cur.Load(); t != nil && !s.clock.Now().Before(t.Expiry) {
		s.cur.CompareAndSwap(t, nil)
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
	if s.force.Swap(false) || !now.Before(s.nextAttempt) {
		return true
	}
	return woken && !s.cur.Load().ValidAt(now) && s.lastErr == nil
}

// attempt makes one token request (a refresh, falling back to the password
// grant when the refresh token is refused) and records the outcome.
func (s *Source) attempt() {
	s.mu.Lock()
	s.attempting = true
	s.mu.Unlock()

	if s.dropRefresh.Swap(false) {
		s.refreshToken = ""
	}
	tok, err, grant, took := s.fetch(s.refreshToken)
	if err != nil && s.refreshToken != "" && err.Class == ClassRejected {
		s.refreshToken = ""
		s.emit(Event{Kind: EventFallback, GrantType: grant, Err: err, Duration: took})
		tok, err, grant, took = s.fetch("")
	}
	if err != nil && grant == "password" && s.addOffline && err.Code == "invalid_scope" {
		// The client may not have offline_access: ask for the configured
		// scope alone from now on.
		s.addOffline = false
		tok, err, grant, took = s.fetch("")
	}
	if err != nil && grant == "password" && err.Class == ClassRejected && s.opts.Reread != nil {
		if g, changed := s.opts.Reread(); changed {
			s.grant = g
			tok, err, grant, took = s.fetch("")
		}
	}
	if s.ctx.Err() != nil {
		// Closed while the request was in flight: nothing to record.
		s.mu.Lock()
		s.attempting = false
		s.mu.Unlock()
		return
	}
	now := s.clock.Now()
	ev := Event{GrantType: grant, Duration: took}

	s.mu.Lock()
	if err == nil {
		s.cur.Store(tok)
		s.last.Store(tok)
		s.opts.Store.Put(s.key, tok, now)
		s.refreshToken = tok.RefreshToken
		ev.Kind, ev.Expiry = EventToken, tok.Expiry
		ev.First, ev.Recovered = !s.everHad, s.lastErr != nil
		s.everHad = true
		s.lastErr = nil
		s.failures = 0
		s.nextAttempt = s.refreshAt(tok, now)
	} else {
		s.failures++
		b := s.opts.TransientBackoff
		if err.Class == ClassRejected {
			b = s.opts.RejectedBackoff
		}
		ev.Kind, ev.Err = EventFailure, err
		ev.Changed = s.lastErr == nil || s.lastErr.Class != err.Class || s.lastErr.Code != err.Code || s.lastErr.StatusCode != err.StatusCode
		s.lastErr = err
		s.nextAttempt = now.Add(b.Delay(s.failures, s.opts.Rand()))
		ev.RetryAt = s.nextAttempt
	}
	s.attempting = false
	done := s.attemptDone
	s.attemptDone = make(chan struct{})
	s.mu.Unlock()
	// Observe first, then wake the waiters: a log line about a failure is
	// written before any request is refused because of it.
	s.emit(ev)
	close(done)
}

// fetch makes one request, turning a panic or an unexpected error type into
// a transient *Error so the goroutine survives.
func (s *Source) fetch(refreshToken string) (tok *Token, e *Error, grant string, took time.Duration) {
	grant = "password"
	if refreshToken != "" {
		grant = "refresh_token"
	}
	start := s.clock.Now()
	defer func() {
		took = s.clock.Now().Sub(start)
		if r := recover(); r != nil {
			tok, e = nil, &Error{Class: ClassTransient, GrantType: grant, Reason: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	g := s.grant
	if s.addOffline {
		g.Scope += " offline_access"
	}
	t, err := s.opts.Client.Fetch(s.ctx, g, refreshToken, start)
	if err != nil {
		if !errors.As(err, &e) {
			e = &Error{Class: ClassTransient, GrantType: grant, Reason: "unexpected error"}
		}
		return nil, e, grant, 0
	}
	return t, nil, grant, 0
}

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

// hasScope reports whether the space-separated list holds scope.
func hasScope(list, scope string) bool {
	for _, s := range strings.Fields(list) {
		if s == scope {
			return true
		}
	}
	return false
}
