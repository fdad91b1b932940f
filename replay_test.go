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
	for _, pre := range []int{0, 1, 4, 9} {
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
			for i := range pre {
				if got.Get("X-Pre-"+strconv.Itoa(i)) != "v" {
					t.Errorf("header X-Pre-%d set before the upstream was lost", i)
				}
			}
		})
	}
}
