package tokencache

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache/clock"
)

func TestSharedStartWithValidEntryMakesNoRequest(t *testing.T) {
	d := newIdP(t)
	sh := newMemShared()
	sh.entry = validEntry(epoch, 7, 60*time.Second)
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	tok, err := h.src.Token(context.Background())
	if err != nil || tok.AccessToken != "shared-at" || !tok.Shared || tok.ShareVersion != 7 {
		t.Fatalf("got %v shared=%v, %v", tok, tok != nil && tok.Shared, err)
	}
	if ev := h.nextOf(t, EventAdopt); !ev.First {
		t.Fatalf("adopt event %+v", ev)
	}
	if tok.RefreshToken != "" {
		t.Fatal("an adopted token must not carry the shared refresh token")
	}
	if d.count() != 0 {
		t.Fatalf("token requests: %d, want 0", d.count())
	}
}

func TestSharedAdoptsNewerEntryWithoutRequest(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(60))
	sh := newMemShared()
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	h.nextOf(t, EventToken)
	if e := sh.get(); e == nil || e.Version != 1 || e.RefreshToken != "rt-1" || e.AccessToken != "at-1" {
		t.Fatalf("stored entry %+v", e)
	}
	// Another replica refreshed: version 2, later expiry.
	later := epoch.Add(5 * time.Second)
	sh.set(func(m *memShared) { m.entry = validEntry(later, 2, 60*time.Second) })
	// The check interval for 60 s tokens is 6 s.
	if due := h.due(t); due.Sub(epoch) != 6*time.Second {
		t.Fatalf("check at %v, want 6s", due.Sub(epoch))
	}
	h.advanceToDue(t)
	h.nextOf(t, EventAdopt)
	tok, _ := h.src.Token(context.Background())
	if tok.AccessToken != "shared-at" || d.count() != 1 {
		t.Fatalf("serving %s after %d requests", tok.AccessToken, d.count())
	}
}

// twoSources starts two Sources of 20 s tokens on one storage and one fake
// clock: a gets the first token and stores it, b adopts it.
func twoSources(t *testing.T) (*idp, *clock.Fake, *harness, *harness) {
	t.Helper()
	d := newIdP(t)
	d.setReply(okReply(20))
	sh := newMemShared()
	c := clock.NewFake(epoch)
	a := sharedHarness(t, d, sh, c)
	b := sharedHarness(t, d, sh, c)
	a.src.Start()
	a.nextOf(t, EventToken)
	b.src.Start()
	b.nextOf(t, EventAdopt)
	return d, c, a, b
}

// Two Sources on one storage, over ten token lifetimes: one token request
// per refresh in all, and no refresh token is sent twice.
func TestSharedTwoSourcesNeverReuseRefreshToken(t *testing.T) {
	d, c, a, b := twoSources(t)
	for c.Now().Before(epoch.Add(200 * time.Second)) {
		c.BlockUntil(2)
		c.Advance(500 * time.Millisecond)
	}
	c.BlockUntil(2)
	seen := map[string]bool{}
	refreshes := 0
	for i := range d.count() {
		f := d.form(i)
		if rt := f.Get("refresh_token"); rt != "" {
			refreshes++
			if seen[rt] {
				t.Fatalf("refresh token %d sent twice", i)
			}
			seen[rt] = true
		}
		if i > 0 && f.Get("grant_type") != "refresh_token" {
			t.Fatalf("request %d was a %s grant", i, f.Get("grant_type"))
		}
	}
	// 20 s tokens refreshed 5-7.5 s before expiry: one request per 12.5-15 s
	// for the pair, as for one Source: 14 to 17 in 200 s.
	if n := d.count(); n < 14 || n > 17 {
		t.Fatalf("token requests for two Sources in 200 s: %d, want 14..17", n)
	}
	for _, h := range []*harness{a, b} {
		if tok, err := h.src.Token(context.Background()); err != nil || tok.AccessToken != "at-"+itoa(d.count()) {
			t.Fatalf("a Source serves %v, %v; newest is at-%d", tok, err, d.count())
		}
		if sc := h.src.ShareCounters(); sc.Fallbacks != 0 || sc.StorageErrors != 0 {
			t.Fatalf("share counters %+v", sc)
		}
	}
	// The Source that stored the first token keeps refreshing; the other
	// adopts each new token before its own, later, turn.
	if sc := b.src.ShareCounters(); sc.LockWaits != 0 {
		t.Fatalf("the follower took the lock %d times", sc.LockWaits)
	}
	t.Logf("two Sources, 200 s of 20 s tokens: %d token requests (%d refreshes)", d.count(), refreshes)
}

func TestSharedLockTimeoutFallsBackToOwnRequest(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(60))
	sh := newMemShared()
	sh.entry = validEntry(epoch.Add(-50*time.Second), 3, 60*time.Second) // due: 10 s left
	sh.held = true                                                       // a replica holds the lock and never finishes
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	if ev := h.nextOf(t, EventShare); ev.ShareState != ShareLockTimeout || !ev.Changed {
		t.Fatalf("share event %+v", ev)
	}
	ev := h.nextOf(t, EventToken)
	if ev.GrantType != "password" {
		t.Fatalf("fallback used %s grant; the shared refresh token must not be used without the lock", ev.GrantType)
	}
	if sc := h.src.ShareCounters(); sc.Fallbacks != 1 || sc.LockWaits != 1 {
		t.Fatalf("counters %+v, want 1 fallback after 1 lock wait", sc)
	}
	if e := sh.get(); e.Version != 3 {
		t.Fatalf("a token had without the lock was stored: %+v", e)
	}
	// The lock comes free: the next refresh takes it and uses the shared
	// refresh token, and sharing is reported as back.
	sh.set(func(m *memShared) { m.held = false })
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventShare && ev.ShareState == ShareOK })
	if f := d.form(d.count() - 1); f.Get("refresh_token") != "shared-rt" {
		t.Fatalf("after the lock came free: %v", redactForm(f))
	}
}

func TestSharedStorageErrorKeepsServing(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(60))
	sh := newMemShared()
	sh.fail = true
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	if ev := h.nextOf(t, EventShareError); !ev.Changed || ev.Reason == "" {
		t.Fatalf("first storage error %+v", ev)
	}
	h.nextOf(t, EventToken)
	if _, err := h.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A check that fails again is not a change.
	h.advanceToDue(t)
	if ev := h.nextOf(t, EventShareError); ev.Changed {
		t.Fatalf("repeated storage error reported as a change: %+v", ev)
	}
	if _, err := h.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sc := h.src.ShareCounters(); sc.StorageErrors < 2 || sc.Fallbacks != 1 {
		t.Fatalf("counters %+v", sc)
	}
	// Storage returns: the next refresh stores its token.
	sh.set(func(m *memShared) { m.fail = false })
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventShare && ev.ShareState == ShareOK })
	if e := sh.get(); e.RefreshToken == "" || e.Version != 1 {
		t.Fatalf("stored after recovery: %+v", e)
	}
}

func TestShared401ClearsOnlyTheSameVersion(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(60))
	sh := newMemShared()
	sh.entry = validEntry(epoch, 4, 60*time.Second)
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	h.nextOf(t, EventAdopt)
	tok, _ := h.src.Token(context.Background())

	// Another replica has already replaced the entry: the 401 must not
	// throw the newer token away, and no request is needed.
	newer := validEntry(epoch, 5, 70*time.Second)
	newer.AccessToken = "newer-at"
	sh.set(func(m *memShared) { m.entry = newer })
	if !h.src.Invalidate(tok) {
		t.Fatal("not invalidated")
	}
	h.nextOf(t, EventAdopt)
	if got, _ := h.src.Token(context.Background()); got.AccessToken != "newer-at" || d.count() != 0 {
		t.Fatalf("serving %s after %d requests", got.AccessToken, d.count())
	}
	if sh.deletes != 0 {
		t.Fatal("a newer shared entry was deleted")
	}

	// The 401 is for the shared token itself: the entry is cleared, a
	// password grant (not the suspect refresh token) replaces it.
	cur, _ := h.src.Token(context.Background())
	h.src.Invalidate(cur)
	ev := h.nextOf(t, EventToken)
	if ev.GrantType != "password" || sh.deletes != 1 {
		t.Fatalf("after 401 on the shared token: %+v, %d deletes", ev, sh.deletes)
	}
	if e := sh.get(); e == nil || e.Version != 6 || e.AccessToken != "at-1" {
		t.Fatalf("stored %+v", e)
	}
}

// When the refreshing Source stops, the other takes over the chain with the
// shared refresh token, before the shared token expires.
func TestSharedFollowerTakesOverWhenRefresherStops(t *testing.T) {
	d, c, a, b := twoSources(t)
	a.src.Close()
	for c.Now().Before(epoch.Add(60 * time.Second)) {
		c.BlockUntil(1)
		c.Advance(250 * time.Millisecond)
		if _, err := b.src.Token(context.Background()); err != nil {
			t.Fatalf("at %v: %v", c.Now().Sub(epoch), err)
		}
	}
	if n := d.count(); n < 4 {
		t.Fatalf("%d token requests in 60 s of 20 s tokens", n)
	}
	for i := 1; i < d.count(); i++ {
		if f := d.form(i); f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-"+itoa(i) {
			t.Fatalf("request %d: %s grant; want the shared chain continued", i, f.Get("grant_type"))
		}
	}
}

// corruptShared is a memShared whose Load reports a damaged entry until
// the first Store.
type corruptShared struct {
	*memShared
	damaged bool
}

func (c *corruptShared) Load(ctx context.Context) (*SharedEntry, error) {
	c.mu.Lock()
	damaged := c.damaged
	c.mu.Unlock()
	if damaged {
		return nil, ErrShareCorrupt
	}
	return c.memShared.Load(ctx)
}

func (c *corruptShared) Store(ctx context.Context, e *SharedEntry) error {
	c.mu.Lock()
	c.damaged = false
	c.mu.Unlock()
	return c.memShared.Store(ctx, e)
}

func TestSharedDamagedEntryIsReplacedUnderTheLock(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(60))
	cs := &corruptShared{memShared: newMemShared(), damaged: true}
	h := newHarness(t, d, func(o *Options) { o.Shared = cs; o.ShareLockTimeout = 200 * time.Millisecond })
	h.src.Start()
	h.nextOf(t, EventToken)
	if e := cs.get(); e == nil || e.AccessToken != "at-1" {
		t.Fatalf("damaged entry not replaced: %+v", e)
	}
	if sc := h.src.ShareCounters(); sc.Fallbacks != 0 || sc.StorageErrors == 0 {
		t.Fatalf("counters %+v", sc)
	}
}

// A Source closed while its refresh holds the storage lock releases it.
func TestSharedCloseMidRefreshReleasesTheLock(t *testing.T) {
	d := newIdP(t)
	d.mu.Lock()
	d.hold = make(chan struct{})
	d.mu.Unlock()
	defer close(d.hold)
	sh := newMemShared()
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	<-d.arrived // the token request is in flight, under the lock
	if len(sh.lock) != 1 {
		t.Fatal("the lock is not held during the refresh")
	}
	h.src.Close()
	if len(sh.lock) != 0 {
		t.Fatal("the lock is still held after Close")
	}
}

// A lock that times out because its holder is storing a fresh token: the
// token is adopted, no request is made.
func TestSharedLockTimeoutAdoptsWhatTheHolderStored(t *testing.T) {
	d := newIdP(t)
	sh := newMemShared()
	sh.entry = validEntry(epoch.Add(-50*time.Second), 3, 60*time.Second) // due
	sh.held = true
	sh.whileHeld = func(m *memShared) {
		m.entry = validEntry(epoch, 4, 60*time.Second)
		m.entry.AccessToken = "holder-at"
	}
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	h.nextOf(t, EventAdopt)
	if tok, _ := h.src.Token(context.Background()); tok.AccessToken != "holder-at" || d.count() != 0 {
		t.Fatalf("serving %v after %d requests", tok, d.count())
	}
	if sc := h.src.ShareCounters(); sc.Fallbacks != 0 || sc.LockWaits != 1 {
		t.Fatalf("counters %+v", sc)
	}
}
