package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)

// samples parses Prometheus text exposition into name -> list of (labels, value).
type sample struct {
	labels map[string]string
	value  float64
}

func scrape(t *testing.T, s *rig) map[string][]sample {
	t.Helper()
	r := s.callURL("GET", admin+"/metrics", nil)
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	out := map[string][]sample{}
	for _, line := range strings.Split(string(r.body), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[1], "caddy_groupid_") {
			continue
		}
		labels := map[string]string{}
		for _, kv := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
			labels[kv[1]] = kv[2]
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[m[1]] = append(out[m[1]], sample{labels, v})
	}
	return out
}

// value returns the single sample of name whose labels include want.
func value(t *testing.T, got map[string][]sample, name string, want map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, s := range got[name] {
		ok := true
		for k, v := range want {
			ok = ok && s.labels[k] == v
		}
		if ok {
			found = append(found, s.value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

func (s *rig) credentialName() string {
	return s.sim.Config().Username + "@" + strings.TrimPrefix(s.run.URL, "https://") + "/2"
}

func TestMetricsAfterTrafficFailureAndReload(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	for range 5 {
		if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
	s.sim.RevokeAllTokens()
	if r := s.call("POST", usersPath, []byte(`{"samAccountName":"m"}`)); r.status != 200 {
		t.Fatalf("after revocation: %d", r.status)
	}
	// A forced refresh while the token endpoint fails: one transient failure.
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	if r := s.callURL("POST", admin+"/groupid/refresh", nil); r.status != http.StatusAccepted {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	// Wait for the sidecar to record the failure (the simulator counts the
	// request before the sidecar has the answer).
	testenv.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(string(s.callURL("GET", admin+"/groupid/status", nil).body), `"refresh_token/transient":1`)
	}, "the failed refresh in the status")

	name := s.credentialName()
	check := func(stage string) {
		m := scrape(t, s)
		n := map[string]string{"name": name}
		with := func(kv ...string) map[string]string {
			out := map[string]string{"name": name}
			for i := 0; i+1 < len(kv); i += 2 {
				out[kv[i]] = kv[i+1]
			}
			return out
		}
		expect := []struct {
			metric string
			labels map[string]string
			want   float64
		}{
			{"caddy_groupid_requests_injected_total", n, 6},
			{"caddy_groupid_replays_total", n, 1},
			{"caddy_groupid_unauthorized_passed_total", n, 0},
			{"caddy_groupid_token_requests_total", with("grant_type", "password", "outcome", "ok"), 2},
			{"caddy_groupid_token_requests_total", with("grant_type", "refresh_token", "outcome", "transient"), 1},
			{"caddy_groupid_token_request_duration_seconds_count", with("grant_type", "password"), 2},
			{"caddy_groupid_token_request_duration_seconds_count", with("grant_type", "refresh_token"), 1},
			{"caddy_groupid_requests_refused_total", with("reason", "unavailable"), 0},
			{"caddy_groupid_requests_refused_total", with("reason", "rejected"), 0},
			{"caddy_groupid_token_valid", n, 1},
		}
		for _, e := range expect {
			if got := value(t, m, e.metric, e.labels); got != e.want {
				t.Errorf("%s: %s%v = %v, want %v", stage, e.metric, e.labels, got, e.want)
			}
		}
		if left := value(t, m, "caddy_groupid_token_expires_in_seconds", n); left < 1000 || left > 1200 {
			t.Errorf("%s: expires_in %v", stage, left)
		}
		for metric, series := range m {
			for _, sm := range series {
				if sm.labels["name"] != name {
					t.Errorf("%s: stray series %s%v", stage, metric, sm.labels)
				}
			}
		}
	}
	check("before reload")
	s.Extra = "reloaded"
	s.load()
	check("after reload")
}

func TestStatusRouteAndForcedRefresh(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil)
	r := s.callURL("GET", admin+"/groupid/status", nil)
	var st []map[string]any
	if err := json.Unmarshal(r.body, &st); err != nil || len(st) != 1 {
		t.Fatalf("status: %d %v (%d entries)", r.status, err, len(st))
	}
	for _, f := range []string{"name", "token_endpoint_host", "username", "identity_store_id", "state", "token_expires",
		"expires_in_seconds", "token_age_seconds", "last_refresh", "grant_type", "token_requests", "requests_injected"} {
		if _, ok := st[0][f]; !ok {
			t.Errorf("status lacks %s", f)
		}
	}
	if st[0]["state"] != "valid" || st[0]["grant_type"] != "password" || st[0]["requests_injected"] != 1.0 || st[0]["name"] != s.credentialName() {
		t.Errorf("status values: %v", st[0])
	}
	assertNoSecrets(t, s, string(r.body))

	if r := s.callURL("POST", admin+"/groupid/refresh", nil); r.status != http.StatusAccepted {
		t.Fatalf("refresh: %d", r.status)
	}
	// The simulator counts the request before the sidecar has the answer,
	// so wait for the status itself to show the refresh.
	testenv.Eventually(t, 5*time.Second, func() bool {
		r = s.callURL("GET", admin+"/groupid/status", nil)
		return strings.Contains(string(r.body), `"grant_type":"refresh_token"`)
	}, "the forced refresh in the status")
	if n := s.sim.Counters().TokensTotal(); n != 2 {
		t.Errorf("token requests %d, want 2", n)
	}
	assertNoSecrets(t, s, string(r.body))
	if r := s.callURL("GET", admin+"/groupid/refresh", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET refresh: %d", r.status)
	}
	if r := s.callURL("POST", admin+"/groupid/refresh?name=nobody", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown name: %d", r.status)
	}
}

func assertNoSecrets(t *testing.T, s *rig, text string) {
	t.Helper()
	cfg := s.sim.Config()
	for _, v := range append(append([]string{cfg.Password, cfg.ClientSecret}, s.sim.IssuedTokens()...), s.sim.IssuedRefreshTokens()...) {
		if strings.Contains(text, v) {
			t.Fatal("a secret or token is in the admin status (value not shown)")
		}
	}
}

func TestReadinessAndLiveness(t *testing.T) {
	s := newRig(t, groupidsim.Config{TokenLifetime: 3 * time.Second})
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: 1500 * time.Millisecond})
	s.load()
	live := func() {
		t.Helper()
		if r := s.callURL("GET", ops+"/live", nil); r.status != 200 {
			t.Fatalf("liveness %d", r.status)
		}
	}
	if r := s.callURL("GET", ops+"/ready", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"ready":false`) {
		t.Fatalf("ready before the first token: %d %s", r.status, r.body)
	}
	live()
	testenv.Eventually(t, 5*time.Second, func() bool { return s.callURL("GET", ops+"/ready", nil).status == 200 }, "ready")
	live()
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	testenv.Eventually(t, 6*time.Second, func() bool { return s.callURL("GET", ops+"/ready", nil).status == 503 }, "not ready after expiry")
	live()
	r := s.callURL("GET", ops+"/ready", nil)
	if !strings.Contains(string(r.body), "unavailable") {
		t.Errorf("reason missing: %s", r.body)
	}
	s.sim.SetFault(groupidsim.Fault{})
	testenv.Eventually(t, 10*time.Second, func() bool { return s.callURL("GET", ops+"/ready", nil).status == 200 }, "ready again")
	live()
}
