package groupidsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCfg is the configuration most tests use.
func testCfg() Config {
	return Config{
		Username:        "svc-groupid",
		Password:        "pw-1",
		ClientID:        "client-a",
		ClientSecret:    "secret-a",
		IdentityStoreID: "2",
	}
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is a simulator behind an httptest server.
type harness struct {
	t   *testing.T
	sim *Server
	srv *httptest.Server
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	sim := New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, srv: srv}
}

// reply is a finished HTTP exchange.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// do sends a request with a raw body and optional header pairs.
func (h *harness) do(method, path string, body []byte, headers ...string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

const tokenPath = "/GroupIDSecurityService/connect/token"

// token posts a form to the token endpoint.
func (h *harness) token(form url.Values, headers ...string) reply {
	h.t.Helper()
	hs := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return h.do(http.MethodPost, tokenPath, []byte(form.Encode()), hs...)
}

// passwordForm is a complete, valid password grant for testCfg.
func passwordForm() url.Values {
	return url.Values{
		"grant_type":        {"password"},
		"username":          {"svc-groupid"},
		"password":          {"pw-1"},
		"client_id":         {"client-a"},
		"client_secret":     {"secret-a"},
		"identity_store_id": {"2"},
	}
}

func refreshForm(rt string) url.Values {
	return url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {rt},
		"client_id":     {"client-a"},
		"client_secret": {"secret-a"},
	}
}

// login runs a password grant and returns access and refresh tokens.
func (h *harness) login() (string, string) {
	h.t.Helper()
	r := h.token(passwordForm())
	if r.status != http.StatusOK {
		h.t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	m := r.json(h.t)
	rt, _ := m["refresh_token"].(string)
	return m["access_token"].(string), rt
}

const dataAPI = "/GroupIDDataService/api/IdentityStores/2"

// api calls the Data API with a bearer token.
func (h *harness) api(method, path, token string, body string) reply {
	h.t.Helper()
	return h.do(method, path, []byte(body), "Authorization", "Bearer "+token, "Content-Type", "application/json")
}

func wantStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %q", r.status, want, r.body)
	}
}

func hasNoStore(t *testing.T, r reply) {
	t.Helper()
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := r.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
}

func contentTypeIs(t *testing.T, r reply, prefix string) {
	t.Helper()
	if got := r.header.Get("Content-Type"); !strings.HasPrefix(got, prefix) {
		t.Errorf("Content-Type = %q, want %s...", got, prefix)
	}
}
