package groupidauth

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// TestPromiseTokenLogLines checks README "Logs": info "obtained groupid
// token", debug "refreshed groupid token", warn "refresh token refused;
// falling back to password grant", error "groupid token request failed"
// (error_class, status, error, retry_at; "repeats are logged at debug"),
// info "groupid token recovered"; "Every token log line carries
// credential"; snake_case keys; the tls_insecure_skip_verify warning "at
// every load"; and, from "Sharing one token between replicas", "info using
// groupid token shared by another replica, warn share lock not had within
// lock_timeout; …, warn shared token storage failed; …, info shared token
// storage usable again" (one warning per change of state; tokencache's
// tests drive the share events themselves).
func TestPromiseTokenLogLines(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, nil)
	r.getUser()
	r.settle()
	r.step() // a routine refresh
	r.sim.InvalidateRefreshTokens()
	r.step() // the refresh token is refused: a password grant follows
	r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	r.step() // the failure starts
	r.step() // and repeats
	r.sim.SetFault(groupidsim.Fault{})
	r.step()
	for _, want := range []struct {
		level zapcore.Level
		msg   string
		n     int
	}{
		{zapcore.InfoLevel, "obtained groupid token", 1}, {zapcore.DebugLevel, "refreshed groupid token", 2},
		{zapcore.WarnLevel, "refresh token refused; falling back to password grant", 1},
		{zapcore.ErrorLevel, "groupid token request failed", 1}, {zapcore.DebugLevel, "groupid token request failed again", 1},
		{zapcore.InfoLevel, "groupid token recovered", 1},
	} {
		lines := r.logs.FilterMessage(want.msg).All()
		if len(lines) != want.n {
			t.Errorf("%d %q lines, want %d", len(lines), want.msg, want.n)
		}
		for _, l := range lines {
			m := l.ContextMap()
			if l.Level != want.level || m["credential"] != r.h.Name {
				t.Errorf("%q at %s with credential %v", want.msg, l.Level, m["credential"])
			}
			for k := range m {
				if !snakeCase.MatchString(k) {
					t.Errorf("%q has the key %q", want.msg, k)
				}
			}
			if want.level == zapcore.ErrorLevel && (m["error_class"] != "transient" || m["status"] != int64(503) || m["error"] == "" || m["retry_at"] == nil) {
				t.Errorf("the failure line lacks a field: %v", m)
			}
		}
	}
	for _, c := range []struct {
		ev    tokencache.Event
		level zapcore.Level
		msg   string
	}{
		{tokencache.Event{Kind: tokencache.EventAdopt, First: true}, zapcore.InfoLevel, "using groupid token shared by another replica"},
		{tokencache.Event{Kind: tokencache.EventShare, ShareState: tokencache.ShareLockTimeout, Changed: true}, zapcore.WarnLevel, "share lock not had within lock_timeout; "},
		{tokencache.Event{Kind: tokencache.EventShareError, ShareState: tokencache.ShareStorageError, Changed: true}, zapcore.WarnLevel, "shared token storage failed; "},
		{tokencache.Event{Kind: tokencache.EventShareError, ShareState: tokencache.ShareStorageError}, zapcore.DebugLevel, "shared token storage failed again"},
		{tokencache.Event{Kind: tokencache.EventShare, ShareState: tokencache.ShareOK, Changed: true}, zapcore.InfoLevel, "shared token storage usable again"},
	} {
		before := r.logs.Len()
		r.h.cred().observe(c.ev)
		lines := r.logs.All()[before:]
		if len(lines) != 1 || lines[0].Level != c.level || !strings.HasPrefix(lines[0].Message, c.msg) || lines[0].ContextMap()["credential"] != r.h.Name {
			t.Errorf("%+v: logged %v, want one %s line %q with the credential", c.ev, lines, c.level, c.msg)
		}
	}
	for range 2 { // two loads
		h := simHandler("https://127.0.0.1:1/GroupIDSecurityService/connect/token")
		h.AllowHTTP, h.TLSInsecureSkipVerify = false, true
		h.app = r.newApp()
		if err := provision(t, h); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("tls_insecure_skip_verify is on").Len(); n != 2 {
		t.Errorf("%d insecure warnings for two loads, want 2", n)
	}
}

// TestPromiseReloadTLSIsUsedAndAFailedLoadsNever checks README "Security":
// after a reload "the next token request uses the new trust material,
// client certificate and server name (files are read at every load; the
// token is kept); a removed CA is no longer trusted [...] A failed load's
// TLS settings are never used", and "How it behaves": a reload that changes
// "the trust material [...] costs no token request".
func TestPromiseReloadTLSIsUsedAndAFailedLoadsNever(t *testing.T) {
	sim, ca, tokenURL := tlsSim(t, func(c *tls.Config, ca *groupidsim.CA) {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	})
	other, err := groupidsim.GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssuePEM("caddy-groupid-sidecar")
	if err != nil {
		t.Fatal(err)
	}
	caFile, otherCA := writeFile(t, "ca.pem", ca.CertPEM()), writeFile(t, "other.pem", other.CertPEM())
	cert, key := writeFile(t, "client.pem", certPEM), writeFile(t, "client.key", keyPEM)
	var running *Handler
	// load provisions one config load; start makes it the running config,
	// replacing the one before, as a successful reload does.
	load := func(mod func(*Handler), start bool) *Handler {
		h := simHandler(tokenURL)
		h.AllowHTTP, h.CACertFile, h.TLSClientCert, h.TLSClientKey = false, caFile, cert, key
		mod(h)
		cfg, err := provisionOnly(t, h)
		if err != nil {
			t.Fatal(err)
		}
		if start {
			cfg.start()
			if running != nil {
				_ = retire(running)
			}
			running = h
		}
		return h
	}
	first := load(func(*Handler) {}, true)
	c := first.cred()
	if _, err := c.src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if failed := load(func(h *Handler) { h.CACertFile = otherCA }, false); failed.cred() != c {
		t.Fatal("the test needs the same credential")
	}
	if err := forceAttempt(t, c); err != nil {
		t.Fatalf("a load that is not running gave its TLS settings: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Handler)
		ok   bool
	}{
		{"CA removed", func(h *Handler) { h.CACertFile = otherCA }, false},
		{"no client certificate", func(h *Handler) { h.TLSClientCert, h.TLSClientKey = "", "" }, false},
		{"server name of another host", func(h *Handler) { h.TLSServerName = "elsewhere.example" }, false},
		{"all trusted again", func(h *Handler) { h.TLSServerName = "localhost" }, true},
	} {
		tokens := sim.Counters().TokensTotal()
		load(tc.mod, true)
		if sim.Counters().TokensTotal() != tokens {
			t.Errorf("%s: the reload cost a token request", tc.name)
		}
		if err := forceAttempt(t, c); (err == nil) != tc.ok {
			t.Errorf("%s: last error %v", tc.name, err)
		}
		if !tc.ok && sim.Counters().TokensTotal() != tokens {
			t.Errorf("%s: the token request reached GroupID", tc.name)
		}
		if c.src.Serving() == nil {
			t.Errorf("%s: the held token was not kept", tc.name)
		}
	}
}

// TestPromiseAPIBaseMovesTheScope checks README "Where the token goes",
// Migrating: the token "goes only to the User and Group APIs of the
// credential's store [...]; set api_base if the Data Service's IIS
// application is not GroupIDDataService" (the setting is the promise).
func TestPromiseAPIBaseMovesTheScope(t *testing.T) {
	h := provisioned(t, func(h *Handler) { h.APIBase = "/DMDataService/api" })
	for sent, want := range map[string]int{
		"/DMDataService/api/IdentityStores/2/Users/x": 0, "/dmdataservice/API/IdentityStores/2/Groups": 0,
		"/GroupIDDataService/api/IdentityStores/2/Users/x": http.StatusForbidden, "/DMDataService/api/Logs/Download": http.StatusForbidden,
	} {
		groupid := &recorder{}
		err := h.ServeHTTP(httptest.NewRecorder(), clientRequest("GET", usersAPI+"/x"), chain{rewrite(sent), viaProxy(groupid)})
		if statusOf(err) != want || (len(groupid.auth) == 1) != (want == 0) {
			t.Errorf("%s: status %d (%v), forwarded %d; want %d", sent, statusOf(err), err, len(groupid.auth), want)
		}
	}
}
