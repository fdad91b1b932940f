package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// TestConfigsThatCannotWorkDoNotStart: a config that could never put a
// token on a request fails its load with a message saying what to change,
// and the running config keeps serving: the shape of earlier releases
// (groupid_auth before a reverse_proxy with transport http) and a
// groupid_ready naming no credential of the config (issue 17, defect 6).
// groupid_ready's name takes placeholders, as groupid_auth's does.
func TestConfigsThatCannotWorkDoNotStart(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	good := edit(t, s.caddyfile(), "\tgroupid_auth {\n", "\tgroupid_auth {\n\t\t\tname svc-e2e\n")
	t.Setenv("GID_E2E_READY", "svc-e2e")
	good = edit(t, good, "\t\tgroupid_ready\n", "\t\tgroupid_ready {env.GID_E2E_READY}\n")
	s.tester.InitServer(good, "caddyfile")
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), groupidsim.SeedUserID) {
		t.Fatalf("legacy call: %d %.80q, want GroupID's user", r.status, r.body)
	}
	waitReady := func() reply {
		var r reply
		for range 200 {
			if r = s.callURL("GET", ops+"/ready", nil); r.status == http.StatusOK {
				break
			}
		}
		return r
	}
	if r := waitReady(); r.status != http.StatusOK || !strings.Contains(string(r.body), `"name":"svc-e2e"`) {
		t.Fatalf("groupid_ready {env.X}: %d %s", r.status, r.body)
	}

	old := edit(t, good, "transport groupid {", "transport http {")
	if msg := s.loadExpectingFailure(old); !strings.Contains(msg, "transport groupid") || !strings.Contains(msg, "svc-e2e") {
		t.Fatalf("old shape refused without saying what to change: %s", msg)
	}
	unknown := edit(t, good, "groupid_ready {env.GID_E2E_READY}", "groupid_ready nobody")
	if msg := s.loadExpectingFailure(unknown); !strings.Contains(msg, "no groupid_auth credential named") || !strings.Contains(msg, "nobody") {
		t.Fatalf("unknown readiness name: %s", msg)
	}
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), groupidsim.SeedUserID) {
		t.Fatalf("after the refused loads: %d %.80q, want GroupID's user", r.status, r.body)
	}
	if r := waitReady(); r.status != http.StatusOK {
		t.Fatalf("not ready after the refused loads: %d", r.status)
	}
}
