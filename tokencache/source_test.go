package tokencache

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestColdStartConcurrentCallersShareOneRequest(t *testing.T) {
	d := newIdP(t)
	d.hold = make(chan struct{})
	h := newHarness(t, d, nil)
	h.src.Start()

	const callers = 200
	var wg sync.WaitGroup
	results := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := h.src.Token(context.Background())
			if err != nil {
				results <- "error"
				return
			}
			results <- tok.AccessToken
		}()
	}
	close(d.hold)
	// Counted within seconds, never left to the suite's deadline: a
	// single-flight that loses its waiters shows as callers still waiting.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d callers still waiting after 10 s; %d token requests", callers-len(results), callers, d.count())
	}
	close(results)
	for r := range results {
		if r != "at-1" {
			t.Fatalf("caller got %q", r)
		}
	}
	if n := d.count(); n != 1 {
		t.Fatalf("token requests: got %d want 1", n)
	}
}

func TestInvalidateOnlyDropsCurrentToken(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	old := h.src.Current()
	if !h.src.Invalidate(old) {
		t.Fatal("current token not dropped")
	}
	tok, err := h.src.Token(context.Background())
	if err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("after invalidate: %v %v", tok, err)
	}
	h.next(t)
	if h.src.Invalidate(old) {
		t.Fatal("a stale token dropped the new one")
	}
	if d.count() != 2 {
		t.Fatalf("requests %d want 2", d.count())
	}
}

func TestStoreSeedsNewSourceWithoutRequest(t *testing.T) {
	d := newIdP(t)
	store := NewStore()
	h1 := newHarness(t, d, func(o *Options) { o.Store = store })
	h1.src.Start()
	h1.next(t)
	h1.src.Close()
	h2 := newHarness(t, d, func(o *Options) { o.Store = store; o.Clock = h1.clock })
	h2.src.Start()
	tok, err := h2.src.Token(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("seeded source: %v %v", tok, err)
	}
	if d.count() != 1 {
		t.Fatalf("requests %d want 1", d.count())
	}
}

func TestCloseReleasesWaitersAndStops(t *testing.T) {
	d := newIdP(t)
	d.hold = make(chan struct{})
	defer close(d.hold)
	h := newHarness(t, d, nil)
	h.src.Start()
	errc := make(chan error, 1)
	go func() {
		_, err := h.src.Token(context.Background())
		errc <- err
	}()
	<-d.arrived
	h.src.Close()
	err := <-errc
	var nt *NoTokenError
	if !errors.As(err, &nt) {
		t.Fatalf("waiter got %v", err)
	}
	if _, err := h.src.Token(context.Background()); err == nil {
		t.Fatal("closed source served a token")
	}
}

func TestClosedSourceServesNoToken(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	h.src.Start()
	if _, err := h.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.src.Close()
	if _, err := h.src.Token(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestContextEndsWait(t *testing.T) {
	d := newIdP(t)
	d.hold = make(chan struct{})
	defer close(d.hold)
	h := newHarness(t, d, nil)
	h.src.Start()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.src.Token(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestInvalidateForgetsRefreshTokenSoOnePasswordGrantFollows(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	h.src.Invalidate(h.src.Current())
	h.next(t)
	if f := d.form(1); f.Get("grant_type") != "password" || f.Get("refresh_token") != "" {
		t.Fatalf("after a 401 the sidecar sent %s", redactForm(f))
	}
	if d.count() != 2 {
		t.Fatalf("requests %d want 2", d.count())
	}
}

func TestForceRefreshSkipsBackoffOnce(t *testing.T) {
	d := newIdP(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	d.setReply(okReply(60))
	h.src.ForceRefresh()
	if ev := h.next(t); ev.Kind != EventToken || !ev.Recovered {
		t.Fatalf("forced refresh: %+v", ev)
	}
	if d.count() != 2 {
		t.Fatalf("requests %d want 2", d.count())
	}
}

func TestInvalidateIsRateLimited(t *testing.T) {
	d := newIdP(t)
	// Tokens outlive the window, so the last one is still served after it.
	d.setReply(okReply(600))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	for i := range MaxInvalidations {
		if !h.src.Invalidate(h.src.Current()) {
			t.Fatalf("invalidation %d refused", i+1)
		}
		h.next(t)
	}
	if h.src.Invalidate(h.src.Current()) {
		t.Fatal("invalidation past the limit was accepted")
	}
	if tok, err := h.src.Token(context.Background()); err != nil || tok != h.src.Current() {
		t.Fatal("the kept token is not served")
	}
	if d.count() != 1+MaxInvalidations {
		t.Fatalf("token requests %d", d.count())
	}
	h.clock.Advance(InvalidationWindow)
	if !h.src.Invalidate(h.src.Current()) {
		t.Fatal("invalidation refused after the window")
	}
}

// recv waits for one value on c, failing the test after 10 s.
func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
		panic("unreachable")
	}
}

func TestNoExpiredTokenWhileRefreshInFlight(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	recv(t, d.arrived, "warm-up request")
	old := h.src.Current()

	// The refresh request hangs at the token endpoint...
	hold := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) }) // before the server closes
	d.mu.Lock()
	d.hold = hold
	d.mu.Unlock()
	h.advanceToDue(t)
	recv(t, d.arrived, "refresh request")
	// ...while time passes the token's expiry.
	h.clock.Advance(old.Expiry.Sub(h.clock.Now()))

	if st := h.src.State(); st.Serving != nil {
		t.Fatalf("expired token still served during the refresh: %v", st.Serving)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if tok, err := h.src.Token(ended); tok != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("caller that cannot wait got %v, %v; want a NoTokenError caused by its context", tok, err)
	}
	type result struct {
		tok *Token
		err error
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		tok, err := h.src.Token(ctx)
		got <- result{tok, err}
	}()
	release.Do(func() { close(hold) })
	r := recv(t, got, "waiting caller")
	if r.err != nil || r.tok.AccessToken != "at-2" {
		t.Fatalf("waiting caller got %v, %v; want the refreshed token", r.tok, r.err)
	}
	if tok, err := h.src.Token(context.Background()); err != nil || tok != r.tok {
		t.Fatalf("after the refresh got %v, %v", tok, err)
	}
}

func TestSeededTokenExpiresAndCloseStopsItsTimer(t *testing.T) {
	d := newIdP(t)
	store := NewStore()
	h1 := newHarness(t, d, func(o *Options) { o.Store = store })
	h1.src.Start()
	h1.next(t)
	h1.src.Close()
	if n := h1.clock.PendingFuncs(); n != 0 {
		t.Fatalf("%d expiry timers outlive Close", n)
	}

	// A seeded Source that is never started still stops serving its token
	// when it expires.
	h2 := newHarness(t, d, func(o *Options) { o.Store = store; o.Clock = h1.clock })
	tok := h2.src.State().Serving
	if tok == nil {
		t.Fatal("seeded token not served")
	}
	h1.clock.Advance(tok.Expiry.Sub(h1.clock.Now()))
	if st := h2.src.State(); st.Serving != nil {
		t.Fatalf("expired seeded token served: %v", st.Serving)
	}

	h3 := newHarness(t, d, func(o *Options) { o.Store = store; o.Clock = h1.clock })
	h3.src.Start()
	h3.next(t)
	h3.src.Close()
	if n := h1.clock.PendingFuncs(); n != 0 {
		t.Fatalf("%d expiry timers outlive Close", n)
	}
	if d.count() != 2 {
		t.Fatalf("requests %d want 2", d.count())
	}
}

// TestInvalidateDuringBackoffFetchesAtOnce (issue 17, defect 5): after an
// outage whose refreshes failed (the token still valid, a backoff
// pending), the endpoint heals; a 401 then drops the token, and a caller
// gets a fresh one from one token request made now, not after the old
// backoff.
func TestInvalidateDuringBackoffFetchesAtOnce(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(600))
	h := newHarness(t, d, nil)
	h.src.Start()
	h.next(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) })
	for range 3 { // failed refreshes: the backoff grows
		h.advanceToDue(t)
		if ev := h.next(t); ev.Kind != EventFailure {
			t.Fatalf("refresh during the outage: %+v", ev)
		}
	}
	backoffEnds := h.due(t)
	tok := h.src.Serving()
	if tok == nil || !backoffEnds.After(h.clock.Now()) {
		t.Fatal("want a valid token and a pending backoff")
	}
	d.setReply(okReply(600))
	before := d.count()
	if !h.src.Invalidate(tok) {
		t.Fatal("token not dropped")
	}
	fresh, err := h.src.Token(context.Background())
	if err != nil || fresh == tok {
		t.Fatalf("after a 401 during a backoff: %v", err)
	}
	if n := d.count() - before; n != 1 {
		t.Fatalf("%d token requests after the 401, want 1", n)
	}
	if !h.clock.Now().Before(backoffEnds) {
		t.Fatal("the fresh token waited for the old backoff")
	}
}

// TestTokenUnusableOnArrivalIsATransientFailure (issue 17, defect 8): a
// token that has (almost) expired when its answer arrives is not a
// success: it is not served, the failure names the cause, and the next
// request waits for a backoff instead of following at once.
func TestTokenUnusableOnArrivalIsATransientFailure(t *testing.T) {
	d := newIdP(t)
	d.setReply(okReply(1))
	h := newHarness(t, d, nil)
	h.src.Start()
	ev := h.next(t)
	if ev.Kind != EventFailure || ev.Err.Class != ClassTransient || !strings.Contains(ev.Err.Error(), "unusable on arrival") {
		t.Fatalf("a token with 1 s to live: %+v", ev)
	}
	if !ev.RetryAt.After(h.clock.Now()) {
		t.Fatal("the next request is not backed off")
	}
	st := h.src.State()
	if st.Serving != nil || st.LastErr == nil {
		t.Fatalf("state after an unusable token: serving %v, last error %v", st.Serving != nil, st.LastErr)
	}
	if _, err := h.src.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "unusable on arrival") {
		t.Fatalf("a caller is told %v", err)
	}
	if d.count() != 1 {
		t.Fatalf("%d token requests before the backoff ended, want 1", d.count())
	}
}
