package tokencache

import (
	"context"
	"errors"
	"time"
)

// Shared is storage that the replicas of a cluster share for one
// credential: it holds at most one SharedEntry, and a lock that at most one
// replica holds at a time. Implementations bind the credential's storage
// key; they encrypt the entry if the storage is not private. Every call is
// bounded by its ctx. A Source calls Shared only from its refresh
// goroutine, never on the request path.
type Shared interface {
	// Load returns the entry, or nil and no error when there is none.
	Load(ctx context.Context) (*SharedEntry, error)
	// Store replaces the entry.
	Store(ctx context.Context, e *SharedEntry) error
	// Delete removes the entry; removing no entry is not an error.
	Delete(ctx context.Context) error
	// Lock takes the cluster-wide lock, waiting up to ctx's deadline.
	Lock(ctx context.Context) error
	// Unlock releases the lock taken by Lock.
	Unlock(ctx context.Context) error
}

// SharedEntry is what replicas share: the newest token and its refresh
// token. Version grows with every write, so a replica can tell whether the
// entry still holds the token it has.
type SharedEntry struct {
	Version      uint64    `json:"version"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type"`
	Scope        string    `json:"scope,omitempty"`
	GrantType    string    `json:"grant_type"`
	IssuedAt     time.Time `json:"issued_at"`
	Expiry       time.Time `json:"expiry"`
}

// token returns the entry as a Token adopted from storage.
func (e *SharedEntry) token() *Token {
	t := newToken(e.AccessToken, "", e.TokenType, e.Scope, e.GrantType, e.IssuedAt, e.Expiry.Sub(e.IssuedAt))
	t.Shared, t.ShareVersion = true, e.Version
	return t
}

// entryOf returns tok as the entry with the given version.
func entryOf(tok *Token, version uint64) *SharedEntry {
	return &SharedEntry{
		Version: version, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		TokenType: tok.TokenType, Scope: tok.Scope, GrantType: tok.GrantType,
		IssuedAt: tok.IssuedAt, Expiry: tok.Expiry,
	}
}

// Defaults of the sharing options.
const (
	// DefaultShareLockTimeout bounds the wait for the storage lock and
	// each storage call.
	DefaultShareLockTimeout = 15 * time.Second
	// MaxShareCheckInterval caps the default check interval.
	MaxShareCheckInterval = 30 * time.Second
	// MinShareCheckInterval is the shortest check interval.
	MinShareCheckInterval = time.Second
)

// ShareState is the condition of the shared storage as a Source last saw
// it; a change is reported once (EventShare), not every attempt.
type ShareState string

const (
	ShareOK           ShareState = "ok"            // storage answers; the lock was had when needed
	ShareLockTimeout  ShareState = "lock_timeout"  // the lock could not be had within the timeout
	ShareStorageError ShareState = "storage_error" // a storage call failed or timed out
)

// shareIO bounds one storage call by the lock timeout.
func (s *Source) shareIO(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ShareLockTimeout)
	defer cancel()
	return f(ctx)
}

// checkInterval is how often the refresh goroutine looks for a newer
// shared token: ShareCheckInterval, or a tenth of the token's lifetime
// capped at MaxShareCheckInterval; never under MinShareCheckInterval.
func (s *Source) checkInterval(tok *Token) time.Duration {
	d := s.opts.ShareCheckInterval
	if d <= 0 {
		d = MaxShareCheckInterval
		if tok != nil {
			d = min(d, tok.Lifetime()/10)
		}
	}
	return max(d, MinShareCheckInterval)
}

// loadShared loads the entry, reporting a storage failure. Refresh
// goroutine only.
func (s *Source) loadShared() (*SharedEntry, bool) {
	var e *SharedEntry
	err := s.shareIO(func(ctx context.Context) error {
		var err error
		e, err = s.opts.Shared.Load(ctx)
		return err
	})
	s.lastLoadCorrupt = errors.Is(err, ErrShareCorrupt)
	if err != nil {
		s.shareSaw(ShareStorageError, err)
		return nil, false
	}
	return e, true
}

// shareSaw records the storage condition; a change is reported as an
// EventShare (one log line per change of state). Refresh goroutine only.
func (s *Source) shareSaw(st ShareState, err error) {
	if st == ShareStorageError {
		s.counters.storageErrors.Add(1)
		s.emit(Event{Kind: EventShareError, ShareState: st, Changed: s.shareState != st, Reason: shareReason(err)})
	}
	if st != s.shareState {
		if st != ShareStorageError {
			s.emit(Event{Kind: EventShare, ShareState: st, Changed: true})
		}
		s.shareState = st
	}
}

// shareReason describes a storage error without quoting it (a storage
// module's error may name paths or hosts, never secrets, but keep it short).
func shareReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, ErrShareCorrupt):
		return ErrShareCorrupt.Error()
	}
	return "storage call failed"
}

// ErrShareCorrupt is returned by a Shared whose entry cannot be decrypted
// or decoded (another key, or a damaged file).
var ErrShareCorrupt = errors.New("shared entry cannot be decrypted or decoded")

// adoptable reports whether e holds a token that the Source should serve
// instead of cur: valid for longer than cur, and not the entry cur came
// from.
func adoptable(e *SharedEntry, cur *Token, now time.Time) bool {
	if e == nil || !now.Before(e.Expiry) || e.AccessToken == "" {
		return false
	}
	if cur == nil {
		return true
	}
	return e.Version != cur.ShareVersion && e.Expiry.After(cur.Expiry)
}

// fresh reports whether e is not yet due for a refresh: more than the
// refresh margin (without jitter) before its expiry.
func (s *Source) fresh(e *SharedEntry, now time.Time) bool {
	margin := RefreshMargin(e.Expiry.Sub(e.IssuedAt), s.opts.RefreshBefore)
	return now.Before(e.Expiry.Add(-margin))
}

// check is the periodic look at storage: a newer shared token is adopted
// without a token request. Refresh goroutine only.
func (s *Source) check() {
	e, ok := s.loadShared()
	if !ok {
		return
	}
	now := s.clock.Now()
	if adoptable(e, s.last.Load(), now) {
		s.adopt(e, now)
	}
}

// adopt serves the shared entry e as the Source's token (no token
// request), reported as an EventAdopt (see publish). Refresh goroutine
// only.
func (s *Source) adopt(e *SharedEntry, now time.Time) { s.publish(e.token(), adopted, sent{}, now) }

// sharedAttempt is attempt with sharing: adopt a newer shared token if
// there is one; else take the storage lock, read the entry again, refresh
// with its refresh token (or adopt what another replica stored meanwhile),
// store the result and unlock. A lock not had within ShareLockTimeout, or
// a storage failure, falls back to a token request of the replica's own,
// which is served but not stored. It returns done=true when it settled the
// attempt (adopted a token) and needs no record; otherwise the token
// request's outcome to record. Refresh goroutine only.
func (s *Source) sharedAttempt(dropped *Token, force bool) (tok *Token, req sent, err *Error, done bool) {
	now := s.clock.Now()
	cur := s.last.Load()
	if dropped == nil && !force {
		if e, ok := s.loadShared(); ok && adoptable(e, cur, now) && s.fresh(e, now) {
			s.adopt(e, now)
			return nil, sent{}, nil, true
		}
	}
	s.counters.lockWaits.Add(1)
	lockErr := s.shareIO(func(ctx context.Context) error { return s.opts.Shared.Lock(ctx) })
	if lockErr != nil {
		if s.ctx.Err() != nil {
			return nil, sent{}, nil, true
		}
		if errors.Is(lockErr, context.DeadlineExceeded) {
			s.shareSaw(ShareLockTimeout, lockErr)
			// The holder may have just stored a token.
			if e, ok := s.loadShared(); ok && dropped == nil && !force && adoptable(e, cur, s.clock.Now()) && s.fresh(e, s.clock.Now()) {
				s.adopt(e, s.clock.Now())
				return nil, sent{}, nil, true
			}
		} else {
			s.shareSaw(ShareStorageError, lockErr)
		}
		return s.ownAttempt()
	}
	defer func() {
		// Not bounded by s.ctx: a Source closed mid-refresh still
		// releases the lock.
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShareLockTimeout)
		defer cancel()
		if err := s.opts.Shared.Unlock(ctx); err != nil {
			s.shareSaw(ShareStorageError, err)
		}
	}()
	e, ok := s.loadShared()
	if !ok && !s.lastLoadCorrupt {
		return s.ownAttempt()
	}
	// A damaged entry (or one sealed with another key) is replaced by
	// the token obtained now.
	now = s.clock.Now()
	switch {
	case e != nil && dropped != nil && e.Version == dropped.ShareVersion && dropped.ShareVersion != 0:
		// The token GroupID rejected is still the shared one: drop it, and
		// its refresh token with it.
		if derr := s.shareIO(func(ctx context.Context) error { return s.opts.Shared.Delete(ctx) }); derr != nil {
			s.shareSaw(ShareStorageError, derr)
			return s.ownAttempt()
		}
		s.policy.forgetRefreshToken()
		e = &SharedEntry{Version: e.Version}
	case e != nil && !force && adoptable(e, cur, now) && (dropped != nil || s.fresh(e, now)):
		// Another replica refreshed meanwhile (or after the rejected
		// token): its token is newer.
		s.shareSaw(ShareOK, nil)
		s.adopt(e, now)
		return nil, sent{}, nil, true
	case e != nil && e.RefreshToken != "":
		// The newest refresh token is the shared one; any other that
		// this Source holds belongs to a chain that is no longer used.
		s.policy.refreshToken = e.RefreshToken
	}
	s.underLock = true
	tok, req, err = s.policy.attempt(s.ctx)
	s.underLock = false
	if err != nil || s.ctx.Err() != nil {
		return tok, req, err, false
	}
	version := uint64(1)
	if e != nil {
		version = e.Version + 1
	}
	if cur != nil && cur.ShareVersion >= version {
		version = cur.ShareVersion + 1
	}
	if serr := s.shareIO(func(ctx context.Context) error { return s.opts.Shared.Store(ctx, entryOf(tok, version)) }); serr != nil {
		// The new refresh token stays with this Source only.
		s.shareSaw(ShareStorageError, serr)
		s.counters.fallbacks.Add(1)
		return tok, req, nil, false
	}
	s.shareSaw(ShareOK, nil)
	tok.ShareVersion = version
	// The refresh token now lives in storage: whoever refreshes next
	// takes it from there, so this Source must not reuse its copy.
	s.policy.refreshToken = ""
	return tok, req, nil, false
}

// ownAttempt is the fallback when storage cannot be used: a token request
// of the replica's own, with its own refresh token if it has one (never
// one read from storage without the lock). Counted in Fallbacks.
func (s *Source) ownAttempt() (*Token, sent, *Error, bool) {
	s.counters.fallbacks.Add(1)
	tok, req, err := s.policy.attempt(s.ctx)
	return tok, req, err, false
}

// ShareCounters counts a Source's use of shared storage.
type ShareCounters struct {
	// LockWaits is how many times the Source waited for the storage lock
	// before a refresh.
	LockWaits uint64
	// StorageErrors is how many storage calls failed or timed out.
	StorageErrors uint64
	// Fallbacks is how many token requests were made without the lock (the
	// lock was not had in time, or storage failed), or whose token could
	// not be stored.
	Fallbacks uint64
}

// ShareCounters returns the sharing counters (all zero without sharing).
func (s *Source) ShareCounters() ShareCounters {
	return ShareCounters{
		LockWaits:     s.counters.lockWaits.Load(),
		StorageErrors: s.counters.storageErrors.Load(),
		Fallbacks:     s.counters.fallbacks.Load(),
	}
}
