package groupidauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// revokeRig is a simulator and a rig whose handler has revoke_on_stop.
func revokeRig(t *testing.T, mod func(*rig)) *rig {
	t.Helper()
	return newRig(t, groupidsim.Config{}, func(r *rig) {
		r.h.RevokeOnStop = true
		if mod != nil {
			mod(r)
		}
	})
}

// holdToken makes the rig's credential get its first token and returns
// the refresh token the simulator issued with it.
func (r *rig) holdToken() string {
	r.t.Helper()
	if _, err := r.h.cred().src.Token(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	rts := r.sim.IssuedRefreshTokens()
	return rts[len(rts)-1]
}

// wantRevoked fails the test unless the simulator revoked exactly want.
func wantRevoked(t *testing.T, sim *groupidsim.Server, want ...string) {
	t.Helper()
	if got := sim.RevokedRefreshTokens(); !slices.Equal(got, want) {
		t.Fatalf("revoked %d refresh tokens (counters %v), want %d", len(got), sim.Counters().Revocations, len(want))
	}
}

// TestRetiredCredentialRevokesOnce: the config that last used a credential
// with revoke_on_stop ends; the simulator sees its current refresh token
// revoked, once, and the log says so without the token.
func TestRetiredCredentialRevokesOnce(t *testing.T) {
	r := revokeRig(t, nil)
	rt := r.holdToken()
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r.sim, rt)
	_ = r.h.app.Cleanup() // a second Cleanup releases nothing more
	wantRevoked(t, r.sim, rt)
	if n := r.logs.FilterMessage("refresh token revoked").Len(); n != 1 {
		t.Fatalf("%d 'refresh token revoked' log lines, want 1", n)
	}
	for _, e := range r.logs.All() {
		if strings.Contains(e.Message+fmt.Sprint(e.ContextMap()), rt) {
			t.Fatal("a log line quotes the refresh token")
		}
	}
}

// TestReloadKeepingCredentialRevokesNothing: a newer config with the same
// credential starts, the older one ends: no revocation; when the newer one
// ends too, one.
func TestReloadKeepingCredentialRevokesNothing(t *testing.T) {
	r := revokeRig(t, nil)
	r.holdToken()
	h2 := simHandler(r.h.TokenURL)
	h2.RevokeOnStop = true
	h2.app = r.newApp()
	if err := provision(t, h2); err != nil {
		t.Fatal(err)
	}
	if h2.cred() != r.h.cred() {
		t.Fatal("the reload did not keep the credential")
	}
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r.sim)
	rt := r.sim.IssuedRefreshTokens()[len(r.sim.IssuedRefreshTokens())-1]
	if err := retire(h2); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r.sim, rt)
}

// TestRetiredWithoutOptionRevokesNothing: revoke_on_stop is opt-in.
func TestRetiredWithoutOptionRevokesNothing(t *testing.T) {
	r := newRig(t, groupidsim.Config{}, nil)
	r.holdToken()
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	if n := len(r.sim.Counters().Revocations); n != 0 {
		t.Fatalf("revocation requests: %v", r.sim.Counters().Revocations)
	}
}

// TestHangingRevocationIsBounded: a revocation endpoint that never answers
// holds the retirement for the bound (here the credential's 300ms
// timeout) and no longer; the failure is logged, not returned.
func TestHangingRevocationIsBounded(t *testing.T) {
	r := revokeRig(t, func(r *rig) { r.h.Timeout = caddy.Duration(300 * time.Millisecond) })
	r.holdToken()
	r.sim.SetRevocationFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: time.Hour})
	start := time.Now()
	if err := retire(r.h); err != nil {
		t.Fatalf("retire returned %v; a failed revocation must not fail the stop", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("retirement took %s, bound 300ms", took)
	}
	wantRevoked(t, r.sim)
	if n := r.logs.FilterMessage("refresh token not revoked; it is left to expire in GroupID").Len(); n != 1 {
		t.Fatalf("%d failure log lines, want 1", n)
	}
}

// TestReCreatedCredentialRevokesTheOldChain: a reload that changes the
// timeout makes a new credential seeded with the old one's token; the old
// one's chain is revoked, and the new one still serves the seeded access
// token (revocation does not touch access tokens) and starts its own chain.
func TestReCreatedCredentialRevokesTheOldChain(t *testing.T) {
	r := revokeRig(t, nil)
	rt := r.holdToken()
	h2 := simHandler(r.h.TokenURL)
	h2.RevokeOnStop, h2.Timeout = true, caddy.Duration(7*time.Second)
	h2.app = r.newApp()
	if err := provision(t, h2); err != nil {
		t.Fatal(err)
	}
	if h2.cred() == r.h.cred() {
		t.Fatal("a changed timeout kept the credential")
	}
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, r.sim, rt)
	tok := h2.cred().src.Serving()
	if tok == nil || tok.AccessToken != r.sim.IssuedTokens()[0] {
		t.Fatal("the new credential does not serve the seeded token")
	}
	site, _, _ := strings.Cut(r.h.TokenURL, groupidsim.DefaultSecurityPrefix)
	req, _ := http.NewRequest("GET", site+"/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil)
	req.Header.Set("Authorization", tok.AuthorizationHeader())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the seeded access token after the old chain's revocation: %d", resp.StatusCode)
	}
}

// TestRevocationSettingsValidated: the load fails naming the field.
func TestRevocationSettingsValidated(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	for want, mod := range map[string]func(*Credential){
		"revocation_url: only used with revoke_on_stop": func(c *Credential) { c.RevocationURL = "https://gid.example/connect/revocation" },
		"revocation_url: must be an absolute":           func(c *Credential) { c.RevokeOnStop, c.RevocationURL = true, "/connect/revocation" },
		"revocation_url: http://": func(c *Credential) {
			c.RevokeOnStop, c.AllowHTTP, c.RevocationURL = true, false, "http://gid.example/r"
			c.TokenURL = "https://gid.example/connect/token"
		},
		"revoke_on_stop: cannot be combined with share": func(c *Credential) {
			c.RevokeOnStop, c.Share = true, &ShareConfig{Key: strings.Repeat("ab", 32)}
		},
	} {
		h := simHandler(tokenURL)
		mod(&h.Credential)
		if err := provision(t, h); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// TestCaddyStopRevokes: Caddy stops (caddy.Stop, as on SIGTERM) with a
// credential that has revoke_on_stop: its refresh token is revoked once.
func TestCaddyStopRevokes(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	var cfg map[string]any
	if err := json.Unmarshal(namedCredentialConfig(t, "svc-stop", tokenURL, "127.0.0.1:0"), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["apps"].(map[string]any)["groupid"].(map[string]any)["credentials"].(map[string]any)["svc-stop"].(map[string]any)["revoke_on_stop"] = true
	raw, _ := json.Marshal(cfg)
	if err := caddy.Load(raw, true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if len(sim.IssuedRefreshTokens()) == 0 {
			return context.DeadlineExceeded
		}
		return nil
	}, "the credential's first token")
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	wantRevoked(t, sim, sim.IssuedRefreshTokens()[0])
}

// TestRevocationCaddyfile: revoke_on_stop takes no argument,
// revocation_url one.
func TestRevocationCaddyfile(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser("groupid_auth {\n revoke_on_stop\n revocation_url https://gid.example/connect/revocation\n}")
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if !h.RevokeOnStop || h.RevocationURL != "https://gid.example/connect/revocation" {
		t.Fatalf("parsed %v %q", h.RevokeOnStop, h.RevocationURL)
	}
	for _, bad := range []string{"revoke_on_stop yes", "revocation_url", "revoke_on_stop\n revoke_on_stop"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid_auth {\n " + bad + "\n}")); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
