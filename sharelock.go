package groupidauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	mathrand "math/rand/v2"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
	"github.com/caddyserver/certmagic"
)

// The lock's lease. CertMagic's file storage keeps a lock file fresh from a
// goroutine that outlives the lock: if the same replica took and released
// the lock within its 5 s refresh interval, that goroutine keeps refreshing
// the next holder's lock file, so a holder that dies is never seen as
// stale. Lock therefore keeps a lease of its own next to the lock: the
// holder rewrites it every leaseBeat until it unlocks; a waiter that sees
// the same lease content for leaseStale (by its own clock, so clock skew
// between hosts does not matter) breaks the lock.
const (
	leaseBeat  = 2 * time.Second
	leaseStale = 3 * leaseBeat
	// lockTry is how long one storage Lock call may wait before the lease
	// is checked again (CertMagic's file storage polls every second).
	lockTry = 1500 * time.Millisecond
)

// minLockTimeout is the shortest wait for the lock in which a waiter can
// break a dead holder's lock: it must see the lease unchanged for
// leaseStale, and it looks once per lockTry: its first look comes after
// one lockTry and the stale one at most leaseStale+lockTry after that,
// and the pauses of a break (see breakPause) fit in the remaining margin.
const minLockTimeout = leaseStale + 2*lockTry

// A break takes at most two breakPauses after the stale look (the last
// look, then keptAfterBreak): they must fit in the margin.
var _ = [1]struct{}{}[2*breakPause/(minLockTimeout-leaseStale-lockTry)]

// The default wait lets a waiting replica take a dead holder's lock over.
const _ = uint(tokencache.DefaultShareLockTimeout - minLockTimeout)

// Lock implements tokencache.Shared: the storage lock, waiting until ctx is
// done, breaking a lock whose lease went stale. Each call is one wait: a
// lease is stale only if this call saw it unchanged for leaseStale.
func (s *storageShare) Lock(ctx context.Context) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	s.forgetLease()
	defer s.forgetLease()
	broke := false
	for {
		try, cancel := context.WithTimeout(ctx, lockTry)
		err := st.Lock(try, s.lockName)
		cancel()
		if err == nil {
			lease := s.startLease(st)
			if !broke || s.keptAfterBreak(ctx, st, lease) {
				return nil
			}
			broke = false // another waiter broke the lock we took: wait on
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if stale, seen := s.leaseStale(ctx, st); stale && s.stillStaleAfterPause(ctx, st, seen) {
			s.lockBreaks.Add(1)
			broke = true
			_ = st.Unlock(ctx, s.lockName)
			_ = st.Delete(ctx, s.leaseKey)
		}
	}
}

// forgetLease drops what an earlier wait saw of the lease.
func (s *storageShare) forgetLease() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seenLease, s.seenAt = "", time.Time{}
}

// leaseStale reports whether the lease has shown the same content (or none)
// for leaseStale, as this replica observed it during the current wait, and
// that content.
func (s *storageShare) leaseStale(ctx context.Context, st certmagic.Storage) (bool, string) {
	content, ok := s.loadLease(ctx, st)
	if !ok {
		return false, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if content != s.seenLease || s.seenAt.IsZero() {
		s.seenLease, s.seenAt = content, now
		return false, ""
	}
	if now.Sub(s.seenAt) < leaseStale {
		return false, ""
	}
	s.seenLease, s.seenAt = "", time.Time{}
	return true, content
}

// loadLease returns the lease's content, "(none)" when there is none.
func (s *storageShare) loadLease(ctx context.Context, st certmagic.Storage) (string, bool) {
	b, err := st.Load(ctx, s.leaseKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "(none)", true
	case err != nil:
		return "", false
	}
	return string(b), true
}

// breakPause is the longest random pause before a stale lock is broken.
const breakPause = 500 * time.Millisecond

// stillStaleAfterPause is the last look before breaking a stale lock:
// after a random pause, the lease must still be the one found stale.
// Several waiters see a dead holder's lease go stale at about the same
// time; without it, a waiter could break the lock that another waiter had
// just broken and taken (its fresh lease written at once), and both would
// refresh with the same refresh token, which GroupID answers by revoking
// the token family.
func (s *storageShare) stillStaleAfterPause(ctx context.Context, st certmagic.Storage, stale string) bool {
	if !pause(ctx, mathrand.N(breakPause)) {
		return false
	}
	content, ok := s.loadLease(ctx, st)
	return ok && content == stale
}

// keptAfterBreak is the check of a lock taken after breaking a stale one:
// a waiter that broke it too in the same moment (their last looks were
// both before either lock was taken) has then taken it over and written
// its own lease. After breakPause, the lease must still be this replica's
// (lease); else this replica stops its lease, leaves the lock file (it is
// the other waiter's now) and waits on.
func (s *storageShare) keptAfterBreak(ctx context.Context, st certmagic.Storage, lease string) bool {
	if pause(ctx, breakPause) {
		if content, ok := s.loadLease(ctx, st); !ok || content == lease {
			return true
		}
	} else if ctx.Err() != nil {
		return true // the caller's deadline: keep what was taken
	}
	s.stopLease()
	return false
}

// pause waits d, or until ctx ends; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// startLease writes the lease of the lock just taken and keeps rewriting
// it until Unlock; it returns the content written first.
func (s *storageShare) startLease(st certmagic.Storage) string {
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	stop, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.beatStop, s.beatDone = stop, done
	s.mu.Unlock()
	content := func(seq int) string { return fmt.Sprintf(`{"owner":"%x","beat":%d}`, owner, seq) }
	write := func(seq int) {
		ctx, cancel := context.WithTimeout(context.Background(), leaseBeat)
		defer cancel()
		_ = st.Store(ctx, s.leaseKey, []byte(content(seq)))
	}
	write(0)
	go func() {
		defer close(done)
		t := time.NewTicker(leaseBeat)
		defer t.Stop()
		for seq := 1; ; seq++ {
			select {
			case <-stop:
				return
			case <-t.C:
				write(seq)
			}
		}
	}()
	return content(0)
}

// stopLease ends the lease heartbeat without touching the lease or the
// lock.
func (s *storageShare) stopLease() {
	s.mu.Lock()
	stop, done := s.beatStop, s.beatDone
	s.beatStop, s.beatDone = nil, nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Unlock implements tokencache.Shared: ends the lease, then the lock.
func (s *storageShare) Unlock(ctx context.Context) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	s.stopLease()
	_ = st.Delete(ctx, s.leaseKey)
	return st.Unlock(ctx, s.lockName)
}
