package tokencache

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testJWT is an unsigned-looking JWT whose payload is claims (raw JSON).
func testJWT(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte("not-a-signature"))
}

// expJWT is a JWT whose exp claim is secs seconds after epoch.
func expJWT(secs int64) string {
	return testJWT(`{"sub":"svc","exp":` + itoa(int(epoch.Unix()+secs)) + `}`)
}

// TestTokenLifetimeOrder (issue 20, item 3): expires_in first, then the
// access token's JWT exp less the skew allowance, then the configured
// default; wild values are capped or refused, and the note says so.
func TestTokenLifetimeOrder(t *testing.T) {
	const def = 7 * time.Minute
	cases := []struct {
		name      string
		expiresIn string // raw JSON; "" for none
		access    string
		life      time.Duration // 0: refused
		from      LifetimeFrom
		note      string
	}{
		{"expires_in wins over exp", `1200`, expJWT(600), 1200 * time.Second, LifetimeExpiresIn, ""},
		{"expires_in capped", `99999999999`, "opaque", MaxTokenLifetime, LifetimeExpiresIn, noteExpiresInCapped},
		{"expires_in zero refused", `0`, expJWT(600), 0, "", ""},
		{"no expires_in: exp less 30 s", "", expJWT(1200), 1170 * time.Second, LifetimeJWTExp, noteFromExp},
		{"null expires_in: exp", `null`, expJWT(1200), 1170 * time.Second, LifetimeJWTExp, noteFromExp},
		{"string expires_in: exp", `"1200"`, expJWT(1200), 1170 * time.Second, LifetimeJWTExp, noteFromExp},
		{"short exp: skew a tenth", "", expJWT(20), 18 * time.Second, LifetimeJWTExp, noteFromExp},
		{"fractional exp", "", testJWT(`{"exp":` + itoa(int(epoch.Unix()+600)) + `.5}`), 570500 * time.Millisecond, LifetimeJWTExp, noteFromExp},
		{"exp in the past refused", "", expJWT(-5), 0, "", ""},
		{"exp now refused", "", expJWT(0), 0, "", ""},
		{"negative exp refused", "", testJWT(`{"exp":-1}`), 0, "", ""},
		{"exp far future capped", "", expJWT(10 * 365 * 24 * 3600), MaxTokenLifetime, LifetimeJWTExp, noteExpCapped},
		{"exp absurd capped", "", testJWT(`{"exp":1e300}`), MaxTokenLifetime, LifetimeJWTExp, noteExpCapped},
		{"opaque token: default", "", "opaque-token", def, LifetimeDefault, noteDefault},
		{"two segments: default", "", "a.b", def, LifetimeDefault, noteDefault},
		{"bad base64: default", "", "a.!!!.c", def, LifetimeDefault, noteDefault},
		{"payload not json: default", "", testJWT(`not json`), def, LifetimeDefault, noteDefault},
		{"payload an array: default", "", testJWT(`[1,2]`), def, LifetimeDefault, noteDefault},
		{"no exp: default", "", testJWT(`{"sub":"svc"}`), def, LifetimeDefault, noteDefault},
		{"string exp: default", "", testJWT(`{"exp":"1767323045"}`), def, LifetimeDefault, noteDefault},
		{"null exp: default", "", testJWT(`{"exp":null}`), def, LifetimeDefault, noteDefault},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			life, from, note, reason := tokenLifetime(json.RawMessage(tc.expiresIn), tc.access, epoch, def)
			if tc.life == 0 {
				if reason == "" {
					t.Fatalf("accepted: %v from %s", life, from)
				}
				return
			}
			if reason != "" {
				t.Fatalf("refused: %s", reason)
			}
			if life != tc.life || from != tc.from || note != tc.note {
				t.Errorf("got %v from %q note %q; want %v from %q note %q", life, from, note, tc.life, tc.from, tc.note)
			}
		})
	}
	// The default lifetime is DefaultTokenLifetime when none is configured,
	// and is capped like any other.
	if life, _, _, _ := tokenLifetime(nil, "opaque", epoch, 0); life != DefaultTokenLifetime {
		t.Errorf("unconfigured default %v", life)
	}
	if life, _, _, _ := tokenLifetime(nil, "opaque", epoch, 48*time.Hour); life != MaxTokenLifetime {
		t.Errorf("a 48h default gave %v", life)
	}
}

// jwtReply issues JWT access tokens that expire expSecs after epoch,
// without expires_in.
func jwtReply(access func(n int) string) func(int, url.Values, http.ResponseWriter) {
	return func(n int, _ url.Values, w http.ResponseWriter) {
		writeJSON(w, 200, map[string]any{
			"access_token": access(n), "refresh_token": "rt-" + itoa(n), "token_type": "Bearer",
		})
	}
}

// TestRefreshScheduledFromJWTExp: a response without expires_in whose
// access token is a JWT gets its expiry, and so its refresh, from exp.
func TestRefreshScheduledFromJWTExp(t *testing.T) {
	d := newIdP(t)
	d.setReply(jwtReply(func(int) string { return expJWT(600) }))
	h := newHarness(t, d, nil)
	h.src.Start()
	ev := h.next(t)
	life := 570 * time.Second // 600 s less the 30 s skew
	if ev.Kind != EventToken || !ev.Expiry.Equal(epoch.Add(life)) {
		t.Fatalf("event %+v, want a token expiring at exp less 30 s", ev)
	}
	if ev.LifetimeFrom != LifetimeJWTExp || ev.LifetimeNote == "" {
		t.Errorf("lifetime from %q note %q", ev.LifetimeFrom, ev.LifetimeNote)
	}
	// Rand is 0.5: refresh at expiry - margin - margin/4.
	margin := life / 4
	if due, want := h.due(t), epoch.Add(life-margin-margin/4); !due.Equal(want) {
		t.Fatalf("refresh due %v, want %v", due.Sub(epoch), want.Sub(epoch))
	}
}

// TestRefreshScheduledFromDefaultLifetime: neither expires_in nor a
// readable exp: the configured default lifetime.
func TestRefreshScheduledFromDefaultLifetime(t *testing.T) {
	d := newIdP(t)
	d.setReply(jwtReply(func(n int) string { return "opaque-" + itoa(n) }))
	h := newHarness(t, d, func(o *Options) { o.Client.DefaultLifetime = 10 * time.Minute })
	h.src.Start()
	ev := h.next(t)
	if ev.Kind != EventToken || !ev.Expiry.Equal(epoch.Add(10*time.Minute)) || ev.LifetimeFrom != LifetimeDefault {
		t.Fatalf("event %+v, want a token living the 10 min default", ev)
	}
	margin := 10 * time.Minute / 4
	if due, want := h.due(t), epoch.Add(10*time.Minute-margin-margin/4); !due.Equal(want) {
		t.Fatalf("refresh due %v, want %v", due.Sub(epoch), want.Sub(epoch))
	}
}

// TestJWTExpBounded: an exp in the past is a transient failure that says
// why (nothing served); one years away is capped at a day and noted.
func TestJWTExpBounded(t *testing.T) {
	d := newIdP(t)
	d.setReply(jwtReply(func(int) string { return expJWT(-60) }))
	h := newHarness(t, d, nil)
	h.src.Start()
	ev := h.next(t)
	if ev.Kind != EventFailure || ev.Err.Class != ClassTransient || !strings.Contains(ev.Err.Error(), "exp claim is in the past") {
		t.Fatalf("an exp in the past: %+v", ev)
	}
	if h.src.State().Serving != nil {
		t.Fatal("a token past its exp is served")
	}

	d2 := newIdP(t)
	d2.setReply(jwtReply(func(int) string { return expJWT(5 * 365 * 24 * 3600) }))
	h2 := newHarness(t, d2, nil)
	h2.src.Start()
	ev = h2.next(t)
	if ev.Kind != EventToken || !ev.Expiry.Equal(epoch.Add(MaxTokenLifetime)) || ev.LifetimeNote != noteExpCapped {
		t.Fatalf("an exp 5 years away: %+v", ev)
	}
}
