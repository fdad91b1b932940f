package groupidauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// simSite runs a simulator over plain HTTP for handler tests.
func simSite(t *testing.T, cfg groupidsim.Config) (*groupidsim.Server, string) {
	t.Helper()
	sim := groupidsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, sim.TokenURL(srv.URL)
}

func simHandler(tokenURL string) *Handler {
	return &Handler{
		TokenURL:        tokenURL,
		Username:        groupidsim.DefaultUsername,
		Password:        groupidsim.DefaultPassword,
		ClientID:        groupidsim.DefaultClientID,
		ClientSecret:    groupidsim.DefaultClientSecret,
		IdentityStoreID: groupidsim.DefaultIdentityStoreID,
		AllowHTTP:       true, // the simulator runs over plain HTTP in these tests
	}
}

// provision provisions h in a fresh Caddy context and cleans up after the test.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	return provisionB(t, h)
}

// provisionB is provision for tests and benchmarks alike.
func provisionB(t testing.TB, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	err := h.Provision(ctx)
	t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return err
}

// recordNext is a next handler that records the Authorization values it saw.
type recordNext struct{ seen [][]string }

func (n *recordNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.seen = append(n.seen, r.Header.Values("Authorization"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func serve(h *Handler, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, error) {
	return serveWith(h, httptest.NewRecorder(), r, next)
}

// serveWith is serve with a given recorder (e.g. with headers already set).
func serveWith(h *Handler, w *httptest.ResponseRecorder, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, error) {
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	return w, h.ServeHTTP(w, r, next)
}

func TestServeHTTPReplacesClientAuthorization(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	next := &recordNext{}
	for _, forged := range [][]string{nil, {"Bearer forged"}, {"Basic Zm9vOmJhcg==", "Bearer second"}} {
		r := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x", nil)
		for _, v := range forged {
			r.Header.Add("Authorization", v)
		}
		if _, err := serve(h, r, next); err != nil {
			t.Fatal(err)
		}
	}
	issued := sim.IssuedTokens()
	if len(issued) != 1 {
		t.Fatalf("issued %d tokens, want 1", len(issued))
	}
	for i, seen := range next.seen {
		if len(seen) != 1 || seen[0] != "Bearer "+issued[0] {
			t.Errorf("request %d: next saw %d Authorization values, not exactly our token", i, len(seen))
		}
	}
}

func TestServeHTTPUnreachableGives503WithRetryAfter(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	h := simHandler(tokenURL)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	next := &recordNext{}
	w, err := serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil), next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("want 503 handler error, got %v", err)
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if len(next.seen) != 0 {
		t.Error("request forwarded without a token")
	}
}

func TestServeHTTPRejectedCredentialsGive502(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	h.Password = "wrong-password-value"
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	next := &recordNext{}
	_, err := serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil), next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusBadGateway {
		t.Fatalf("want 502 handler error, got %v", err)
	}
	if !strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), h.Password) {
		t.Errorf("error should name the OAuth code and not the password: %v", err)
	}
	if len(next.seen) != 0 {
		t.Error("request forwarded without a token")
	}
}

func TestServeHTTPRefusesDotSegmentPaths(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/GroupIDDataService/api/IdentityStores/2/Users/../../Logs/Download",
		"/GroupIDDataService/api/IdentityStores/2/Users/%2e%2e/%2e%2e/Logs/Download",
		"/GroupIDDataService/api/IdentityStores/2/Users/..",
		"/GroupIDDataService/api/IdentityStores/2/Users/./x",
		"/GroupIDDataService/api/IdentityStores/2/Users/x%5C..%5Cy",
	} {
		next := &recordNext{}
		_, err := serve(h, httptest.NewRequest("GET", p, nil), next)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || len(next.seen) != 0 {
			t.Errorf("%s: got %v, forwarded %d", p, err, len(next.seen))
		}
	}
	for _, p := range []string{"/GroupIDDataService/api/IdentityStores/2/Users/a.b", "/x/..y/z", "/x/y.."} {
		if unsafePath(p) {
			t.Errorf("%s flagged as unsafe", p)
		}
	}
	_ = sim
}

func TestProvisionExpandsPlaceholders(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client_secret")
	if err := os.WriteFile(secretFile, []byte(groupidsim.DefaultClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GID_TEST_PASSWORD", groupidsim.DefaultPassword)
	h := simHandler(tokenURL)
	h.Password = "{env.GID_TEST_PASSWORD}"
	h.ClientSecret = "{file." + secretFile + "}"
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	if h.Password != groupidsim.DefaultPassword || h.ClientSecret != groupidsim.DefaultClientSecret {
		t.Error("placeholders not expanded (or trailing newline kept)")
	}
	if _, err := h.shared.src.Token(context.Background()); err != nil {
		t.Fatalf("token with expanded secrets: %v", err)
	}
}

func TestProvisionErrorsNameTheFieldNotTheValue(t *testing.T) {
	t.Setenv("GID_EMPTY", "")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() *Handler { return simHandler("https://gid.example:4443/GroupIDSecurityService/connect/token") }
	cases := []struct {
		name   string
		mutate func(*Handler)
		want   string
	}{
		{"missing token_url", func(h *Handler) { h.TokenURL = "" }, "token_url: required"},
		{"missing username", func(h *Handler) { h.Username = "" }, "username: required"},
		{"missing password", func(h *Handler) { h.Password = "" }, "password: required"},
		{"missing client_id", func(h *Handler) { h.ClientID = "" }, "client_id: required"},
		{"missing client_secret", func(h *Handler) { h.ClientSecret = "" }, "client_secret: required"},
		{"missing identity_store_id", func(h *Handler) { h.IdentityStoreID = "" }, "identity_store_id: required"},
		{"relative token_url", func(h *Handler) { h.TokenURL = "/connect/token" }, "token_url: must be an absolute"},
		{"ftp token_url", func(h *Handler) { h.TokenURL = "ftp://gid/connect/token" }, "token_url: must be an absolute"},
		{"token_url with user info", func(h *Handler) { h.TokenURL = "https://u:hunter2@gid/t" }, "token_url: must not carry user information"},
		{"empty env placeholder", func(h *Handler) { h.Password = "{env.GID_EMPTY}" }, "password: evaluated placeholder {env.GID_EMPTY} is empty"},
		{"unreadable file placeholder", func(h *Handler) { h.ClientSecret = "{file./nonexistent/secret}" }, "client_secret: evaluated placeholder {file./nonexistent/secret} is empty"},
		{"negative refresh_before", func(h *Handler) { h.RefreshBefore = caddy.Duration(-time.Second) }, "refresh_before: must not be negative"},
		{"negative timeout", func(h *Handler) { h.Timeout = caddy.Duration(-time.Second) }, "timeout: must not be negative"},
		{"huge timeout", func(h *Handler) { h.Timeout = caddy.Duration(time.Hour) }, "timeout: must be at most 5m"},
		{"dial above timeout", func(h *Handler) {
			h.Timeout, h.DialTimeout = caddy.Duration(time.Second), caddy.Duration(2*time.Second)
		}, "dial_timeout: must not exceed timeout"},
		{"negative dial_timeout", func(h *Handler) { h.DialTimeout = caddy.Duration(-time.Second) }, "dial_timeout: must not be negative"},
		{"refresh_before of days", func(h *Handler) { h.RefreshBefore = caddy.Duration(48 * time.Hour) }, "refresh_before: must be shorter than a day"},
		{"bad client_auth", func(h *Handler) { h.ClientAuth = "jwt" }, "client_auth: must be form or basic"},
		{"cert without key", func(h *Handler) { h.TLSClientCert = "/c.pem" }, "tls_client_cert and tls_client_key: give both or neither"},
		{"ca file and pool", func(h *Handler) { h.CACertFile, h.TrustPoolRaw = "/ca.pem", []byte(`{"provider":"file"}`) }, "ca_cert_file and tls_trust_pool: use one"},
		{"TLS settings on http", func(h *Handler) { h.TokenURL, h.TLSServerName = "http://gid/t", "gid" }, "token_url: TLS settings given for an http:// URL"},
		{"name with control", func(h *Handler) { h.Name = "a\nb" }, "name: must be at most 128 printable characters"},
		{"missing ca_cert_file", func(h *Handler) { h.CACertFile = "/nonexistent/ca.pem" }, "ca_cert_file:"},
		{"ca_cert_file without PEM", func(h *Handler) { h.CACertFile = notPEM }, "ca_cert_file: no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.mutate(h)
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			for _, secret := range []string{groupidsim.DefaultPassword, groupidsim.DefaultClientSecret, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Error("error contains a secret value")
				}
			}
			if h.poolKey != "" {
				t.Error("failed Provision acquired a token source")
			}
		})
	}
}

func TestReprovisionSameCredentialSharesSourceAndToken(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	first := simHandler(tokenURL)
	if err := provision(t, first); err != nil {
		t.Fatal(err)
	}
	if _, err := first.shared.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A reload: the new config provisions before the old one is cleaned up.
	second := simHandler(tokenURL)
	if err := provision(t, second); err != nil {
		t.Fatal(err)
	}
	if err := first.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if second.shared != first.shared {
		t.Fatal("reload created a new token source")
	}
	if _, err := second.shared.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sim.Counters().TokensTotal(); n != 1 {
		t.Fatalf("token requests %d, want 1", n)
	}
}

// statusOf returns the HTTP status of a caddyhttp.HandlerError, or 0.
func statusOf(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

func TestUnsafePath(t *testing.T) {
	for p, want := range map[string]bool{
		"/a/b":       false,
		"/a/.b":      false,
		"/a/..b":     false,
		"/a/b.":      false,
		"/a/b..":     false,
		"/.well":     false,
		"/a/./b":     true,
		"/a/../b":    true,
		"/a/.":       true,
		"/a/..":      true,
		"/.":         true,
		"/..":        true,
		"/a/.x/../b": true,
		"/a/.x/.y/.": true,
		`/a\b`:       true,
		"":           false,
	} {
		if got := unsafePath(p); got != want {
			t.Errorf("unsafePath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestStripedCounterSums(t *testing.T) {
	var c stripedCounter
	concurrentAdds := 8
	done := make(chan struct{})
	for range concurrentAdds {
		go func() {
			for range 1000 {
				c.Add()
			}
			done <- struct{}{}
		}()
	}
	for range concurrentAdds {
		<-done
	}
	if got := c.Load(); got != 8000 {
		t.Fatalf("sum %d, want 8000", got)
	}
}
