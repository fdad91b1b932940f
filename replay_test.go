package groupidauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// flaky401 answers 401 (with a challenge header and a body) to its first
// call and 200 afterwards, recording the bodies it received.
type flaky401 struct {
	calls  int
	bodies []string
}

func (f *flaky401) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	f.calls++
	b, _ := io.ReadAll(r.Body)
	f.bodies = append(f.bodies, string(b))
	if f.calls == 1 {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Add("Server", "upstream")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("denied"))
		return nil
	}
	w.Header().Set("X-Upstream", "yes")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("fine"))
	return nil
}

// TestReplayRestoresResponseHeaders: after a held-back 401 the client sees
// only the replay's answer, on top of the headers set before the upstream
// was called (few, or more than the writer keeps inline).
func TestReplayRestoresResponseHeaders(t *testing.T) {
	for _, pre := range []int{0, 1, 3, 4, 9} {
		t.Run(strconv.Itoa(pre)+" headers set before", func(t *testing.T) {
			_, tokenURL := simSite(t, groupidsim.Config{})
			h := simHandler(tokenURL)
			if err := provision(t, h); err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			for i := range pre {
				w.Header().Set("X-Pre-"+strconv.Itoa(i), "v")
			}
			w.Header().Set("Alt-Svc", `h3=":443"`) // one of the headers Caddy's server sets
			next := &flaky401{}
			r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", strings.NewReader(`{"a":1}`))
			if _, err := serveWith(h, w, r, next); err != nil {
				t.Fatal(err)
			}
			if w.Code != 200 || w.Body.String() != "fine" || next.calls != 2 {
				t.Fatalf("client got %d %q after %d calls", w.Code, w.Body.String(), next.calls)
			}
			if next.bodies[0] != `{"a":1}` || next.bodies[1] != `{"a":1}` {
				t.Fatalf("bodies %q", next.bodies)
			}
			got := w.Header()
			if got.Get("WWW-Authenticate") != "" || len(got.Values("Server")) != 0 {
				t.Errorf("the held-back 401's headers leaked: %v", got)
			}
			if got.Get("X-Upstream") != "yes" {
				t.Error("the replay's headers are missing")
			}
			if got.Get("Alt-Svc") != `h3=":443"` {
				t.Error("Alt-Svc set before the upstream was lost")
			}
			for i := range pre {
				if got.Get("X-Pre-"+strconv.Itoa(i)) != "v" {
					t.Errorf("header X-Pre-%d set before the upstream was lost", i)
				}
			}
		})
	}
}

// funcNext is a next handler made of a function.
type funcNext func(http.ResponseWriter, *http.Request) error

func (f funcNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// answer401Then200 is a next handler that, on its first call, reads at
// most firstRead bytes of the body (-1: all of it) and answers 401; later
// calls read the whole body and answer 200. It records the bodies.
type answer401Then200 struct {
	firstRead int
	calls     int
	bodies    [][]byte
	first     io.Reader // the body the first call was given
}

func (a *answer401Then200) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	a.calls++
	if a.calls == 1 {
		a.first = r.Body
		var got []byte
		var err error
		if a.firstRead < 0 {
			got, err = io.ReadAll(oddReader{r.Body})
		} else {
			got, err = io.ReadAll(io.LimitReader(r.Body, int64(a.firstRead)))
		}
		if err != nil {
			return err
		}
		a.bodies = append(a.bodies, got)
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	}
	// The first call's body is dead: a transport still writing it from
	// its own goroutine must not take bytes from the replay.
	if _, err := a.first.Read(make([]byte, 1)); !errors.Is(err, errReplayBodyGone) && a.first != http.NoBody {
		return fmt.Errorf("the first pass's body during the replay: %v", err)
	}
	got, err := io.ReadAll(oddReader{r.Body})
	a.bodies = append(a.bodies, got)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// provisioned is a handler in front of a simulator, with a token held.
func provisioned(t *testing.T, mod func(*Handler)) *Handler {
	t.Helper()
	h, _ := provisionedSim(t, mod)
	return h
}

// provisionedSim is provisioned that also returns the simulator.
func provisionedSim(t *testing.T, mod func(*Handler)) (*Handler, *groupidsim.Server) {
	t.Helper()
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if mod != nil {
		mod(h)
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	return h, sim
}

// TestReplayBodyByteForByte: the replay carries the whole body, byte for
// byte, whether the upstream read all of it or answered 401 after a part
// (then the rest comes from the original); the first pass's body is dead
// once the 401 is held back, the replay's once the handler returned.
func TestReplayBodyByteForByte(t *testing.T) {
	for _, size := range []int{1, 100, 5*replayChunkSize + 7} {
		for _, chunked := range []bool{false, true} {
			for _, firstRead := range []int{-1, 0, 100} {
				name := fmt.Sprintf("%d bytes, chunked %v, upstream reads %d", size, chunked, firstRead)
				t.Run(name, func(t *testing.T) {
					// A handler each: every case spends one of the
					// credential's token drops (three a minute).
					h := provisioned(t, nil)
					want := pattern(size)
					r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
					if chunked {
						r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
					}
					next := &answer401Then200{firstRead: firstRead}
					passedBefore := h.cred().counters.unauthorizedPassed.Load()
					w, err := serve(h, r, next)
					if err != nil || w.Code != 200 || next.calls != 2 {
						t.Fatalf("client got %d (err %v) after %d calls", w.Code, err, next.calls)
					}
					if !bytes.Equal(next.bodies[1], want) {
						t.Fatalf("replayed %d bytes, want the %d sent", len(next.bodies[1]), size)
					}
					if n := h.cred().counters.unauthorizedPassed.Load() - passedBefore; n != 0 {
						t.Fatalf("%d 401s passed", n)
					}
					if _, err := next.first.Read(make([]byte, 1)); !errors.Is(err, errReplayBodyGone) {
						t.Fatalf("first pass's body after the replay: %v", err)
					}
					if held := replayMemoryHeld.Load(); held != 0 {
						t.Fatalf("%d bytes still held", held)
					}
				})
			}
		}
	}
}

// TestReplayBodyOverMaxNotReplayed: a body larger than max_replay_body,
// announced or found out while streaming, is not replayed; its 401 goes to
// the client and is counted.
func TestReplayBodyOverMaxNotReplayed(t *testing.T) {
	const max = 64 << 10
	h := provisioned(t, func(h *Handler) { h.MaxReplayBody = new(int64(max)) })
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked %v", chunked), func(t *testing.T) {
			want := pattern(max + 1)
			r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
			if chunked {
				r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
			}
			next := &answer401Then200{firstRead: -1}
			passedBefore := h.cred().counters.unauthorizedPassed.Load()
			w, err := serve(h, r, next)
			if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 {
				t.Fatalf("client got %d (err %v) after %d calls, want the upstream's 401 after 1", w.Code, err, next.calls)
			}
			if !bytes.Equal(next.bodies[0], want) {
				t.Fatalf("forwarded %d bytes, want %d", len(next.bodies[0]), len(want))
			}
			if n := h.cred().counters.unauthorizedPassed.Load() - passedBefore; n != 1 {
				t.Fatalf("unauthorizedPassed grew by %d, want 1", n)
			}
			if held := replayMemoryHeld.Load(); held != 0 {
				t.Fatalf("%d bytes still held", held)
			}
		})
	}
}

// TestReplayThroughRealTransport: through a real http.Transport (as
// reverse_proxy uses), an upstream that answers 401 before reading a
// 512 KiB body, while the transport is still writing it from its own
// goroutine, gets the whole body byte for byte on the replay; the race
// detector watches the transport's late reads and closes.
func TestReplayThroughRealTransport(t *testing.T) {
	want := pattern(512 << 10)
	var calls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusUnauthorized) // without reading the body
			return
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, want) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	proxy.Transport = transport
	next := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		proxy.ServeHTTP(w, r)
		return nil
	})
	for i := range 5 {
		h := provisioned(t, nil) // each round spends one of three token drops a minute
		calls.Store(0)
		r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
		w, err := serve(h, r, next)
		if err != nil || w.Code != 200 || calls.Load() != 2 {
			t.Fatalf("round %d: client got %d (err %v) after %d upstream calls", i, w.Code, err, calls.Load())
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return replayMemoryHeld.Load() == 0 }, "replay memory given back")
}

// TestReplayOnlyWhenTheTokenWasDropped: an upstream that rejects every
// token gets each request replayed only while the drop budget lets the
// token be dropped; after that the token is kept, the 401 passes through,
// and neither a token request nor a replay is spent.
func TestReplayOnlyWhenTheTokenWasDropped(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	calls := 0
	always401 := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		calls++
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	})
	for i := range tokencache.MaxInvalidations + 3 {
		calls = 0
		w, err := serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil), always401)
		if err != nil || w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %v %d", i, err, w.Code)
		}
		want := 1
		if i < tokencache.MaxInvalidations {
			want = 2 // dropped, so replayed once with a fresh token
		}
		if calls != want {
			t.Fatalf("request %d reached the upstream %d times, want %d", i, calls, want)
		}
	}
	if n := sim.Counters().TokensTotal(); n != 1+tokencache.MaxInvalidations {
		t.Fatalf("%d token requests, want %d", n, 1+tokencache.MaxInvalidations)
	}
	if r := h.cred().counters.replays.Load(); r != tokencache.MaxInvalidations {
		t.Fatalf("%d replays, want %d", r, tokencache.MaxInvalidations)
	}
}

// TestMaxReplayBodyZeroKeepsNoBody (issue 17, defect 7): max_replay_body 0
// is not "unset" (1 MiB) but "keep no body": a 401 to a request with a
// body goes to the client, one without a body is still replayed. Given in
// the Caddyfile and in JSON alike.
func TestMaxReplayBodyZeroKeepsNoBody(t *testing.T) {
	var fromCaddyfile Handler
	if err := fromCaddyfile.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid_auth {\n max_replay_body 0\n}")); err != nil {
		t.Fatal(err)
	}
	var fromJSON Handler
	if err := json.Unmarshal([]byte(`{"max_replay_body":0}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string]*int64{"Caddyfile": fromCaddyfile.MaxReplayBody, "JSON": fromJSON.MaxReplayBody} {
		t.Run(name, func(t *testing.T) {
			h := provisioned(t, func(h *Handler) { h.MaxReplayBody = set })
			if *h.MaxReplayBody != 0 {
				t.Fatalf("max_replay_body 0 became %d", *h.MaxReplayBody)
			}
			next := &answer401Then200{firstRead: -1}
			w, err := serve(h, httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", strings.NewReader(`{"a":1}`)), next)
			if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 {
				t.Fatalf("with a body: client got %d (err %v) after %d calls, want the 401 unreplayed", w.Code, err, next.calls)
			}
			next = &answer401Then200{firstRead: -1}
			w, err = serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x", nil), next)
			if err != nil || w.Code != http.StatusOK || next.calls != 2 {
				t.Fatalf("without a body: client got %d (err %v) after %d calls, want one replay", w.Code, err, next.calls)
			}
		})
	}
}
