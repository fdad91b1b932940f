package tokencache

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Issue 17, "promises tested at their defaults": README promises that had
// no test, or only tests with a changed setting, checked here with the
// settings a user gets. The harness's fixed jitter (0.5) is a test seam,
// not a user setting; where the promise is about the jitter itself, the
// default (math/rand/v2) is used. See docs/promises.md.

// TestPromiseRefreshScheduleAtDefaultJitter checks README "How it
// behaves": "A single background goroutine per credential refreshes ahead
// of expiry: by default when a quarter of the lifetime remains (300 s for
// GroupID's 1200 s tokens), plus a random extra of up to half that margin
// so replicas started together spread out." Sources started together with
// the default jitter schedule their refresh between 750 s and 900 s after
// issue, not all at the same instant.
func TestPromiseRefreshScheduleAtDefaultJitter(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1200))
	const replicas = 16
	seen := map[time.Duration]bool{}
	for range replicas {
		h := newHarness(t, d, func(o *Options) { o.Rand = nil }) // nil: the default, math/rand/v2
		h.src.Start()
		if ev := h.next(t); ev.Kind != EventToken {
			t.Fatalf("first event %+v", ev)
		}
		after := h.due(t).Sub(epoch)
		if after < 750*time.Second || after > 900*time.Second {
			t.Errorf("refresh scheduled %v after issue; want 1200 s less 300 s, less up to 150 s", after)
		}
		seen[after] = true
		h.src.Close()
	}
	if len(seen) < 2 {
		t.Errorf("%d sources started together all refresh at the same instant", replicas)
	}
	if n := d.count(); n != replicas {
		t.Fatalf("%d token requests, want %d", n, replicas)
	}
}

// refreshFails answers refresh grants 503 and password grants with a token
// of the given lifetime.
func refreshFails(expiresIn int) func(int, url.Values, http.ResponseWriter) {
	return func(n int, f url.Values, w http.ResponseWriter) {
		if f.Get("grant_type") == "refresh_token" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		okReply(expiresIn)(n, f, w)
	}
}

// TestPromiseRefreshGivenUpAfterTwoTransientFailures checks README "How it
// behaves": "If the refresh grant fails transiently twice in a row [...],
// the refresh token is given up and the next attempt, after the backoff,
// is a password grant." With GroupID's 1200 s tokens and the default
// backoff, the token stays served meanwhile.
func TestPromiseRefreshGivenUpAfterTwoTransientFailures(t *testing.T) {
	d := newIdP(t)
	d.setReply(refreshFails(1200))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	held := h.src.Current()
	for i := 1; i <= 2; i++ {
		h.advanceToDue(t)
		if ev := h.next(t); ev.Kind != EventFailure || ev.GrantType != "refresh_token" {
			t.Fatalf("refresh %d: %+v", i, ev)
		}
		if wait := h.due(t).Sub(h.clock.Now()); wait < time.Second {
			t.Fatalf("after failed refresh %d the next request is %v later, want a backoff of at least 1 s", i, wait)
		}
		if h.src.Serving() != held {
			t.Fatalf("after failed refresh %d the valid token is not served", i)
		}
	}
	if n := d.count(); n != 3 {
		t.Fatalf("%d token requests before the backoff ended, want 3 (password, 2 refreshes)", n)
	}
	h.advanceToDue(t)
	if ev := h.next(t); ev.Kind != EventToken || ev.GrantType != "password" {
		t.Fatalf("attempt after two failed refreshes: %+v, want a password grant", ev)
	}
	if f := d.form(3); f.Get("grant_type") != "password" || f.Get("refresh_token") != "" {
		t.Fatalf("request 4 sent %s", redactForm(f))
	}
}

// TestPromiseExpiryWhileRefreshFailsMeansPasswordGrant checks README "How
// it behaves": the refresh token is also given up "(or the held token
// expires while refreshes fail)": after one failed refresh, a retry that
// comes after the token's expiry is a password grant. 2 s tokens (GroupID's
// lifetime, not a sidecar setting) put the default 1 s retry past expiry.
func TestPromiseExpiryWhileRefreshFailsMeansPasswordGrant(t *testing.T) {
	d := newIdP(t)
	d.setReply(refreshFails(2))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	expiry := h.src.Current().Expiry
	h.advanceToDue(t)
	if ev := h.next(t); ev.Kind != EventFailure || ev.GrantType != "refresh_token" {
		t.Fatalf("refresh: %+v", ev)
	}
	due := h.due(t)
	if !due.After(expiry) {
		t.Fatalf("the retry is due at %v, before the expiry at %v: the test needs it after", due.Sub(epoch), expiry.Sub(epoch))
	}
	h.clock.Advance(due.Sub(h.clock.Now()))
	if ev := h.next(t); ev.Kind != EventToken || ev.GrantType != "password" {
		t.Fatalf("retry after the expiry: %+v, want a password grant", ev)
	}
	refreshes := 0
	for i := range d.count() {
		if d.form(i).Get("grant_type") == "refresh_token" {
			refreshes++
		}
	}
	if refreshes != 1 {
		t.Fatalf("%d refresh grants; the password grant must follow the expiry, not a second failure", refreshes)
	}
}

// TestPromiseBackoffRangesAtDefaults checks README "How it behaves":
// "Failures back off exponentially with jitter: transient ones [...] from
// 1 s to 60 s; rejections (wrong password, unknown client) from 30 s to
// 10 min. Request traffic never triggers extra attempts during a backoff."
// With the default backoff, every delay lies in the documented range; with
// the jitter at its top the delays double up to the cap and stay there.
func TestPromiseBackoffRangesAtDefaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   func(int, url.Values, http.ResponseWriter)
		class   Class
		lo, hi  time.Duration
		failing int
	}{
		{"transient", func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) }, ClassTransient, time.Second, time.Minute, 10},
		{"rejected", errReply(400, "invalid_grant", "invalid_username_or_password"), ClassRejected, 30 * time.Second, 10 * time.Minute, 8},
	} {
		for _, jitter := range []struct {
			name string
			rand func() float64
		}{{"default jitter", nil}, {"jitter at its top", func() float64 { return 0.999999 }}} {
			t.Run(tc.name+", "+jitter.name, func(t *testing.T) {
				d := newIdP(t)
				d.setReply(tc.reply)
				h := newHarness(t, d, func(o *Options) { o.Rand = jitter.rand })
				h.src.Start()
				var delay time.Duration
				for i := 1; i <= tc.failing; i++ {
					if ev := h.next(t); ev.Kind != EventFailure || ev.Err.Class != tc.class {
						t.Fatalf("attempt %d: %+v", i, ev)
					}
					delay = h.due(t).Sub(h.clock.Now())
					if delay < tc.lo || delay > tc.hi {
						t.Errorf("failure %d: next attempt %v later, want %v to %v", i, delay, tc.lo, tc.hi)
					}
					if jitter.rand != nil {
						ceiling := min(tc.hi, tc.lo<<(i-1))
						if delay < ceiling-ceiling/1000 {
							t.Errorf("failure %d: %v with the jitter at its top, want about %v (doubling from %v up to %v)", i, delay, ceiling, tc.lo, tc.hi)
						}
					}
					for range 20 {
						if _, err := h.src.Token(context.Background()); err == nil {
							t.Fatal("a token during the backoff")
						}
					}
					if n := d.count(); n != i {
						t.Fatalf("%d token requests after %d failures: traffic caused extra attempts", n, i)
					}
					h.clock.Advance(delay)
				}
				if jitter.rand != nil && delay < tc.hi-tc.hi/1000 {
					t.Errorf("the delay stopped at %v, want the cap %v", delay, tc.hi)
				}
			})
		}
	}
}

// TestPromiseForcedRefreshDuringBackoffKeepsServingToken checks README
// "Readiness, liveness and status": "POST /groupid/refresh: force a token
// request now (even during a backoff); the current token stays in use
// until the new one arrives."
func TestPromiseForcedRefreshDuringBackoffKeepsServingToken(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1200))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	recv(t, d.arrived, "warm-up request")
	held := h.src.Current()

	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	h.advanceToDue(t)
	recv(t, d.arrived, "refresh request")
	if ev := h.next(t); ev.Kind != EventFailure {
		t.Fatalf("refresh: %+v", ev)
	}
	backoffEnds := h.due(t)

	hold := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) })
	d.mu.Lock()
	d.hold, d.reply = hold, okReply(1200)
	d.mu.Unlock()
	h.src.ForceRefresh()
	recv(t, d.arrived, "forced request")
	if !h.clock.Now().Before(backoffEnds) {
		t.Fatal("the forced request waited for the backoff")
	}
	for range 100 {
		if tok, err := h.src.Token(context.Background()); err != nil || tok != held {
			t.Fatalf("while the forced request is in flight: %v, %v; want the current token", tok, err)
		}
	}
	release.Do(func() { close(hold) })
	if ev := h.next(t); ev.Kind != EventToken || !ev.Recovered {
		t.Fatalf("forced request: %+v", ev)
	}
	if tok, _ := h.src.Token(context.Background()); tok.AccessToken != "at-3" || d.count() != 3 {
		t.Fatalf("after the forced request: %s after %d requests", tok.AccessToken, d.count())
	}
}

// TestPromiseShareCheckIntervalDefault checks README "Sharing one token
// between replicas": check_interval defaults to "a tenth of the token
// lifetime, at most 30s", and "Each replica's background loop reads the
// entry every check_interval and adopts a newer token without a token
// request." GroupID's 1200 s tokens, default share settings.
func TestPromiseShareCheckIntervalDefault(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1200))
	sh := newMemShared()
	h := newHarness(t, d, func(o *Options) { o.Shared = sh })
	h.src.Start()
	h.nextOf(t, EventToken)
	for i := range 3 {
		if gap := h.due(t).Sub(h.clock.Now()); gap != 30*time.Second {
			t.Fatalf("check %d: %v after the last, want 30 s (a tenth of 1200 s is 120 s, capped)", i+1, gap)
		}
		h.advanceToDue(t)
	}
	sh.set(func(m *memShared) { m.entry = validEntry(h.clock.Now(), 2, 1200*time.Second) })
	h.advanceToDue(t)
	h.nextOf(t, EventAdopt)
	if tok, _ := h.src.Token(context.Background()); tok.AccessToken != "shared-at" || d.count() != 1 {
		t.Fatalf("serving %s after %d token requests; want the newer shared token and no request", tok.AccessToken, d.count())
	}
}

// busyShared is a Shared whose lock another replica always holds: Lock
// notes how far off its deadline is and reports the deadline passed at
// once, as it would after waiting all of lock_timeout (a wall-clock wait
// that the test does not sit through). The entry stays empty.
type busyShared struct {
	mu     sync.Mutex
	lock   []time.Duration // time to the deadline of each Lock
	io     []time.Duration // the same for Load, Store and Delete
	stores int
}

func untilDeadline(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	return time.Until(dl)
}

func (b *busyShared) note(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.io = append(b.io, untilDeadline(ctx))
}

func (b *busyShared) Load(ctx context.Context) (*SharedEntry, error) { b.note(ctx); return nil, nil }
func (b *busyShared) Delete(ctx context.Context) error               { b.note(ctx); return nil }
func (b *busyShared) Unlock(context.Context) error                   { return nil }

func (b *busyShared) Store(ctx context.Context, _ *SharedEntry) error {
	b.note(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stores++
	return nil
}

func (b *busyShared) Lock(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lock = append(b.lock, untilDeadline(ctx))
	return context.DeadlineExceeded
}

// TestPromiseLockTimeoutFallbackAtDefaults checks README "Sharing one
// token between replicas", lock_timeout ("Longest wait for the storage
// lock before a refresh, and for each storage call", default 15s) and the
// failure table: "the lock is not had within lock_timeout: this replica
// makes its own token request (password grant, or its own refresh token),
// serves it and does not store it; share_fallbacks counts it, one warning
// is logged" (the warning is the one EventShare the root package logs).
func TestPromiseLockTimeoutFallbackAtDefaults(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1200))
	sh := &busyShared{}
	h := newHarness(t, d, func(o *Options) { o.Shared = sh }) // default lock_timeout
	h.src.Start()
	warnings := 0
	count := func(ev Event) bool {
		switch {
		case ev.Kind == EventShare && ev.ShareState == ShareLockTimeout:
			warnings++
		case ev.Kind == EventFailure:
			t.Fatalf("failure %+v", ev)
		}
		return ev.Kind == EventToken
	}
	// The first token: the lock is busy, so the replica's own request.
	for !count(recv(t, h.events, "the first token")) {
	}
	// Its refresh: the lock is busy again.
	for step, refreshed := 0, false; !refreshed; step++ {
		if step == 100 {
			t.Fatal("no refresh within 100 timer steps")
		}
		h.advanceToDue(t)
		h.due(t) // idle again: the events of the step are queued
		for more := true; more && !refreshed; {
			select {
			case ev := <-h.events:
				refreshed = count(ev)
			default:
				more = false
			}
		}
	}
	if tok, err := h.src.Token(context.Background()); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("serving %v, %v; want the replica's own token", tok, err)
	}
	if g := d.form(0).Get("grant_type"); g != "password" {
		t.Errorf("first fallback sent a %s grant, want password", g)
	}
	if f := d.form(1); f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-1" {
		t.Errorf("second fallback sent %s, want its own refresh token rt-1", redactForm(f))
	}
	if warnings != 1 {
		t.Errorf("%d lock-timeout notices for two fallbacks in a row, want 1", warnings)
	}
	sc := h.src.ShareCounters()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sc.Fallbacks != 2 || sc.LockWaits != 2 || sh.stores != 0 {
		t.Errorf("fallbacks %d, lock waits %d, stores %d; want 2, 2, 0", sc.Fallbacks, sc.LockWaits, sh.stores)
	}
	for what, waits := range map[string][]time.Duration{"Lock": sh.lock, "storage call": sh.io} {
		if len(waits) == 0 {
			t.Errorf("no %s", what)
		}
		for _, w := range waits {
			if w <= 14*time.Second || w > 15*time.Second {
				t.Errorf("a %s was given %v to its deadline, want the default lock_timeout, 15 s", what, w)
			}
		}
	}
}
