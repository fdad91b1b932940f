package groupidauth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
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

func TestBufferBody(t *testing.T) {
	const max = 16
	cases := []struct {
		name       string
		body       string
		length     int64 // -1: unknown (chunked)
		replayable bool
		buffered   bool
	}{
		{"empty, known length", "", 0, true, false},
		{"small, known length", "0123456789", 10, true, true},
		{"exactly max", strings.Repeat("x", max), max, true, true},
		{"over max, known length", strings.Repeat("x", max+1), max + 1, false, false},
		{"small, chunked", "0123456789", -1, true, true},
		{"over max, chunked", strings.Repeat("y", 3*max), -1, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader(tc.body)))
			r.ContentLength = tc.length
			if tc.length < 0 {
				r.TransferEncoding = []string{"chunked"}
			}
			body, replayable, err := bufferBody(r, max)
			if err != nil || replayable != tc.replayable || (body != nil) != tc.buffered {
				t.Fatalf("got body=%v replayable=%v err=%v", body != nil, replayable, err)
			}
			// Whatever happened, the upstream still reads the whole body.
			rest, _ := io.ReadAll(r.Body)
			if string(rest) != tc.body {
				t.Fatalf("forwarded body %q, want %q", rest, tc.body)
			}
			if tc.buffered && string(body) != tc.body {
				t.Fatalf("buffered %q", body)
			}
		})
	}
}
