package tokencache

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// The condition names are those of the admin JSON and the state metric's
// label: they must not change.
func TestConditionNamesOrderAndServing(t *testing.T) {
	want := []string{"starting", "valid", "degraded", "unavailable", "rejected", "refreshing"}
	var got []string
	for _, c := range Conditions() {
		got = append(got, string(c))
		if c.Serving() != (c == ConditionValid || c == ConditionDegraded) {
			t.Errorf("%s.Serving() = %v", c, c.Serving())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Conditions() = %v, want %v", got, want)
	}
	Conditions()[0] = "changed"
	if Conditions()[0] != ConditionStarting {
		t.Fatal("Conditions() shares its slice")
	}
}

func TestConditionOf(t *testing.T) {
	tok := &Token{AccessToken: "at"}
	transient := &Error{Class: ClassTransient, StatusCode: 503}
	rejected := &Error{Class: ClassRejected, Code: "invalid_grant"}
	for _, c := range []struct {
		serving    *Token
		lastErr    *Error
		attempting bool
		want       Condition
	}{
		{nil, nil, false, ConditionStarting},
		{nil, nil, true, ConditionRefreshing},
		{tok, nil, false, ConditionValid},
		{tok, nil, true, ConditionValid},
		{tok, transient, false, ConditionDegraded},
		{tok, rejected, true, ConditionDegraded},
		{nil, transient, false, ConditionUnavailable},
		{nil, transient, true, ConditionUnavailable},
		{nil, rejected, false, ConditionRejected},
		{nil, rejected, true, ConditionRejected},
	} {
		if got := conditionOf(c.serving, c.lastErr, c.attempting); got != c.want {
			t.Errorf("conditionOf(%v, %v, %v) = %s, want %s", c.serving != nil, c.lastErr, c.attempting, got, c.want)
		}
	}
}

// wantCondition checks the Source's condition, and that it agrees with
// the token the same snapshot says is served.
func wantCondition(t *testing.T, h *harness, want Condition) State {
	t.Helper()
	st := h.src.State()
	if st.Condition != want {
		t.Fatalf("condition %s, want %s (state %+v)", st.Condition, want, st)
	}
	if st.Condition.Serving() != (st.Serving != nil) {
		t.Fatalf("condition %s but serving %v", st.Condition, st.Serving)
	}
	return st
}

// holdRequests makes the token endpoint's requests wait until the returned
// function is called (at the latest at cleanup, before the server closes).
func holdRequests(t *testing.T, d *idp) (release func()) {
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	d.mu.Lock()
	d.hold = hold
	d.mu.Unlock()
	return release
}

func TestConditionStartingRefreshingValid(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	wantCondition(t, h, ConditionStarting)
	release := holdRequests(t, d)
	h.src.Start()
	recv(t, d.arrived, "warm-up request")
	if st := wantCondition(t, h, ConditionRefreshing); !st.Attempting {
		t.Fatal("refreshing but not attempting")
	}
	release()
	if ev := h.next(t); ev.Kind != EventToken {
		t.Fatalf("event %+v", ev)
	}
	wantCondition(t, h, ConditionValid)
}

// A token is served while its refresh fails; once it expires, with the
// refreshes still failing, the Source is unavailable. A success heals it.
func TestConditionDegradedThenUnavailableWhenTokenExpires(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(100))
	h := newHarness(t, d, func(o *Options) { o.Rand = func() float64 { return 0 } })
	h.src.Start()
	h.next(t)
	tok := wantCondition(t, h, ConditionValid).Serving
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	h.advanceToDue(t) // the refresh, 75 s after issue
	if ev := h.next(t); ev.Kind != EventFailure {
		t.Fatalf("event %+v", ev)
	}
	if st := wantCondition(t, h, ConditionDegraded); st.Serving != tok || st.LastErr == nil {
		t.Fatalf("degraded state %+v", st)
	}
	h.clock.Advance(tok.Expiry.Sub(h.clock.Now()))
	if st := wantCondition(t, h, ConditionUnavailable); st.Newest != tok {
		t.Fatalf("newest %v, want the expired token", st.Newest)
	}
	d.setReply(okReply(100))
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventToken })
	wantCondition(t, h, ConditionValid)
}

// A token dropped after a 401 is not served: the Source is refreshing
// while the request for a new one is in flight, and unavailable when
// GroupID fails it.
func TestConditionDroppedAfter401WithGroupIDDown(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(600))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	recv(t, d.arrived, "warm-up request")
	tok := wantCondition(t, h, ConditionValid).Serving
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	release := holdRequests(t, d)
	if !h.src.Invalidate(tok) || h.src.Invalidate(tok) {
		t.Fatal("token not dropped once")
	}
	if n := h.src.State().Drops; n != 1 {
		t.Fatalf("Drops %d after one drop, want 1", n)
	}
	recv(t, d.arrived, "request after the 401")
	wantCondition(t, h, ConditionRefreshing)
	release()
	if ev := h.next(t); ev.Kind != EventFailure {
		t.Fatalf("event %+v", ev)
	}
	if st := wantCondition(t, h, ConditionUnavailable); st.NextAttempt.IsZero() || st.Newest != tok {
		t.Fatalf("unavailable state %+v", st)
	}
}

func TestConditionRejected(t *testing.T) {
	d := newIdP(t)
	d.setReply(errReply(400, "invalid_grant", "invalid_username_or_password"))
	h := newHarness(t, d, nil)
	h.src.Start()
	if ev := h.next(t); ev.Kind != EventFailure || !ev.Err.Permanent() {
		t.Fatalf("event %+v", ev)
	}
	wantCondition(t, h, ConditionRejected)
	if _, err := h.src.Token(context.Background()); err == nil {
		t.Fatal("a rejected Source served a token")
	}
}

// A token adopted from shared storage ends a run of failures, as a fetched
// one does.
func TestConditionValidAfterAdoptingSharedToken(t *testing.T) {
	d := newIdP(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	sh := newMemShared()
	h := sharedHarness(t, d, sh, nil)
	h.src.Start()
	h.nextOf(t, EventFailure)
	wantCondition(t, h, ConditionUnavailable)
	sh.set(func(m *memShared) { m.entry = validEntry(h.clock.Now(), 3, 60*time.Second) })
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventAdopt && ev.Recovered && ev.First })
	if st := wantCondition(t, h, ConditionValid); !st.Newest.Shared || st.LastErr != nil {
		t.Fatalf("valid state %+v", st)
	}
}
