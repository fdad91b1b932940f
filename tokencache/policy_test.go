package tokencache

import (
	"context"
	"slices"
	"testing"
	"time"
)

// step is one scripted answer of the token endpoint.
type step struct {
	tok *Token // nil: fail with err
	err *Error
}

func okStep(access, refresh string) step {
	return step{tok: newToken(access, refresh, "Bearer", "", "", epoch, time.Minute)}
}

func rejectStep(code string) step {
	return step{err: &Error{Class: ClassRejected, StatusCode: 400, Code: code}}
}

func transientStep() step {
	return step{err: &Error{Class: ClassTransient, StatusCode: 503, Reason: "token endpoint unavailable"}}
}

// request is what the policy sent, with the password named rather than
// quoted so that a failure message never shows a secret.
type request struct {
	grantType, scope, password string
}

const rotatedPassword = "pw-Rotated-789"

func TestGrantPolicy(t *testing.T) {
	base := Grant{TokenURL: "https://groupid.test/token", Username: "svc", Password: testPassword, ClientID: "c", ClientSecret: testSecret, IdentityStoreID: "2"}
	rotated := base
	rotated.Password = rotatedPassword
	for _, tc := range []struct {
		name         string
		scope        string // configured scope
		refreshToken string // held before the first attempt
		forget       bool   // forgetRefreshToken before the first attempt (a 401)
		rereadTo     *Grant // what Reread returns; nil: no Reread hook
		attempts     int    // default 1
		script       []step

		want         []request
		wantFallback int
		wantAccess   string // of the last attempt; "" when it fails
		wantCode     string // error code of the last attempt
		wantClass    Class
		wantRefresh  string // refresh token held afterwards
		wantRotated  bool   // the policy now uses the rotated password
	}{{
		name:         "refresh ok",
		refreshToken: "rt-0",
		script:       []step{okStep("at-1", "rt-1")},
		want:         []request{{"refresh_token", "", "-"}},
		wantAccess:   "at-1", wantRefresh: "rt-1",
	}, {
		name:         "refresh rejected falls back to password at once",
		refreshToken: "rt-0",
		script:       []step{rejectStep("invalid_grant"), okStep("at-1", "rt-1")},
		want:         []request{{"refresh_token", "", "-"}, {"password", "", "old"}},
		wantFallback: 1,
		wantAccess:   "at-1", wantRefresh: "rt-1",
	}, {
		name:         "refresh transient failure keeps the refresh token, no fallback",
		refreshToken: "rt-0",
		script:       []step{transientStep()},
		want:         []request{{"refresh_token", "", "-"}},
		wantClass:    ClassTransient, wantRefresh: "rt-0",
	}, {
		// Issue 17, defect 1: a refresh grant that keeps failing
		// transiently gives way to the password grant.
		name:         "refresh failing transiently twice: the next attempt is a password grant",
		refreshToken: "rt-0",
		attempts:     3,
		script:       []step{transientStep(), transientStep(), okStep("at-1", "rt-1")},
		want:         []request{{"refresh_token", "", "-"}, {"refresh_token", "", "-"}, {"password", "", "old"}},
		wantAccess:   "at-1", wantRefresh: "rt-1",
	}, {
		name:         "refresh rejected then password rejected: refresh token gone",
		refreshToken: "rt-0",
		script:       []step{rejectStep("invalid_grant"), rejectStep("invalid_client")},
		want:         []request{{"refresh_token", "", "-"}, {"password", "", "old"}},
		wantFallback: 1,
		wantCode:     "invalid_client", wantClass: ClassRejected,
	}, {
		name:     "invalid_scope drops offline_access for good",
		scope:    "directorymanager.api",
		attempts: 2,
		// Tokens without a refresh token, so the second attempt is a
		// password grant again.
		script: []step{rejectStep("invalid_scope"), okStep("at-1", ""), okStep("at-2", "")},
		want: []request{
			{"password", "directorymanager.api offline_access", "old"},
			{"password", "directorymanager.api", "old"},
			{"password", "directorymanager.api", "old"},
		},
		wantAccess: "at-2",
	}, {
		name:     "invalid_scope without an added offline_access is not retried",
		scope:    "directorymanager.api offline_access",
		script:   []step{rejectStep("invalid_scope")},
		want:     []request{{"password", "directorymanager.api offline_access", "old"}},
		wantCode: "invalid_scope", wantClass: ClassRejected,
	}, {
		name:       "rejected password with changed secrets is retried with them",
		rereadTo:   &rotated,
		script:     []step{rejectStep("invalid_grant"), okStep("at-1", "rt-1")},
		want:       []request{{"password", "", "old"}, {"password", "", "new"}},
		wantAccess: "at-1", wantRefresh: "rt-1", wantRotated: true,
	}, {
		name:     "rejected password with unchanged secrets is not retried",
		rereadTo: &base,
		script:   []step{rejectStep("invalid_grant")},
		want:     []request{{"password", "", "old"}},
		wantCode: "invalid_grant", wantClass: ClassRejected,
	}, {
		name:      "transient password failure does not re-read",
		rereadTo:  &rotated,
		script:    []step{transientStep()},
		want:      []request{{"password", "", "old"}},
		wantClass: ClassTransient,
	}, {
		name:         "whole chain: refresh refused, password refused, re-read heals",
		refreshToken: "rt-0",
		rereadTo:     &rotated,
		script:       []step{rejectStep("invalid_grant"), rejectStep("invalid_grant"), okStep("at-1", "rt-1")},
		want:         []request{{"refresh_token", "", "-"}, {"password", "", "old"}, {"password", "", "new"}},
		wantFallback: 1,
		wantAccess:   "at-1", wantRefresh: "rt-1", wantRotated: true,
	}, {
		name:         "forgotten refresh token (after a 401) means a password grant",
		refreshToken: "rt-0",
		forget:       true,
		script:       []step{okStep("at-1", "rt-1")},
		want:         []request{{"password", "", "old"}},
		wantAccess:   "at-1", wantRefresh: "rt-1",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []request
			fetch := func(_ context.Context, g Grant, refreshToken string) (*Token, time.Duration, *Error) {
				r := request{grantType: grantTypeOf(refreshToken), scope: g.Scope, password: "-"}
				if refreshToken == "" {
					switch g.Password {
					case testPassword:
						r.password = "old"
					case rotatedPassword:
						r.password = "new"
					default:
						r.password = "other"
					}
				}
				got = append(got, r)
				if len(got) > len(tc.script) {
					t.Fatalf("request %d was not scripted", len(got))
				}
				s := tc.script[len(got)-1]
				if s.err != nil {
					e := *s.err
					e.GrantType = r.grantType
					return nil, time.Millisecond, &e
				}
				return s.tok, time.Millisecond, nil
			}
			var fallbacks []Event
			g := base
			g.Scope = tc.scope
			var reread func() (Grant, bool)
			if tc.rereadTo != nil {
				reread = func() (Grant, bool) { return *tc.rereadTo, tc.rereadTo.Key() != g.Key() }
			}
			p := newGrantPolicy(g, reread, fetch, func(ev Event) { fallbacks = append(fallbacks, ev) })
			p.refreshToken = tc.refreshToken
			if tc.forget {
				p.forgetRefreshToken()
			}
			attempts := max(tc.attempts, 1)
			var tok *Token
			var req sent
			var err *Error
			for range attempts {
				tok, req, err = p.attempt(context.Background())
			}

			if !slices.Equal(got, tc.want) {
				t.Errorf("requests sent:\n got %+v\nwant %+v", got, tc.want)
			}
			if len(fallbacks) != tc.wantFallback {
				t.Errorf("fallback events: got %d want %d", len(fallbacks), tc.wantFallback)
			}
			for _, ev := range fallbacks {
				if ev.Kind != EventFallback || ev.GrantType != "refresh_token" || ev.Err == nil || ev.Duration != time.Millisecond {
					t.Errorf("fallback event %+v", ev)
				}
			}
			if last := tc.want[len(tc.want)-1]; req.grantType != last.grantType || req.took != time.Millisecond {
				t.Errorf("reported request %+v, want grant %s", req, last.grantType)
			}
			switch {
			case tc.wantAccess != "":
				if err != nil || tok == nil || tok.AccessToken != tc.wantAccess {
					t.Errorf("got token %v, error %v; want %s", tok, err, tc.wantAccess)
				}
			default:
				if tok != nil || err == nil || err.Class != tc.wantClass || err.Code != tc.wantCode {
					t.Errorf("got token %v, error %v; want %s error %q", tok, err, tc.wantClass, tc.wantCode)
				}
			}
			if p.refreshToken != tc.wantRefresh {
				t.Errorf("refresh token kept: got %q want %q", p.refreshToken, tc.wantRefresh)
			}
			if rotated := p.grant.Password == rotatedPassword; rotated != tc.wantRotated {
				t.Errorf("policy uses rotated password: %v, want %v", rotated, tc.wantRotated)
			}
		})
	}
}

// TestGrantPolicyNeverAddsOfflineAccessBackAfterReread checks that adopting
// re-read secrets does not undo an earlier invalid_scope.
func TestGrantPolicyNeverAddsOfflineAccessBackAfterReread(t *testing.T) {
	g := Grant{Password: testPassword, Scope: "api"}
	rotated := g
	rotated.Password = rotatedPassword
	var scopes []string
	script := []step{rejectStep("invalid_scope"), rejectStep("invalid_grant"), okStep("at-1", "")}
	fetch := func(_ context.Context, g Grant, _ string) (*Token, time.Duration, *Error) {
		scopes = append(scopes, g.Scope)
		if len(scopes) > len(script) {
			t.Fatalf("request %d was not scripted", len(scopes))
		}
		s := script[len(scopes)-1]
		return s.tok, 0, s.err
	}
	p := newGrantPolicy(g, func() (Grant, bool) { return rotated, true }, fetch, nil)
	if tok, _, err := p.attempt(context.Background()); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("attempt: %v %v", tok, err)
	}
	if want := []string{"api offline_access", "api", "api"}; !slices.Equal(scopes, want) {
		t.Fatalf("scopes sent %q want %q", scopes, want)
	}
}
