package tokencache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRevocationURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://gid.example:4443/GroupIDSecurityService/connect/token": "https://gid.example:4443/GroupIDSecurityService/connect/revocation",
		"https://gid.example/sec/connect/token?x=1":                     "https://gid.example/sec/connect/revocation",
		"https://gid.example/oauth/issue":                               "https://gid.example/oauth/issue/revocation",
	} {
		if got := RevocationURL(in); got != want {
			t.Errorf("RevocationURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// revocationEndpoint records one request's form and Authorization header
// and answers with status and body.
func revocationEndpoint(t *testing.T, status int, body string) (*httptest.Server, *url.Values, *string) {
	form, auth := new(url.Values), new(string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		*form, *auth = r.PostForm, r.Header.Get("Authorization")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, form, auth
}

// TestRevokeSendsRFC7009Form: the token with token_type_hint=refresh_token,
// and the client authentication the token request uses: form fields, or
// HTTP Basic (then no secret in the form).
func TestRevokeSendsRFC7009Form(t *testing.T) {
	for _, basic := range []bool{false, true} {
		srv, form, auth := revocationEndpoint(t, 200, "")
		g := Grant{ClientID: "legacy", ClientSecret: testSecret, BasicAuth: basic}
		c := &Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)}
		if err := c.Revoke(context.Background(), g, srv.URL+"/connect/revocation", "rt-7"); err != nil {
			t.Fatalf("basic=%v: %v", basic, err)
		}
		if form.Get("token") != "rt-7" || form.Get("token_type_hint") != "refresh_token" {
			t.Errorf("basic=%v: form %v", basic, *form)
		}
		if basic {
			if form.Has("client_secret") || !strings.HasPrefix(*auth, "Basic ") {
				t.Errorf("basic: form %v, Authorization %q", *form, *auth)
			}
		} else if form.Get("client_id") != "legacy" || form.Get("client_secret") != testSecret || *auth != "" {
			t.Errorf("form auth: form %v, Authorization %q", *form, *auth)
		}
	}
}

// TestRevokeFailuresAreScrubbed: a refusal that echoes the secret and the
// token, and a 5xx, are errors that quote neither.
func TestRevokeFailuresAreScrubbed(t *testing.T) {
	echo := `{"error":"invalid_client","error_description":"bad secret ` + testSecret + ` for rt-secret-token-1234"}`
	for status, body := range map[int]string{400: echo, 503: "down " + testSecret} {
		srv, _, _ := revocationEndpoint(t, status, body)
		g := Grant{ClientID: "legacy", ClientSecret: testSecret}
		err := (&Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)}).Revoke(context.Background(), g, srv.URL, "rt-secret-token-1234")
		if err == nil {
			t.Fatalf("HTTP %d: no error", status)
		}
		if msg := err.Error(); strings.Contains(msg, testSecret) || strings.Contains(msg, "rt-secret-token-1234") || !strings.Contains(msg, "revocation") {
			t.Errorf("HTTP %d: error %q", status, msg)
		}
	}
}

// TestRevokeHonoursTheContext: a hanging endpoint is given up at the
// context's deadline.
func TestRevokeHonoursTheContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&Client{HTTP: NewHTTPClient(nil, time.Minute, 0)}).Revoke(ctx, Grant{ClientID: "c", ClientSecret: testSecret}, srv.URL, "rt")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}

// TestCloseAndTakeRefreshToken: the refresh token the Source would send
// next, with its grant; none for a Source that never started.
func TestCloseAndTakeRefreshToken(t *testing.T) {
	d := newIdP(t)
	h := newHarness(t, d, nil)
	h.src.Start()
	if ev := h.next(t); ev.Err != nil {
		t.Fatalf("first token: %v", ev.Err)
	}
	h.advanceToDue(t)
	if ev := h.next(t); ev.Err != nil || ev.GrantType != "refresh_token" {
		t.Fatalf("refresh: %+v", ev)
	}
	g, rt := h.src.CloseAndTakeRefreshToken()
	if rt != "rt-2" || g.ClientSecret != testSecret {
		t.Fatalf("took %q (client secret given: %v), want rt-2", rt, g.ClientSecret != "")
	}
	if _, rt := newHarness(t, d, nil).src.CloseAndTakeRefreshToken(); rt != "" {
		t.Fatalf("a Source that never started gave %q", rt)
	}
}
