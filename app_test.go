package groupidauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// namedApp is an app with named credentials for stores, all of them the
// simulator's account, provisioned in a config of its own.
func namedApp(t *testing.T, tokenURL string, stores map[string]string) *testConfig {
	t.Helper()
	app := &App{Credentials: map[string]*Credential{}}
	for name, store := range stores {
		c := simCredential(tokenURL)
		c.IdentityStoreID = store
		app.Credentials[name] = &c
	}
	return startConfig(t, app)
}

// TestHandlersUseNamedCredentials: handlers of one config that name a
// credential share it (one token source); the mistakes a user can make
// with names fail the load with an error that names the field.
func TestHandlersUseNamedCredentials(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	cfg := namedApp(t, tokenURL, map[string]string{"a": "2", "b": "3", "also-2": "2"})
	provision := func(h *Handler) error {
		h.app = cfg.app
		return h.Provision(cfg.ctx)
	}
	one, two := &Handler{Credentials: []string{"a"}}, &Handler{Credentials: []string{"a"}}
	if err := provision(one); err != nil {
		t.Fatal(err)
	}
	if err := provision(two); err != nil || two.cred() != one.cred() {
		t.Fatalf("two handlers naming one credential: %v (shared: %v)", err, err == nil && two.cred() == one.cred())
	}
	both := &Handler{Credentials: []string{"a", "b"}}
	if err := provision(both); err != nil || len(both.binding.stores) != 2 || both.binding.String() != "a,b" {
		t.Fatalf("one handler, two stores: %v", err)
	}
	for _, tc := range []struct {
		h    *Handler
		want string
	}{
		{&Handler{Credentials: []string{"nobody"}}, `credentials: no credential named "nobody"`},
		{&Handler{Credentials: []string{"a"}, Credential: Credential{TokenURL: tokenURL}}, "credentials: a handler that uses named credentials takes no credential settings of its own (given: token_url)"},
		{&Handler{Credentials: []string{"a"}, Name: "x"}, "(given: name)"},
		{&Handler{Credentials: []string{"a", "also-2"}}, `credentials: "a" and "also-2" are both for identity store 2`},
	} {
		if err := provision(tc.h); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.h.Credentials, err, tc.want)
		}
	}
}

// TestNamedCredentialErrorsNameCredentialAndField: a bad named credential
// fails the app's Provision, naming the credential and the field, never
// the value.
func TestNamedCredentialErrorsNameCredentialAndField(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Credential)
		want string
	}{
		{func(c *Credential) { c.Password = "" }, `credential "svc": password: required`},
		{func(c *Credential) { c.TokenURL = "http://gid/t"; c.AllowHTTP = false }, `credential "svc": token_url: http://`},
		{func(c *Credential) { c.Timeout = -1 }, `credential "svc": timeout: must not be negative`},
	} {
		c := simCredential("http://127.0.0.1:1/GroupIDSecurityService/connect/token")
		tc.mod(&c)
		app := &App{Credentials: map[string]*Credential{"svc": &c}, events: new(eventRecorder)}
		ctx, cancel := newTestContext()
		err := app.Provision(ctx)
		cancel()
		_ = app.Cleanup()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), groupidsim.DefaultPassword) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

func TestGlobalOptionCaddyfile(t *testing.T) {
	var app App
	err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`groupid {
		credential svc {
			token_url https://gid/GroupIDSecurityService/connect/token
			username u
			password {env.PW}
			client_id c
			client_secret {file./s}
			identity_store_id 3
			timeout 7s
			share {
				key {file./k}
			}
		}
		credential other {
			token_url https://gid/t
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	svc := app.Credentials["svc"]
	if len(app.Credentials) != 2 || svc == nil || svc.IdentityStoreID != "3" || svc.Password != "{env.PW}" ||
		time.Duration(svc.Timeout) != 7*time.Second || svc.Share == nil || svc.Share.Key != "{file./k}" {
		t.Fatalf("parsed %+v", app.Credentials)
	}
	for input, want := range map[string]string{
		"groupid {\n credential a {\n }\n credential a {\n }\n}":      "credential a defined more than once",
		"groupid {\n server x\n}":                                     "unknown subdirective server",
		"groupid {\n credential a {\n nosuch 1\n }\n}":                "groupid: credential a: unknown subdirective nosuch",
		"groupid {\n credential a {\n username x\n username y\n }\n}": "username given more than once",
		"groupid {\n credential\n}":                                   "wrong argument count",
		"groupid {\n credential a b\n}":                               "wrong argument count",
		"groupid {\n credential a {\n api_base /x\n }\n}":             "unknown subdirective api_base",
	} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", input, err, want)
		}
	}
}

// TestSeveralStoresRefuseForTheStoreThePathNames: a handler with one
// credential per store refuses before forwarding (503) only when the
// credential of the store the client's path names has no token; a path
// that names none of its stores is passed on, for the transport to decide
// on the URL it sends.
func TestSeveralStoresRefuseForTheStoreThePathNames(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{ExtraIdentityStores: []string{"3"}})
	good, down := simCredential(tokenURL), simCredential("http://127.0.0.1:1/GroupIDSecurityService/connect/token")
	down.IdentityStoreID = "3"
	app := &App{Credentials: map[string]*Credential{"s2": &good, "s3": &down}}
	cfg := startConfig(t, app)
	h := &Handler{Credentials: []string{"s2", "s3"}}
	h.app = app
	if err := h.Provision(cfg.ctx); err != nil {
		t.Fatal(err)
	}
	cfg.start()
	for path, want := range map[string]int{
		"/GroupIDDataService/api/IdentityStores/2/Users/x": 0,   // passed on
		"/GroupIDDataService/api/IdentityStores/3/Users/x": 503, // refused here
		"/legacy/users/x": 0, // no store named: passed on
	} {
		passed := false
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := clientRequest("GET", path).WithContext(ctx)
		err := h.ServeHTTP(httptest.NewRecorder(), r, funcNext(func(http.ResponseWriter, *http.Request) error {
			passed = true
			return nil
		}))
		cancel()
		if got := statusOf(err); got != want || passed != (want == 0) {
			t.Errorf("%s: status %d (%v), passed on %v; want %d", path, got, err, passed, want)
		}
	}
}
