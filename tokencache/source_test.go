package tokencache

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
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
	wg.Wait()
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
