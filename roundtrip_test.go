package groupidauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// chain is a handler chain after groupid_auth: each link may change the
// shared request (as uri, rewrite or request_header do) before the next.
type chain []caddyhttp.Handler

func (c chain) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	for _, h := range c {
		if err := h.ServeHTTP(w, r); err != nil {
			return err
		}
	}
	return nil
}

// recorder is an upstream (or another backend) that records the
// Authorization values and paths of what it received, and answers 200.
type recorder struct {
	auth  [][]string
	paths []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	rec.auth = append(rec.auth, r.Header.Values("Authorization"))
	rec.paths = append(rec.paths, r.URL.Path)
	_, _ = w.Write([]byte("ok"))
	return nil
}

// viaProxy makes an upstream reachable only through proxyTo, so that
// chain members after it see the client's request.
func viaProxy(up caddyhttp.Handler) caddyhttp.Handler { return upstream{up} }

func clientRequest(method, path string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	return r.WithContext(ctx)
}

// TestTokenOnlyOnTheRequestSentToGroupID: the upstream gets exactly the
// token, while the request every other handler sees (before the proxy,
// after it, and once groupid_auth returned) keeps the client's own
// Authorization and no token; after the handler returns the request is no
// longer bound, so an error route's proxy would send no token.
func TestTokenOnlyOnTheRequestSentToGroupID(t *testing.T) {
	h, sim := provisionedSim(t, nil)
	groupid := &recorder{}
	var seenAfterProxy []string
	after := funcNext(func(_ http.ResponseWriter, r *http.Request) error {
		seenAfterProxy = r.Header.Values("Authorization")
		return nil
	})
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	r.Header.Set("Authorization", "Basic client")
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, chain{viaProxy(groupid), after}); err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + sim.IssuedTokens()[0]
	if len(groupid.auth) != 1 || len(groupid.auth[0]) != 1 || groupid.auth[0][0] != bearer {
		t.Fatalf("GroupID got %d requests, Authorization not exactly the token", len(groupid.auth))
	}
	if len(seenAfterProxy) != 1 || seenAfterProxy[0] != "Basic client" {
		t.Fatalf("a handler after the proxy saw Authorization %d values, want the client's own", len(seenAfterProxy))
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic client" {
		t.Fatal("the client's request was changed")
	}
	if boundNow(r) != nil {
		t.Fatal("the request is still bound after groupid_auth returned")
	}
	errorPages := &recorder{}
	if err := viaProxy(errorPages).ServeHTTP(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if got := errorPages.auth[0]; len(got) != 1 || got[0] != "Basic client" {
		t.Fatal("an error route's groupid transport sent a token")
	}
}

// rewrite stands in for uri, rewrite and handle_path after groupid_auth.
func rewrite(path string) caddyhttp.Handler {
	return funcNext(func(_ http.ResponseWriter, r *http.Request) error {
		r.URL.Path, r.URL.RawPath = path, ""
		return nil
	})
}

// TestScopeCheckedOnTheURLSent: whatever rewrites run after groupid_auth,
// the token goes only to the credential's store's User and Group APIs as
// the request leaves the proxy; anything else is refused and never sent.
func TestScopeCheckedOnTheURLSent(t *testing.T) {
	h := provisioned(t, nil)
	cases := []struct {
		sent   string
		status int // 0: forwarded
	}{
		{"/GroupIDDataService/api/IdentityStores/2/Users", 0},
		{"/GroupIDDataService/api/IdentityStores/2/Groups/g1/Join", 0},
		{"/groupiddataservice/API/identitystores/2/USERS/u1", 0},
		{"/DataService/api/IdentityStores/2/Users", http.StatusForbidden}, // a prefix stripped twice
		{"/GroupIDDataService/api/IdentityStores/3/Users", http.StatusForbidden},
		{"/GroupIDDataService/api/IdentityStores/2/UsersX", http.StatusForbidden},
		{"/GroupIDDataService/api/IdentityStores/2//Users", http.StatusForbidden},
		{"/GroupIDDataService/api/Logs/Download", http.StatusForbidden},
		{"/GroupIDSecurityService/connect/token", http.StatusForbidden},
		{"/GroupIDDataService/api/IdentityStores/2/Users/../../../Logs/Download", http.StatusBadRequest},
	}
	for _, c := range cases {
		groupid := &recorder{}
		r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
		err := h.ServeHTTP(httptest.NewRecorder(), r, chain{rewrite(c.sent), viaProxy(groupid)})
		if got := statusOf(err); got != c.status {
			t.Errorf("%s: status %d (%v), want %d", c.sent, got, err, c.status)
		}
		if sent := len(groupid.paths) == 1; sent != (c.status == 0) {
			t.Errorf("%s: forwarded %v", c.sent, sent)
		}
	}
}

// TestUnboundRequestsGoWithoutToken: through the groupid transport, a
// request that did not pass groupid_auth (an active health check, another
// route) is sent as it is.
func TestUnboundRequestsGoWithoutToken(t *testing.T) {
	app := &recorder{}
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	if err := viaProxy(app).ServeHTTP(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if len(app.auth) != 1 || len(app.auth[0]) != 0 {
		t.Fatal("an unbound request got an Authorization header")
	}
}

// always401 answers every request 401 and counts them.
type always401 struct{ calls int }

func (a *always401) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	a.calls++
	w.WriteHeader(http.StatusUnauthorized)
	return nil
}

// TestOneReplayPerClientRequest: however many round trips one client
// request makes (lb_retries, a second proxy in the chain), it is replayed
// at most once.
func TestOneReplayPerClientRequest(t *testing.T) {
	h := provisioned(t, nil)
	groupid := &always401{}
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	err := h.ServeHTTP(httptest.NewRecorder(), r, chain{viaProxy(groupid), viaProxy(groupid)})
	if err != nil {
		t.Fatal(err)
	}
	if groupid.calls != 3 {
		t.Fatalf("GroupID got %d requests, want 3 (one replay in all)", groupid.calls)
	}
	if n := h.cred().counters.replays.Load(); n != 1 {
		t.Fatalf("%d replays counted", n)
	}
}

// TestTransportRefusalGetsRetryAfter: when the token is gone by the time
// the request reaches the transport (dropped, GroupID down), the client
// gets 503 with Retry-After, as when groupid_auth refuses it, and the
// request is not sent.
func TestTransportRefusalGetsRetryAfter(t *testing.T) {
	r := newRig(t, groupidsim.Config{}, nil)
	r.settle()
	if st, _ := r.getUser(); st != 200 {
		t.Fatalf("warm-up: %d", st)
	}
	groupid := &recorder{}
	dropThenProxy := chain{
		funcNext(func(http.ResponseWriter, *http.Request) error {
			r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
			r.h.cred().src.Invalidate(r.h.cred().src.Serving())
			return nil
		}),
		viaProxy(groupid),
	}
	req := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	w := httptest.NewRecorder()
	err := r.h.ServeHTTP(w, req, dropThenProxy)
	if statusOf(err) != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("client got %v, Retry-After %q", err, w.Header().Get("Retry-After"))
	}
	if len(groupid.paths) != 0 {
		t.Fatal("the request was sent without a token")
	}
}

// TestAppNeedsHandlersAndTransportsTogether: a config with groupid_auth but
// no groupid transport (the shape of earlier releases, where the handler
// set the token itself) does not start, and says what to change; so does
// a groupid transport without groupid_auth.
func TestAppNeedsHandlersAndTransportsTogether(t *testing.T) {
	var both App
	both.addHandler("svc")
	both.addTransport()
	if err := both.Start(); err != nil {
		t.Fatal(err)
	}
	var old App
	old.addHandler("svc")
	if err := old.Start(); err == nil || !strings.Contains(err.Error(), "transport groupid") || !strings.Contains(err.Error(), "svc") {
		t.Fatalf("handler without transport: %v", err)
	}
	var bare App
	bare.addTransport()
	if err := bare.Start(); !errors.Is(err, errNoHandler) {
		t.Fatalf("transport without handler: %v", err)
	}
	var none App
	if err := none.Start(); err != nil {
		t.Fatal(err)
	}
}

// TestNestedBindingRestored: groupid_auth twice in one chain: inside the
// inner one its credential is bound; once it returns, the outer one's is
// again, and once the outer returns, none.
func TestNestedBindingRestored(t *testing.T) {
	outer := provisioned(t, func(h *Handler) { h.Name = "outer" })
	inner := provisioned(t, func(h *Handler) { h.Name = "inner" })
	var during, after *binding
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	innerThen := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		return inner.ServeHTTP(w, r, funcNext(func(_ http.ResponseWriter, r *http.Request) error {
			during = boundNow(r)
			return nil
		}))
	})
	check := funcNext(func(_ http.ResponseWriter, r *http.Request) error {
		after = boundNow(r)
		return nil
	})
	if err := outer.ServeHTTP(httptest.NewRecorder(), r, chain{innerThen, check}); err != nil {
		t.Fatal(err)
	}
	if during != inner.binding || after != outer.binding || boundNow(r) != nil {
		t.Fatalf("bindings: inside the inner %v, after it %v, after both %v", during, after, boundNow(r))
	}
}

// TestOutOfScopeRefusalLoggedOncePerMinute: a refusal for a path outside
// the credential's APIs is logged at warn (Caddy logs 4xx handler errors
// only at debug), once a minute however many requests are refused.
func TestOutOfScopeRefusalLoggedOncePerMinute(t *testing.T) {
	r := newRig(t, groupidsim.Config{}, nil)
	r.settle()
	refuse := func() {
		req := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
		err := r.h.ServeHTTP(httptest.NewRecorder(), req, chain{rewrite("/GroupIDDataService/api/Logs/Download"), viaProxy(&recorder{})})
		if statusOf(err) != http.StatusForbidden {
			t.Fatalf("refusal: %v", err)
		}
	}
	lines := func() int { return r.logs.FilterMessageSnippet("outside the credential's User and Group APIs").Len() }
	for range 5 {
		refuse()
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d log lines for 5 refusals within a minute, want 1", n)
	}
	r.clk.Advance(61 * time.Second)
	refuse()
	if n := lines(); n != 2 {
		t.Fatalf("%d log lines after a minute, want 2", n)
	}
}

// TestPanicLeavesNoBinding: a handler after groupid_auth that panics (Caddy
// recovers it and runs the error routes) leaves the request unbound.
func TestPanicLeavesNoBinding(t *testing.T) {
	h := provisioned(t, nil)
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	func() {
		defer func() { _ = recover() }()
		_ = h.ServeHTTP(httptest.NewRecorder(), r, funcNext(func(http.ResponseWriter, *http.Request) error { panic("boom") }))
	}()
	if boundNow(r) != nil {
		t.Fatal("still bound after a panic: an error route's groupid transport would send the token")
	}
}

// boundNow is the binding in force for r, or nil.
func boundNow(r *http.Request) *binding { return passageOf(r).active() }

// TestOneReplayAcrossNestedHandlers: groupid_auth twice in one chain still
// replays a client request at most once, whichever handler binds its
// round trips.
func TestOneReplayAcrossNestedHandlers(t *testing.T) {
	outer := provisioned(t, func(h *Handler) { h.Name = "outer" })
	inner := provisioned(t, func(h *Handler) { h.Name = "inner" })
	groupid := &always401{}
	innerProxy := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		return inner.ServeHTTP(w, r, viaProxy(groupid))
	})
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	// The outer handler's round trip first, then the inner one's.
	if err := outer.ServeHTTP(httptest.NewRecorder(), r, chain{viaProxy(groupid), innerProxy}); err != nil {
		t.Fatal(err)
	}
	if groupid.calls != 3 {
		t.Fatalf("GroupID got %d requests, want 3 (one replay in all)", groupid.calls)
	}
}
