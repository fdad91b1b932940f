package groupidauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

func (n *recordNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.seen = append(n.seen, r.Header.Values("Authorization"))
	w.WriteHeader(http.StatusNoContent)
	return nil
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

func TestReprovisionSameCredentialSharesSourceAndToken(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	first := simHandler(tokenURL)
	if err := provision(t, first); err != nil {
		t.Fatal(err)
	}
	if _, err := first.cred().src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A reload: the new config provisions before the old one is cleaned up.
	second := simHandler(tokenURL)
	if err := provision(t, second); err != nil {
		t.Fatal(err)
	}
	if err := retire(first); err != nil {
		t.Fatal(err)
	}
	if second.cred() != first.cred() {
		t.Fatal("reload created a new token source")
	}
	if _, err := second.cred().src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sim.Counters().TokensTotal(); n != 1 {
		t.Fatalf("token requests %d, want 1", n)
	}
}
