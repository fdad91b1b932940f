package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// TestFullRunLogsNoSecret runs traffic across several refreshes, a reload
// with a wrong password and an outage, all with debug logging, then checks
// that no password, client secret or issued token is in any log line.
func TestFullRunLogsNoSecret(t *testing.T) {
	s := newRig(t, groupidsim.Config{TokenLifetime: 2 * time.Second})
	s.load()
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		s.call("POST", usersPath, []byte(`{"samAccountName":"x"}`), "Authorization", "Bearer client-token")
		time.Sleep(50 * time.Millisecond) // pacing the traffic, not waiting for a result
	}
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 500})
	time.Sleep(2500 * time.Millisecond) // let the token expire while the endpoint fails
	if r := s.call("GET", usersPath, nil); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("outage past expiry: status %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	s.sim.SetFault(groupidsim.Fault{})
	s.Password = "Wrong-Passw0rd-For-Log-Test"
	s.load()
	if r := s.call("GET", usersPath, nil); r.status != http.StatusBadGateway {
		t.Errorf("wrong password: status %d", r.status)
	}

	logs := readFile(t, s.logFile)
	if !strings.Contains(logs, `"oauth_error":"invalid_grant"`) || !strings.Contains(logs, "obtained groupid token") {
		t.Fatalf("log file does not hold the expected lines (%d bytes)", len(logs))
	}
	cfg := s.sim.Config()
	secrets := map[string]string{"password": cfg.Password, "wrong password": s.Password, "client secret": cfg.ClientSecret}
	for i, tok := range s.sim.IssuedTokens() {
		secrets["access token #"+strconv.Itoa(i)] = tok
	}
	for i, tok := range s.sim.IssuedRefreshTokens() {
		secrets["refresh token #"+strconv.Itoa(i)] = tok
	}
	if len(secrets) < 3+4 {
		t.Fatalf("expected several issued tokens, got %d secrets to check", len(secrets))
	}
	for name, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("%s found in the Caddy log (value not shown)", name)
		}
	}
}
