package groupidauth

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// TestShareStaleLockBrokenByOneWaiter: two replicas waiting on a dead
// holder's lock see its lease go stale together; one breaks and takes the
// lock, and the other never breaks it again while it is held (two holders
// would refresh with one refresh token, which GroupID punishes by revoking
// the token family). Both get the lock in turn.
func TestShareStaleLockBrokenByOneWaiter(t *testing.T) {
	t.Parallel()
	dead := lockedByDeadHolder(t)
	dir := dead.storage().(*certmagic.FileStorage).Path
	waiters := []*storageShare{newFileShare(t, dir), newFileShare(t, dir)}
	var holders, most atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, len(waiters))
	for _, w := range waiters {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*minLockTimeout+leaseStale)
			defer cancel()
			if err := w.Lock(ctx); err != nil {
				errs <- err
				return
			}
			n := holders.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(3 * lockTry) // long enough for the other waiter to look again
			holders.Add(-1)
			errs <- w.Unlock(context.Background())
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d replicas held the lock at once, want 1", m)
	}
	if n := waiters[0].lockBreaks.Load() + waiters[1].lockBreaks.Load(); n != 1 {
		t.Fatalf("the stale lock was broken %d times, want 1", n)
	}
}

// TestShareLockLostToAnotherBreakerIsLeft: a replica that took a lock right
// after breaking it, and then finds another waiter's lease in place (that
// waiter broke the lock in the same moment and took it over), stops its
// lease and leaves the lock to the other; with its own lease in place it
// keeps the lock.
func TestShareLockLostToAnotherBreakerIsLeft(t *testing.T) {
	t.Parallel()
	s := newFileShare(t, t.TempDir())
	st := s.storage()
	lease := s.startLease(st)
	if !s.keptAfterBreak(context.Background(), st, lease) {
		t.Fatal("a lock whose lease is still ours was left")
	}
	s.stopLease()
	lease = s.startLease(st)
	if err := st.Store(context.Background(), s.leaseKey, []byte(`{"owner":"other","beat":0}`)); err != nil {
		t.Fatal(err)
	}
	if s.keptAfterBreak(context.Background(), st, lease) {
		t.Fatal("a lock whose lease another waiter wrote was kept")
	}
	s.mu.Lock()
	beating := s.beatStop != nil
	s.mu.Unlock()
	if beating {
		t.Fatal("the lease of a lock left to another waiter is still kept alive")
	}
	if got, _ := s.loadLease(context.Background(), st); got != `{"owner":"other","beat":0}` {
		t.Fatalf("the other waiter's lease was changed: %s", got)
	}
}
