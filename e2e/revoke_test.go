package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// withCredential adds lines to the groupid_auth block of the rig's config
// (after its token endpoint TLS setting).
func (s *rig) withCredential(lines ...string) {
	for _, l := range lines {
		s.TLS += "\n\t\t\t" + l
	}
}

// loadWithoutGroupID loads a config with no groupid credential at all: the
// credentials of the running config are retired.
func (s *rig) loadWithoutGroupID() {
	s.t.Helper()
	site := fmt.Sprintf("http://localhost:%d {\n\trespond \"no groupid here\" 200\n}\n", httpPort)
	s.tester.InitServer(s.namedConfig(nil, "", site), "caddyfile")
}

// warm makes the sidecar get its token and returns the refresh token the
// simulator issued last.
func (s *rig) warm() string {
	s.t.Helper()
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		s.t.Fatalf("warm: %d %s", r.status, r.body)
	}
	rts := s.sim.IssuedRefreshTokens()
	if len(rts) == 0 {
		s.t.Fatal("no refresh token issued")
	}
	return rts[len(rts)-1]
}

// revocations is what the simulator's revocation endpoint saw, by outcome.
func (s *rig) revocations() map[string]int { return s.sim.Counters().Revocations }

// TestRevokeOnStopWhenRetired: a config without the credential is loaded;
// the simulator sees the current refresh token revoked exactly once.
func TestRevokeOnStopWhenRetired(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.withCredential("revoke_on_stop")
	s.load()
	rt := s.warm()
	s.loadWithoutGroupID()
	if got := s.sim.RevokedRefreshTokens(); !slices.Equal(got, []string{rt}) {
		t.Fatalf("revoked %d tokens (outcomes %v), want the current refresh token once", len(got), s.revocations())
	}
	if want := map[string]int{"revoked": 1}; !maps.Equal(s.revocations(), want) {
		t.Fatalf("revocation requests %v, want %v", s.revocations(), want)
	}
}

// TestRevokeOnStopNotOnReload: a reload that changes the routes keeps the
// credential (and its token): nothing is revoked, requests go on.
func TestRevokeOnStopNotOnReload(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.withCredential("revoke_on_stop")
	s.load()
	s.warm()
	tokens := s.sim.Counters().TokensTotal()
	s.Extra = "after reload"
	s.load()
	if r := s.call("GET", "/elsewhere", nil); !strings.Contains(string(r.body), "after reload") {
		t.Fatalf("the reload did not take effect: %s", r.body)
	}
	s.warm()
	if n := len(s.revocations()); n != 0 {
		t.Fatalf("a reload that keeps the credential revoked: %v", s.revocations())
	}
	if n := s.sim.Counters().TokensTotal(); n != tokens {
		t.Fatalf("the reload made %d token requests", n-tokens)
	}
}

// TestSharedCredentialNeverRevokes: revoke_on_stop with share is refused
// naming the field (the running config stays), and a shared credential
// retired revokes nothing.
func TestSharedCredentialNeverRevokes(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	share := fmt.Sprintf("share {\n\t\t\t\tkey %s\n\t\t\t\tstorage file_system %s\n\t\t\t}", strings.Repeat("5a", 32), t.TempDir())
	s.withCredential(share)
	s.load()
	s.warm()
	plain := s.TLS
	s.withCredential("revoke_on_stop")
	if msg := s.loadExpectingFailure(s.caddyfile()); !strings.Contains(msg, "revoke_on_stop: cannot be combined with share") {
		t.Fatalf("load of share with revoke_on_stop: %s", msg)
	}
	s.TLS = plain
	s.warm()
	s.loadWithoutGroupID()
	if n := len(s.revocations()); n != 0 {
		t.Fatalf("a shared credential revoked: %v", s.revocations())
	}
}

// TestHangingRevocationDoesNotHoldTheStop: the revocation endpoint never
// answers; the load that retires the credential returns within the bound
// (the credential's 1s timeout, under the 5s RevokeTimeout) plus 2s, and
// nothing is revoked.
func TestHangingRevocationDoesNotHoldTheStop(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.Timeout = "1s"
	s.withCredential("revoke_on_stop")
	s.load()
	s.warm()
	s.sim.SetRevocationFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: time.Hour})
	start := time.Now()
	s.loadWithoutGroupID()
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the load that retired the credential took %s; bound 1s + 2s", took)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return s.revocations()["fault"] == 1 }, "the hung revocation request")
	if got := s.sim.RevokedRefreshTokens(); len(got) != 0 {
		t.Fatalf("revoked %d tokens", len(got))
	}
}
