package groupidsim

import (
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const revocationPath = "/GroupIDSecurityService/connect/revocation"

// revokeForm posts a revocation form with the client's form credentials.
func (h *harness) revoke(token, hint string, headers ...string) reply {
	h.t.Helper()
	form := url.Values{"token": {token}, "client_id": {"client-a"}, "client_secret": {"secret-a"}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	hs := append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return h.do(http.MethodPost, revocationPath, []byte(form.Encode()), hs...)
}

// TestRevocationRevokesTheFamily: revoking the newest refresh token of a
// chain revokes every refresh token of its family (the next refresh gets
// invalid_grant) but no access token, and not another family; it is
// counted once as revoked and listed; presenting it again is 200 unknown.
func TestRevocationRevokesTheFamily(t *testing.T) {
	h := newHarness(t, testCfg())
	at1, rt1 := h.login()
	r := h.token(refreshForm(rt1))
	wantStatus(t, r, http.StatusOK)
	rt2 := r.json(t)["refresh_token"].(string)
	otherAT, otherRT := h.login()

	wantStatus(t, h.revoke(rt2, "refresh_token"), http.StatusOK)
	if got := h.sim.RevokedRefreshTokens(); !slices.Equal(got, []string{rt2}) {
		t.Fatalf("RevokedRefreshTokens = %v, want the newest of the chain", got)
	}
	if r := h.token(refreshForm(rt2)); r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("refresh with the revoked token: %d %s", r.status, r.body)
	}
	wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, at1, ""), http.StatusOK)
	wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, otherAT, ""), http.StatusOK)
	wantStatus(t, h.token(refreshForm(otherRT)), http.StatusOK)

	wantStatus(t, h.revoke(rt2, ""), http.StatusOK)
	wantStatus(t, h.revoke("no-such-token", "refresh_token"), http.StatusOK)
	wantStatus(t, h.revoke(at1, "access_token"), http.StatusOK)
	wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, at1, ""), http.StatusOK)
	want := map[string]int{"revoked": 1, "unknown": 2, "access_token": 1}
	if got := h.sim.Counters().Revocations; !maps.Equal(got, want) {
		t.Fatalf("Revocations = %v, want %v", got, want)
	}
}

// TestRevocationClientAuthentication: the client authenticates as at the
// token endpoint (form or Basic); a wrong secret is 400 invalid_client and
// revokes nothing; a missing token is invalid_request; an unknown hint
// unsupported_token_type; GET is 405.
func TestRevocationClientAuthentication(t *testing.T) {
	h := newHarness(t, testCfg())
	_, rt := h.login()
	form := url.Values{"token": {rt}, "client_id": {"client-a"}, "client_secret": {"wrong"}}
	r := h.do(http.MethodPost, revocationPath, []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusBadRequest || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %s", r.status, r.body)
	}
	wantStatus(t, h.do(http.MethodGet, revocationPath, nil), http.StatusMethodNotAllowed)
	if r := h.revoke("", ""); r.json(t)["error"] != "invalid_request" {
		t.Fatalf("no token: %s", r.body)
	}
	if r := h.revoke(rt, "id_token"); r.json(t)["error"] != "unsupported_token_type" {
		t.Fatalf("unknown hint: %s", r.body)
	}
	if len(h.sim.RevokedRefreshTokens()) != 0 {
		t.Fatal("a refused request revoked a token")
	}
	basic := base64.StdEncoding.EncodeToString([]byte("client-a:secret-a"))
	body := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}.Encode()
	r = h.do(http.MethodPost, revocationPath, []byte(body), "Content-Type", "application/x-www-form-urlencoded", "Authorization", "Basic "+basic)
	wantStatus(t, r, http.StatusOK)
	if got := h.sim.RevokedRefreshTokens(); !slices.Equal(got, []string{rt}) {
		t.Fatalf("Basic auth revocation: revoked %v", got)
	}
}

// TestRevocationFaultHangs: FaultSlow holds the request until the client
// gives up, counts it as fault and revokes nothing; the token endpoint is
// not affected.
func TestRevocationFaultHangs(t *testing.T) {
	h := newHarness(t, testCfg())
	_, rt := h.login()
	h.sim.SetRevocationFault(Fault{Kind: FaultSlow, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	form := url.Values{"token": {rt}, "client_id": {"client-a"}, "client_secret": {"secret-a"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+revocationPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := h.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("hanging endpoint answered %d", resp.StatusCode)
	}
	wantStatus(t, h.token(refreshForm(rt)), http.StatusOK)
	deadline := time.Now().Add(5 * time.Second)
	for h.sim.Counters().Revocations["fault"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Revocations = %v, want one fault", h.sim.Counters().Revocations)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(h.sim.RevokedRefreshTokens()) != 0 {
		t.Fatal("the hanging request revoked a token")
	}
}
