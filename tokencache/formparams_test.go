package tokencache

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFetchSendsFormParams (issue 20, item 4): the extra form fields go
// with both grants, and one named like a field the grant sends (in any
// case) never replaces it, even when the grant does not send that field
// (client_id with Basic client authentication).
func TestFetchSendsFormParams(t *testing.T) {
	d := newIdP(t)
	g := d.grant()
	g.FormParams = []FormParam{
		{"resource", "https://api.example.test/"},
		{"audience", "groupid"},
		{"Password", "override"},
		{"GRANT_TYPE", "client_credentials"},
		{"refresh_token", "forged"},
		{"scope", "forged"},
	}
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	if _, err := c.Fetch(context.Background(), g, "", epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), g, "rt-1", epoch); err != nil {
		t.Fatal(err)
	}
	g.BasicAuth = true
	g.FormParams = append(g.FormParams, FormParam{"client_id", "forged"}, FormParam{"Client_Secret", "forged"})
	if _, err := c.Fetch(context.Background(), g, "", epoch); err != nil {
		t.Fatal(err)
	}
	for i, grant := range []string{"password", "refresh_token", "password"} {
		f := d.form(i)
		if f.Get("resource") != "https://api.example.test/" || f.Get("audience") != "groupid" {
			t.Errorf("request %d (%s): form params missing: %s", i, grant, redactForm(f))
		}
		if f.Get("grant_type") != grant || len(f["grant_type"]) != 1 {
			t.Errorf("request %d: grant_type %q", i, f["grant_type"])
		}
		for k, v := range f {
			if strings.Contains(strings.Join(v, ""), "forged") || strings.Contains(strings.Join(v, ""), "override") || k == "Password" || k == "GRANT_TYPE" {
				t.Errorf("request %d: field %s overridden or added", i, k)
			}
		}
	}
	if f := d.form(0); f.Get("password") != testPassword || f.Get("scope") != "" {
		t.Error("the password grant's own fields changed")
	}
	if f := d.form(1); f.Get("refresh_token") != "rt-1" {
		t.Error("the refresh grant's refresh_token changed")
	}
	if f := d.form(2); f.Has("client_id") || f.Has("client_secret") {
		t.Error("a form param sent client_id or client_secret beside Basic authentication")
	}
}

// TestFormParamsInKey: form params are part of the credential's identity,
// whatever order they are given in.
func TestFormParamsInKey(t *testing.T) {
	base := Grant{TokenURL: "https://g/t", Username: "u", Password: "p", ClientID: "c", ClientSecret: "s", IdentityStoreID: "2"}
	a, b, c := base, base, base
	a.FormParams = []FormParam{{"resource", "x"}, {"audience", "y"}}
	b.FormParams = []FormParam{{"audience", "y"}, {"resource", "x"}}
	c.FormParams = []FormParam{{"audience", "y"}, {"resource", "z"}}
	if a.Key() != b.Key() {
		t.Error("the order of form params changes the key")
	}
	if a.Key() == base.Key() || a.Key() == c.Key() {
		t.Error("form params are not part of the key")
	}
	// Fields are length-prefixed: a name cannot run into a value.
	d, e := base, base
	d.FormParams = []FormParam{{"ab", "c"}}
	e.FormParams = []FormParam{{"a", "bc"}}
	if d.Key() == e.Key() {
		t.Error("form param boundary not part of the key")
	}
}

// TestFetchRedactsEchoedFormParam: a form param's value is a secret, like
// the password: a server that echoes it does not get it into an error.
func TestFetchRedactsEchoedFormParam(t *testing.T) {
	const secret = "fp-Secret-789"
	d := newIdP(t)
	d.setReply(errReply(400, "invalid_request", "unknown tenant_key="+secret+" (encoded: fp-Secret%2D789)"))
	g := d.grant()
	g.FormParams = []FormParam{{"tenant_key", secret}}
	c := &Client{HTTP: NewHTTPClient(nil, time.Second, 0)}
	_, err := c.Fetch(context.Background(), g, "", epoch)
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Secret%2D789") {
		t.Fatalf("form param value not redacted (error: %v)", err != nil)
	}
	if !strings.Contains(err.Error(), "(redacted)") {
		t.Fatal("no redaction mark")
	}
}
