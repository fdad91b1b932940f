package tokencache

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// traceRecorder is an Options.Trace that records each request and its
// outcome, and marks the request's context.
type traceRecorder struct {
	mu   sync.Mutex
	reqs []TokenRequest
	res  []TokenResult
	// ctxSeen records whether Fetch ran with the context Trace returned.
	ctxSeen []bool
}

type traceKey struct{}

func (r *traceRecorder) trace(ctx context.Context, req TokenRequest) (context.Context, func(TokenResult)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return context.WithValue(ctx, traceKey{}, len(r.reqs)), func(res TokenResult) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.res = append(r.res, res)
	}
}

// seenTransport records whether each request carried the traced context.
type seenTransport struct {
	rec  *traceRecorder
	next http.RoundTripper
}

func (s seenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, ok := req.Context().Value(traceKey{}).(int)
	s.rec.mu.Lock()
	s.rec.ctxSeen = append(s.rec.ctxSeen, ok)
	s.rec.mu.Unlock()
	return s.next.RoundTrip(req)
}

// TestTraceSeesEveryTokenRequest: Trace is called once per token request,
// before it is sent (the request goes with the context Trace returned), and
// its end gets the HTTP status and the error; Shared says whether the
// request was made under the shared storage lock.
func TestTraceSeesEveryTokenRequest(t *testing.T) {
	rec := &traceRecorder{}
	d := newIdP(t)
	d.setReply(func(n int, form url.Values, w http.ResponseWriter) {
		if form.Get("grant_type") == "refresh_token" {
			errReply(400, "invalid_grant", "used")(n, form, w)
			return
		}
		okReply(60)(n, form, w)
	})
	sh := newMemShared()
	h := newHarness(t, d, func(o *Options) {
		o.Trace = rec.trace
		o.Shared = sh
		o.ShareLockTimeout = 200 * time.Millisecond
		o.Client.HTTP.Transport = seenTransport{rec, o.Client.HTTP.Transport}
	})
	h.src.Start()
	// A password grant under the lock; then a refused refresh token and
	// the password grant that follows, under the lock; then, with
	// storage down, the replica's own requests.
	h.nextOf(t, EventToken)
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventToken })
	sh.set(func(m *memShared) { m.fail = true })
	h.advanceUntil(t, func(ev Event) bool { return ev.Kind == EventToken })
	h.src.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []TokenRequest{{"password", true}, {"refresh_token", true}, {"password", true}}
	for len(want) < len(rec.reqs) {
		want = append(want, TokenRequest{"password", false}) // without the lock, no refresh token is shared
	}
	if len(rec.reqs) != d.count() || len(rec.res) != d.count() || len(rec.reqs) < 4 {
		t.Fatalf("traced %d requests, %d ends, for %d token requests", len(rec.reqs), len(rec.res), d.count())
	}
	for i, req := range rec.reqs {
		if req != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, req, want[i])
		}
		if !rec.ctxSeen[i] {
			t.Errorf("request %d was not sent with the traced context", i)
		}
	}
	if r := rec.res[1]; r.StatusCode != 400 || r.Err == nil || r.Err.Code != "invalid_grant" || r.Err.Class != ClassRejected {
		t.Errorf("refused refresh: %+v", r)
	}
	for _, i := range []int{0, 2, 3} {
		if r := rec.res[i]; r.StatusCode != 200 || r.Err != nil {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}
