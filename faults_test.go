package groupidauth

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// maxAttempts is the most token requests the backoff schedule (with the
// rig's jitter of 0.5) allows within d after a first failure, that one
// included.
func maxAttempts(b tokencache.Backoff, d time.Duration) int {
	n, at := 1, time.Duration(0)
	for {
		at += b.Delay(n, 0.5)
		if at > d {
			return n
		}
		n++
	}
}

func apiCalls(sim *groupidsim.Server) int {
	n := 0
	for _, v := range sim.Counters().APICalls {
		n += v
	}
	return n
}

// TestOutageLongerThanTokenLifetime: whatever the fault, clients see no
// failure while the cached token is valid, only 503 with Retry-After after
// it expires, GroupID gets at most the backoff schedule's requests, and
// traffic heals within one backoff cap of GroupID's return.
func TestOutageLongerThanTokenLifetime(t *testing.T) {
	faults := []struct {
		name  string
		fault groupidsim.Fault
	}{
		{"connection drop", groupidsim.Fault{Kind: groupidsim.FaultDown}},
		{"slower than the client timeout", groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: 5 * time.Second}},
		{"5xx storm", groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503}},
		{"HTML 200", groupidsim.Fault{Kind: groupidsim.FaultGarbage200}},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Timeout = caddy.Duration(150 * time.Millisecond) })
			if st, _ := r.getUser(); st != 200 {
				t.Fatalf("warm: %d", st)
			}
			r.settle()
			expiry := r.h.cred().src.Current().Expiry
			// The refresh runs a quarter of the lifetime (300 s) plus half of the
			// maximum jitter (0.5 * 150 s) before expiry.
			firstFailure := expiry.Add(-375 * time.Second)
			r.sim.SetFault(tc.fault)
			before := r.tokenRequests()

			for r.clk.Now().Add(5 * time.Second).Before(expiry) {
				r.advance(5*time.Second, 5*time.Second)
				if st, _ := r.getUser(); st != 200 {
					t.Fatalf("at %v (token still valid): status %d", r.elapsed(), st)
				}
			}
			if r.tokenRequests() == before {
				t.Fatal("no refresh attempted before expiry")
			}
			r.advance(expiry.Sub(r.clk.Now())+time.Second, 5*time.Second)
			calls := apiCalls(r.sim)
			for range 60 {
				r.advance(5*time.Second, 5*time.Second)
				st, ra := r.getUser()
				if st != http.StatusServiceUnavailable || ra == "" || ra == "0" {
					t.Fatalf("at %v (expired): status %d Retry-After %q", r.elapsed(), st, ra)
				}
			}
			if apiCalls(r.sim) != calls {
				t.Error("a request was forwarded without a valid token")
			}
			outage := r.clk.Now().Sub(firstFailure)
			attempts := r.tokenRequests() - before
			if bound := maxAttempts(tokencache.DefaultTransientBackoff, outage); attempts > bound {
				t.Errorf("%d token requests in a %v outage; the backoff schedule allows %d", attempts, outage, bound)
			}

			r.sim.SetFault(groupidsim.Fault{})
			back := r.clk.Now()
			for {
				r.advance(time.Second, time.Second)
				if st, _ := r.getUser(); st == 200 {
					break
				}
				if r.clk.Now().Sub(back) > tokencache.DefaultTransientBackoff.Max {
					t.Fatal("traffic did not recover within one backoff cap")
				}
			}
			t.Logf("%d token requests over a %v outage; recovered %v after GroupID returned", attempts, outage, r.clk.Now().Sub(back))
		})
	}
}

// TestColdStartWhileGroupIDDown: the handler provisions and serves (503 with
// Retry-After) while GroupID is unreachable and recovers on its own.
func TestColdStartWhileGroupIDDown(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown}) })
	for range 50 {
		st, ra := r.getUser()
		if st != http.StatusServiceUnavailable || ra == "" {
			t.Fatalf("status %d Retry-After %q", st, ra)
		}
	}
	if n := r.tokenRequests(); n != 1 {
		t.Fatalf("50 requests during the first backoff caused %d token requests, want 1", n)
	}
	r.sim.SetFault(groupidsim.Fault{})
	r.advance(2*time.Second, time.Second)
	if st, _ := r.getUser(); st != 200 {
		t.Fatalf("after recovery: %d", st)
	}
}

// TestRefreshChainOverTenLifetimes: refreshes use the rotated refresh token,
// no refresh token is ever replayed, and an invalidated refresh token costs
// exactly one password grant.
func TestRefreshChainOverTenLifetimes(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{ReuseRevokesFamily: true}, nil)
	step := 10 * time.Second
	for r.elapsed() < 10*groupidsim.DefaultTokenLifetime {
		r.advance(step, step)
		if st, _ := r.getUser(); st != 200 {
			t.Fatalf("at %v: %d", r.elapsed(), st)
		}
	}
	c := r.sim.Counters()
	if c.Tokens("password") != 1 || c.Tokens("refresh_token") < 12 {
		t.Fatalf("over 10 lifetimes: %v", c.TokenRequests)
	}
	if n := r.sim.UsedRefreshTokenReuse(); n != 0 {
		t.Fatalf("refresh tokens replayed %d times", n)
	}

	r.sim.InvalidateRefreshTokens()
	for range 120 {
		r.advance(step, step)
		if st, _ := r.getUser(); st != 200 {
			t.Fatalf("after invalidation: %d", st)
		}
	}
	c2 := r.sim.Counters()
	if got := c2.Tokens("password") - c.Tokens("password"); got != 1 {
		t.Fatalf("password grants after invalidation: %d, want 1 (%v)", got, c2.TokenRequests)
	}
	if c2.TokenRequests["refresh_token/invalid_grant"] != 1 {
		t.Fatalf("refused refresh attempts: %v", c2.TokenRequests)
	}
}

// TestConcurrentRequestsAcrossRefreshBoundaries: 500 concurrent requests
// while refreshes happen never make the sidecar reuse a refresh token.
func TestConcurrentRequestsAcrossRefreshBoundaries(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{ReuseRevokesFamily: true}, nil)
	r.getUser()
	r.settle()
	for range 3 {
		due, _ := r.clk.NextDeadline()
		go func() {
			r.clk.Advance(due.Sub(r.clk.Now()))
		}()
		for _, st := range r.statusesOf(500, func() *http.Request {
			return httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil)
		}) {
			if st != 200 {
				t.Fatalf("status %d", st)
			}
		}
		r.settle()
	}
	c := r.sim.Counters()
	if c.Tokens("password") != 1 || c.Tokens("refresh_token") != 3 || r.sim.UsedRefreshTokenReuse() != 0 {
		t.Fatalf("token requests %v, refresh token reuse %d", c.TokenRequests, r.sim.UsedRefreshTokenReuse())
	}
}

// TestRevokedTokensHealWithOneReplay: after GroupID revokes every token,
// in-flight requests with small bodies succeed after one replay and one new
// token request; a body too large to buffer gets the 401, and the next
// request succeeds.
func TestRevokedTokensHealWithOneReplay(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, nil)
	r.getUser()
	r.settle()
	r.sim.RevokeAllTokens()
	before := r.sim.Counters()
	body := []byte(`{"samAccountName":"after.revocation","DisplayName":"X"}`)
	for _, st := range r.statusesOf(50, func() *http.Request {
		return httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(body))
	}) {
		if st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	after := r.sim.Counters()
	if got := after.TokensTotal() - before.TokensTotal(); got != 1 || after.Tokens("password") != 2 {
		t.Fatalf("new token requests %d (%v), want exactly 1 password grant", got, after.TokenRequests)
	}
	if n401 := after.APICalls[401] - before.APICalls[401]; n401 < 1 || n401 > 50 {
		t.Fatalf("401s seen by GroupID: %d", n401)
	}
	for _, req := range r.sim.Requests() {
		if req.Method == "POST" && strings.HasSuffix(req.Path, "/Users") && !bytes.Equal(req.Body, body) {
			t.Fatalf("replayed body differs (%d bytes, status %d)", len(req.Body), req.Status)
		}
	}

	// A body over max_replay_body streams through; its 401 reaches the client.
	r.sim.RevokeAllTokens()
	big := bytes.Repeat([]byte("x"), DefaultMaxReplayBody+1)
	st, _ := r.do("POST", "/GroupIDDataService/api/IdentityStores/2/Users", big)
	if st != http.StatusUnauthorized {
		t.Fatalf("large body: status %d, want the upstream's 401", st)
	}
	r.settle()
	if st, _ := r.getUser(); st != 200 {
		t.Fatalf("request after the large one: %d", st)
	}
	if got := r.sim.Counters().TokensTotal() - after.TokensTotal(); got != 1 {
		t.Fatalf("token requests after the large body: %d, want 1", got)
	}
}

func TestReplayOffPassesThe401(t *testing.T) {
	off := false
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.ReplayOn401 = &off })
	r.getUser()
	r.sim.RevokeAllTokens()
	if st, _ := r.getUser(); st != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", st)
	}
	if n := r.tokenRequests(); n != 1 {
		t.Fatalf("token requests %d", n)
	}
}

// TestWrongPasswordLogsOncePerChangeAndHealsFromRotatedFile: a rejected
// password gives clients 502, one error line while the failure stays the
// same, token requests bounded by the slow schedule; replacing the password
// file (as Kubernetes does for a Secret) heals it without a reload.
func TestWrongPasswordLogsOncePerChangeAndHealsFromRotatedFile(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("an-old-wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Password = "{file." + pwFile + "}" })
	if st, _ := r.getUser(); st != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", st)
	}
	r.settle()
	window := 2 * time.Hour
	for r.elapsed() < window {
		r.advance(30*time.Second, 10*time.Second)
		if st, _ := r.getUser(); st != http.StatusBadGateway {
			t.Fatalf("at %v: status %d", r.elapsed(), st)
		}
	}
	attempts := r.tokenRequests()
	if bound := maxAttempts(tokencache.DefaultRejectedBackoff, window); attempts > bound || attempts < 3 {
		t.Errorf("%d token requests in %v; the rejected schedule allows %d", attempts, window, bound)
	}
	if n := r.logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 1 {
		t.Errorf("%d error lines for one unchanged failure, want 1", n)
	}
	if e := r.logs.FilterLevelExact(zapcore.ErrorLevel).All(); len(e) == 1 && e[0].ContextMap()["oauth_error"] != "invalid_grant" {
		t.Errorf("error line lacks the OAuth code: %v", e[0].ContextMap())
	}

	if err := os.WriteFile(pwFile, []byte(groupidsim.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := r.clk.Now()
	for {
		r.advance(10*time.Second, 10*time.Second)
		if st, _ := r.getUser(); st == 200 {
			break
		}
		if r.clk.Now().Sub(rotated) > tokencache.DefaultRejectedBackoff.Max {
			t.Fatal("did not heal within one rejected-backoff cap of the rotation")
		}
	}
	// The first token of this credential is also its recovery: one info line.
	if n := r.logs.FilterLevelExact(zapcore.InfoLevel).FilterMessage("obtained groupid token").Len(); n != 1 {
		t.Errorf("%d info lines for the first token, want 1", n)
	}
	for _, e := range r.logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, groupidsim.DefaultPassword) || strings.Contains(line, "an-old-wrong-password") || strings.Contains(line, groupidsim.DefaultClientSecret) {
			t.Fatal("a secret is in the logs")
		}
	}

	// A reload now resolves the file to the new password: a new credential
	// key, which must start from the healed token, not a new token request.
	r.settle()
	before := r.tokenRequests()
	reloaded := simHandler(r.h.TokenURL)
	reloaded.Password = "{file." + pwFile + "}"
	reloaded.app = r.newApp()
	if err := provision(t, reloaded); err != nil {
		t.Fatal(err)
	}
	if reloaded.cred() == r.h.cred() {
		t.Fatal("the reloaded config shares the old credential; the test needs a new key")
	}
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	w, err := serve(reloaded, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil), simNext{r.sim})
	if err != nil || w.Code != 200 {
		t.Fatalf("after the reload: %v %d", err, w.Code)
	}
	if got := r.tokenRequests() - before; got != 0 {
		t.Fatalf("the reload after healing cost %d token requests, want 0", got)
	}
}
