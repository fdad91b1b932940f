package tokencache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFetchSendsPasswordGrantAsGroupIDExpects(t *testing.T) {
	d := newIdP(t)
	g := d.grant()
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	tok, err := c.Fetch(context.Background(), g, "", epoch)
	if err != nil {
		t.Fatal(err)
	}
	f := d.form(0)
	want := map[string]string{
		"grant_type": "password", "username": "svc", "password": testPassword,
		"client_id": "legacy", "client_secret": testSecret, "identity_store_id": "2",
	}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("form field %s: got %q want %q", k, f.Get(k), v)
		}
	}
	if _, ok := f["scope"]; ok {
		t.Error("scope sent although none configured")
	}
	if tok.AuthorizationHeader() != "Bearer at-1" || tok.RefreshToken != "rt-1" || tok.GrantType != "password" {
		t.Errorf("token fields: header=%q rt=%q grant=%q", tok.AuthorizationHeader(), tok.RefreshToken, tok.GrantType)
	}
	if !tok.Expiry.Equal(epoch.Add(60 * time.Second)) {
		t.Errorf("expiry %v", tok.Expiry)
	}

	g.Scope = "directorymanager.api offline_access"
	if _, err := c.Fetch(context.Background(), g, "rt-1", epoch); err != nil {
		t.Fatal(err)
	}
	f = d.form(1)
	if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "rt-1" || f.Get("client_secret") != testSecret {
		t.Errorf("refresh form: %v", redactForm(f))
	}
	if f.Get("password") != "" || f.Get("username") != "" {
		t.Error("refresh grant must not send the password")
	}
}

func redactForm(f url.Values) string {
	c := url.Values{}
	for k := range f {
		c.Set(k, "(set)")
	}
	return c.Encode()
}

func TestFetchClassifiesFailures(t *testing.T) {
	cases := []struct {
		name   string
		reply  func(int, url.Values, http.ResponseWriter)
		class  Class
		code   string
		status int
	}{
		{"wrong password", errReply(400, "invalid_grant", "invalid_username_or_password"), ClassRejected, "invalid_grant", 400},
		{"wrong client secret", errReply(400, "invalid_client", ""), ClassRejected, "invalid_client", 400},
		{"bad scope", errReply(400, "invalid_scope", ""), ClassRejected, "invalid_scope", 400},
		{"401 without body", func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(401) }, ClassRejected, "", 401},
		{"503", func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(503) }, ClassTransient, "", 503},
		{"429", func(_ int, _ url.Values, w http.ResponseWriter) { w.WriteHeader(429) }, ClassTransient, "", 429},
		{"html 200", func(_ int, _ url.Values, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>Sign in</body></html>"))
		}, ClassTransient, "", 200},
		{"huge body", func(_ int, _ url.Values, w http.ResponseWriter) {
			_, _ = w.Write([]byte(strings.Repeat("x", MaxResponseBytes+10)))
		}, ClassTransient, "", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newIdP(t)
			d.setReply(tc.reply)
			c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
			_, err := c.Fetch(context.Background(), d.grant(), "", epoch)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %T %v", err, err)
			}
			if e.Class != tc.class || e.Code != tc.code || e.StatusCode != tc.status {
				t.Errorf("got class=%v code=%q status=%d; want %v %q %d", e.Class, e.Code, e.StatusCode, tc.class, tc.code, tc.status)
			}
			assertNoSecret(t, err.Error())
		})
	}
}

func TestFetchRedactsSecretsEchoedByServer(t *testing.T) {
	d := newIdP(t)
	d.setReply(errReply(400, "invalid_grant", "bad password "+testPassword+" for client secret "+testSecret+"\r\ninjected"))
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	_, err := c.Fetch(context.Background(), d.grant(), "", epoch)
	assertNoSecret(t, err.Error())
	if !strings.Contains(err.Error(), "(redacted)") || strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("description not sanitised: %q", err.Error())
	}
}

func TestFetchRedactsEchoedRefreshToken(t *testing.T) {
	d := newIdP(t)
	d.setReply(errReply(400, "invalid_grant", "refresh token rt-SECRET-77 was already used"))
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	_, err := c.Fetch(context.Background(), d.grant(), "rt-SECRET-77", epoch)
	if err == nil || strings.Contains(err.Error(), "rt-SECRET-77") {
		t.Fatalf("refresh token not redacted: %v", err != nil)
	}
}

func TestFetchDoesNotFollowRedirects(t *testing.T) {
	var hits int
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	d := newIdP(t)
	d.setReply(func(_ int, _ url.Values, w http.ResponseWriter) {
		w.Header().Set("Location", target.URL+"/steal")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	_, err := c.Fetch(context.Background(), d.grant(), "", epoch)
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassRejected || e.StatusCode != 307 {
		t.Fatalf("want rejected 307, got %v", err)
	}
	if hits != 0 {
		t.Errorf("redirect target was called %d times", hits)
	}
}

func TestFetchConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	_, err := c.Fetch(context.Background(), Grant{TokenURL: u, Password: testPassword, ClientSecret: testSecret}, "", epoch)
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTransient || e.Reason != "connection failed" {
		t.Fatalf("want transient connection failure, got %v", err)
	}
	if strings.Contains(err.Error(), u) {
		t.Errorf("error repeats the URL: %v", err)
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, sec := range []string{testPassword, testSecret} {
		if strings.Contains(s, sec) {
			t.Errorf("secret found in text (redacted here)")
		}
	}
}
