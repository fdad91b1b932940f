package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

func TestLegacyCallsReachGroupIDWithTokenAndIdenticalBodies(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()

	calls := []struct {
		method, path string
		body         []byte
	}{
		{"GET", usersPath, []byte(`{"objectIdentities":["` + groupidsim.SeedUserID + `"],"attributesToLoad":["displayName","mail"]}`)},
		{"POST", usersPath, []byte(`{"samAccountName":"legacy.user","DisplayName":"Legacy User","container":"OU=Sim"}`)},
		{"PATCH", usersPath, []byte(`{"objectIdFromIdentityStore":"` + groupidsim.SeedUserID + `","Title":"Tester"}`)},
		{"DELETE", usersPath, []byte(`["00000000-0000-0000-0000-000000000000"]`)},
		{"GET", groupPath + "/" + groupidsim.SeedGroupID, []byte(`["displayName","members"]`)},
		{"POST", groupPath + "/StaticGroup", []byte(`{"name":"Legacy Team","groupType":"Security"}`)},
	}
	for _, c := range calls {
		// Half of the calls carry a forged Authorization header; it must never arrive.
		r := s.call(c.method, c.path, c.body, "Authorization", "Bearer forged-by-client", "authorization", "Basic YTpi")
		if r.status != http.StatusOK {
			t.Fatalf("%s %s: status %d body %s", c.method, c.path, r.status, r.body)
		}
		got := s.lastRequest(c.method, c.path)
		if len(got.Authorization) != 1 || got.Authorization[0] != s.bearerOf(0) {
			t.Errorf("%s %s: simulator saw %d Authorization values, not exactly our token", c.method, c.path, len(got.Authorization))
		}
		if !bytes.Equal(got.Body, c.body) {
			t.Errorf("%s %s: body changed in transit: %q", c.method, c.path, got.Body)
		}
	}

	// The log download is matched by the config but is neither a User nor
	// a Group API: the transport refuses to send the token there, and
	// GroupID never sees the request.
	before := len(s.sim.Requests())
	if r := s.call("GET", logsPath, nil); r.status != http.StatusForbidden {
		t.Errorf("log download: status %d, want 403", r.status)
	}
	if n := len(s.sim.Requests()); n != before {
		t.Errorf("log download reached GroupID (%d requests)", n-before)
	}

	// A path outside the matcher is proxied without our token.
	s.call("GET", "/public/readme", nil)
	if got := s.lastRequest("GET", "/public/readme"); len(got.Authorization) != 0 {
		t.Errorf("unmatched path carried Authorization")
	}
	// Anything else is refused and never reaches GroupID.
	before = len(s.sim.Requests())
	if r := s.call("POST", "/GroupIDSecurityService/connect/token", []byte("grant_type=password")); r.status != http.StatusForbidden {
		t.Errorf("other path: status %d", r.status)
	}
	if r := s.call("GET", usersPath+"/x/../../../Logs/Download", nil); r.status == http.StatusOK {
		t.Errorf("dot-segment path was served")
	}
	for _, req := range s.sim.Requests()[before:] {
		for _, a := range req.Authorization {
			if strings.Contains(a, s.sim.IssuedTokens()[0]) {
				t.Errorf("token sent with %s %s", req.Method, req.Path)
			}
		}
	}
	if n := s.sim.Counters().TokensTotal(); n != 1 {
		t.Errorf("token requests %d, want 1", n)
	}
}

func TestColdStartTwoHundredConcurrentRequestsOneTokenRequest(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	// A slow token endpoint keeps the warm-up in flight while requests pile up.
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: 700 * time.Millisecond})
	s.load()
	var wg sync.WaitGroup
	statuses := make(chan int, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil).status
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusOK {
			t.Fatalf("status %d", st)
		}
	}
	if n := s.sim.Counters().TokensTotal(); n != 1 {
		t.Fatalf("token requests %d, want exactly 1", n)
	}
}

func TestContinuousTrafficOverFiveShortLifetimesNeverFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 16 s of traffic")
	}
	const lifetime = 3 * time.Second
	s := newRig(t, groupidsim.Config{TokenLifetime: lifetime})
	s.load()
	deadline := time.Now().Add(5*lifetime + time.Second)
	var mu sync.Mutex
	bad, total := map[int]int{}, 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				st := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil).status
				mu.Lock()
				total++
				if st < 200 || st > 299 {
					bad[st]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(bad) != 0 {
		t.Fatalf("non-2xx responses by status: %v (of %d)", bad, total)
	}
	c := s.sim.Counters()
	if c.Tokens("password") != 1 {
		t.Errorf("password grants %d, want 1 (refreshes should use the refresh token)", c.Tokens("password"))
	}
	// Default margin is 1/4 of 3 s plus up to 1/8 jitter: a refresh every 1.9-2.25 s.
	if r := c.Tokens("refresh_token"); r < 5 || r > 10 {
		t.Errorf("refresh grants %d over 16 s, want 5-10", r)
	}
	t.Logf("%d requests, token requests %v", total, c.TokenRequests)
}

func TestReloadKeepsTokenAndChangedPasswordIsRejected(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	s.Extra = "after reload"
	s.load() // a real reload: the config differs, the credentials do not
	if r := s.call("GET", "/nowhere", nil); !strings.Contains(string(r.body), "after reload") {
		t.Fatalf("reload did not take effect: %q", r.body)
	}
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("after reload: status %d", r.status)
	}
	if n := s.sim.Counters().TokensTotal(); n != 1 {
		t.Fatalf("token requests after unchanged reload: %d, want 1", n)
	}

	s.Password = "a-wrong-password-value"
	s.load()
	r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil)
	if r.status != http.StatusBadGateway {
		t.Fatalf("wrong password: status %d, want 502", r.status)
	}
	if c := s.sim.Counters(); c.TokenRequests["password/invalid_grant"] != 1 {
		t.Fatalf("token requests %v", c.TokenRequests)
	}
}

// TestForgedAuthorizationOddCasingOnTheWire sends header names in odd
// casing and duplicates over a raw connection: GroupID sees only our token.
func TestForgedAuthorizationOddCasingOnTheWire(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := usersPath + "/" + groupidsim.SeedUserID
	raw := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" +
		"aUtHoRiZaTiOn: Bearer forged-one\r\nAUTHORIZATION: Basic Zm9yZ2Vk\r\nauthorization: Bearer forged-three\r\n" +
		"Connection: close\r\n\r\n"
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := s.lastRequest("GET", path)
	if len(got.Authorization) != 1 || got.Authorization[0] != s.bearerOf(0) {
		t.Fatalf("simulator saw %d Authorization values, not exactly our token", len(got.Authorization))
	}
}
