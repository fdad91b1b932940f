package groupidauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// Issue 20, items 3 (expiry without expires_in) and 4 (form_param).

// TestFormParamReservedAndInvalidFailTheLoad: a form param named like a
// field the grant sends (in any case) fails the load naming it, as do an
// empty value, a bad name, an unset placeholder and a default lifetime out
// of bounds; no error quotes a value.
func TestFormParamReservedAndInvalidFailTheLoad(t *testing.T) {
	const value = "fp-Value-4711"
	cases := []struct {
		params map[string]string
		life   time.Duration
		want   string
	}{
		{map[string]string{"grant_type": value}, 0, `form_params "grant_type": grant_type is sent by the grant itself`},
		{map[string]string{"username": value}, 0, `form_params "username": username is sent by the grant itself`},
		{map[string]string{"password": value}, 0, `form_params "password": password is sent by the grant itself`},
		{map[string]string{"client_id": value}, 0, `form_params "client_id": client_id is sent by the grant itself`},
		{map[string]string{"client_secret": value}, 0, `form_params "client_secret": client_secret is sent by the grant itself`},
		{map[string]string{"refresh_token": value}, 0, `form_params "refresh_token": refresh_token is sent by the grant itself`},
		{map[string]string{"identity_store_id": value}, 0, `form_params "identity_store_id": identity_store_id is sent by the grant itself`},
		{map[string]string{"scope": value}, 0, `form_params "scope": scope is sent by the grant itself`},
		{map[string]string{"Password": value}, 0, `form_params "Password": password is sent by the grant itself`},
		{map[string]string{"resource": ""}, 0, `form_params "resource": empty value`},
		{map[string]string{"a b": value}, 0, `form_params "a b": a name must be`},
		{map[string]string{"audience": "{env.GID_TEST_UNSET_FORM_PARAM}"}, 0, `form_params "audience": evaluated placeholder {env.GID_TEST_UNSET_FORM_PARAM} is empty`},
		{nil, time.Second, "default_token_lifetime: must be from 5s to 24h"},
		{nil, 25 * time.Hour, "default_token_lifetime: must be from 5s to 24h"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			h := simHandler("https://gid.example:4443/GroupIDSecurityService/connect/token")
			h.FormParams, h.DefaultTokenLifetime = tc.params, caddy.Duration(tc.life)
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), value) {
				t.Error("error quotes the value")
			}
		})
	}
}

// tokenForms are the forms of the token requests the simulator received.
func tokenForms(t *testing.T, sim *groupidsim.Server) []url.Values {
	t.Helper()
	var out []url.Values
	for _, r := range sim.TokenRequests() {
		f, err := url.ParseQuery(string(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// TestFormParamReachesTokenEndpointOnBothGrants: form params (a
// placeholder among them) go with the password grant and the refresh.
func TestFormParamReachesTokenEndpointOnBothGrants(t *testing.T) {
	t.Setenv("GID_TEST_AUDIENCE", "groupid-api")
	r := newRig(t, groupidsim.Config{}, func(r *rig) {
		r.h.FormParams = map[string]string{"resource": "https://api.example.test/", "audience": "{env.GID_TEST_AUDIENCE}"}
	})
	if st, _ := r.getUser(); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	r.settle()
	r.advance(16*time.Minute, 30*time.Second) // past the refresh (at most 15 min)
	forms := tokenForms(t, r.sim)
	grants := map[string]bool{}
	for i, f := range forms {
		grants[f.Get("grant_type")] = true
		if f.Get("resource") != "https://api.example.test/" || f.Get("audience") != "groupid-api" {
			t.Errorf("token request %d (%s) lacks the form params", i, f.Get("grant_type"))
		}
	}
	if !grants["password"] || !grants["refresh_token"] {
		t.Fatalf("grants seen: %v", grants)
	}
}

// TestFormParamIsPartOfTheIdentity: handlers that differ only in a form
// param get credentials of their own.
func TestFormParamIsPartOfTheIdentity(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	a, b := simHandler(tokenURL), simHandler(tokenURL)
	a.FormParams = map[string]string{"resource": "https://a.example/"}
	b.FormParams = map[string]string{"resource": "https://b.example/"}
	for _, h := range []*Handler{a, b} {
		if err := provision(t, h); err != nil {
			t.Fatal(err)
		}
	}
	if a.cred() == b.cred() || a.cred().src.Key() == b.cred().src.Key() {
		t.Fatal("one credential for two different form params")
	}
}

// TestFormParamSecretRedactedFromErrors: a hostile token endpoint that
// echoes the request body gets no form param value into the error.
func TestFormParamSecretRedactedFromErrors(t *testing.T) {
	const secret = "tenant-Secret-0815"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"bad tenant_key ` + r.PostForm.Get("tenant_key") + ` in ` + url.QueryEscape(r.PostForm.Encode()) + `"}`))
	}))
	defer srv.Close()
	t.Setenv("GID_TEST_TENANT_KEY", secret)
	h := simHandler(srv.URL + "/t")
	h.FormParams = map[string]string{"tenant_key": "{env.GID_TEST_TENANT_KEY}"}
	_, err := firstToken(t, h)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Secret-0815") {
		t.Fatal("form param value in the error text")
	}
	if !strings.Contains(err.Error(), "(redacted)") {
		t.Fatalf("no redaction mark: %v", err)
	}
}

// TestNoExpiresInScheduledFromJWTExp: a GroupID that sends no expires_in
// but JWT access tokens: the token's expiry is exp less 30 s, the refresh
// comes before it, and the lifetime's source is logged once.
func TestNoExpiresInScheduledFromJWTExp(t *testing.T) {
	r := newRig(t, groupidsim.Config{JWTAccessTokens: true, OmitExpiresIn: true, TokenLifetime: 600 * time.Second}, nil)
	if st, _ := r.getUser(); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	r.settle()
	tok := r.h.cred().src.State().Serving
	if tok == nil || !tok.Expiry.Equal(rigEpoch.Add(570*time.Second)) || tok.LifetimeFrom != tokencache.LifetimeJWTExp {
		t.Fatalf("token %v, want one expiring at exp less 30 s", tok)
	}
	r.advance(20*time.Minute, 20*time.Second) // two refreshes, never an expired token
	if n := r.sim.Counters().Tokens("refresh_token"); n < 2 {
		t.Fatalf("%d refreshes in 20 min of 570 s tokens", n)
	}
	if st, _ := r.getUser(); st != http.StatusOK {
		t.Fatalf("status after refreshes %d", st)
	}
	if n := r.logs.FilterMessageSnippet("lifetime from the access token's exp claim").Len(); n != 1 {
		t.Fatalf("%d lifetime warnings, want 1", n)
	}
}

// TestNoExpiresInNoJWTUsesDefaultLifetime: neither expires_in nor a JWT:
// default_token_lifetime.
func TestNoExpiresInNoJWTUsesDefaultLifetime(t *testing.T) {
	r := newRig(t, groupidsim.Config{OmitExpiresIn: true}, func(r *rig) {
		r.h.DefaultTokenLifetime = caddy.Duration(5 * time.Minute)
	})
	if st, _ := r.getUser(); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	r.settle()
	tok := r.h.cred().src.State().Serving
	if tok == nil || !tok.Expiry.Equal(rigEpoch.Add(5*time.Minute)) || tok.LifetimeFrom != tokencache.LifetimeDefault {
		t.Fatalf("token %v, want the 5 min default", tok)
	}
	if n := r.logs.FilterMessageSnippet("the default token lifetime is used").Len(); n != 1 {
		t.Fatalf("%d lifetime warnings, want 1", n)
	}
}
