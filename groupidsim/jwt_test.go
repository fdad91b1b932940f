package groupidsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestJWTAccessTokensWithoutExpiresIn: with JWTAccessTokens and
// OmitExpiresIn, the token response has no expires_in and the access
// token is a JWT whose exp is the real expiry; the token works until then.
func TestJWTAccessTokensWithoutExpiresIn(t *testing.T) {
	clk := newFakeClock()
	cfg := testCfg()
	cfg.JWTAccessTokens, cfg.OmitExpiresIn = true, true
	cfg.TokenLifetime = 600 * time.Second
	cfg.Now = clk.Now
	h := newHarness(t, cfg)
	for _, grant := range []string{"password", "refresh_token"} {
		var m map[string]any
		if grant == "password" {
			m = h.token(passwordForm()).json(t)
		} else {
			m = h.token(refreshForm(h.sim.IssuedRefreshTokens()[0])).json(t)
		}
		if _, has := m["expires_in"]; has {
			t.Fatalf("%s: expires_in sent: %v", grant, m["expires_in"])
		}
		at, _ := m["access_token"].(string)
		parts := strings.Split(at, ".")
		if len(parts) != 3 {
			t.Fatalf("%s: access token is not a JWT", grant)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Exp int64 `json:"exp"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if want := clk.Now().Add(600 * time.Second).Unix(); claims.Exp != want {
			t.Fatalf("%s: exp %d, want %d", grant, claims.Exp, want)
		}
		wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/2/Users/svc-groupid", at, ""), http.StatusOK)
	}
	clk.Advance(601 * time.Second)
	at := h.sim.IssuedTokens()[1]
	wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/2/Users/svc-groupid", at, ""), http.StatusUnauthorized)
}
