package groupidauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// lateReaders is an upstream transport whose sends outlive their round
// trip, as HTTP/1's write loop and HTTP/2's request writer can: for each
// request it is handed, a goroutine keeps reading the request's header
// map and trailer map until stop is called. Run with -race, any write to a
// map after it was handed to the transport is a reported data race (and,
// without -race, can be a fatal concurrent map write). The first answer
// is 401, every later one 200.
type lateReaders struct {
	mu   sync.Mutex
	sent []http.Header
	done chan struct{}
	wg   sync.WaitGroup
}

func (l *lateReaders) send(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.sent = append(l.sent, req.Header)
	n := len(l.sent)
	l.mu.Unlock()
	h, tr := req.Header, req.Trailer
	l.wg.Go(func() {
		for {
			for k, v := range h {
				_, _ = len(k), len(v)
			}
			for k := range tr {
				_ = len(k)
			}
			select {
			case <-l.done:
				return
			default:
			}
		}
	})
	status := http.StatusOK
	if n == 1 {
		status = http.StatusUnauthorized
	}
	return &http.Response{StatusCode: status, Body: http.NoBody, Header: http.Header{}}, nil
}

func (l *lateReaders) stop() { close(l.done); l.wg.Wait() }

// mapID tells header maps apart.
func mapID(h http.Header) uintptr { return reflect.ValueOf(h).Pointer() }

// TestSentHeadersAreNeverWrittenAgain: the transport never writes to a
// header map once a send may still read it. Here a 401 is replayed and
// then reverse_proxy retries (lb_retries reuse its clone and its header
// map when no header_up is set), while every earlier send still reads what
// it was given (-race reports any later write). Each send carries exactly
// the token in force and no override header; the client's request is
// never changed. In a server that does not log credentials the first send
// is reverse_proxy's own clone with the token written in before anything
// sent it (reverse_proxy's debug line shows Authorization REDACTED), and
// every later send is a copy; with log_credentials, or outside a server,
// every send is a copy and reverse_proxy's request stays as it was (its
// debug line would otherwise show the token).
func TestSentHeadersAreNeverWrittenAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		srv     *caddyhttp.Server
		inPlace bool
	}{
		{"server without log_credentials (default)", new(caddyhttp.Server), true},
		{"server with log_credentials", &caddyhttp.Server{Logs: &caddyhttp.ServerLogConfig{ShouldLogCredentials: true}}, false},
		{"no server", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) { sentHeadersNeverWrittenAgain(t, tc.srv, tc.inPlace) })
	}
}

func sentHeadersNeverWrittenAgain(t *testing.T, srv *caddyhttp.Server, inPlace bool) {
	h, sim := provisionedSim(t, nil)
	up := &lateReaders{done: make(chan struct{})}
	r := clientRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
	if srv != nil {
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
	}
	r.Header.Set("Authorization", "Basic client")
	r.Header.Set("X-Original-URL", "/GroupIDDataService/api/IdentityStores/2/Groups")
	r.Header.Set("Cookie", "a=b")
	var clone *http.Request
	var snapshot http.Header
	proxy := funcNext(func(_ http.ResponseWriter, r *http.Request) error {
		clone = r.Clone(r.Context()) // reverse_proxy's prepareRequest
		clone.Trailer = http.Header{}
		snapshot = clone.Header.Clone()
		for i := range 2 { // the first attempt, then an lb_retries retry
			resp, err := roundTrip(clone.WithContext(clone.Context()), up.send)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("round trip: %v, %v", resp, err)
			}
			if !inPlace && (!reflect.DeepEqual(clone.Header, snapshot) || len(clone.Trailer) != 0) {
				t.Fatalf("attempt %d changed reverse_proxy's request", i)
			}
		}
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, proxy); err != nil {
		t.Fatal(err)
	}
	up.stop()

	if len(up.sent) != 3 {
		t.Fatalf("%d sends, want 3 (the 401, its replay, the retry)", len(up.sent))
	}
	tokens := sim.IssuedTokens()
	if len(tokens) != 2 {
		t.Fatalf("%d tokens issued, want 2 (the 401 drops the first)", len(tokens))
	}
	want := []string{"Bearer " + tokens[0], "Bearer " + tokens[1], "Bearer " + tokens[1]}
	ids := map[uintptr]bool{mapID(r.Header): true}
	if !inPlace {
		ids[mapID(clone.Header)] = true
	} else if mapID(up.sent[0]) != mapID(clone.Header) {
		t.Error("the first send in a server without log_credentials copied the header map")
	}
	for i, got := range up.sent {
		if v := got["Authorization"]; len(v) != 1 || v[0] != want[i] {
			t.Errorf("send %d: Authorization is not exactly the token in force (%d values)", i, len(v))
		}
		if _, ok := got["X-Original-Url"]; ok {
			t.Errorf("send %d carried X-Original-URL", i)
		}
		if ids[mapID(got)] {
			t.Errorf("send %d got a header map that another send, reverse_proxy or the client holds", i)
		}
		ids[mapID(got)] = true
	}
	if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Basic client" || len(r.Header) != 3 {
		t.Error("the client's request was changed")
	}
}
