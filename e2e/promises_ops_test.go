package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// TestPromiseTwoCredentialsReadinessStatusAndMetrics checks README
// "Readiness, liveness and status": groupid_ready answers 200 "while the
// named credential (default: every credential of the running config)
// serves a token", "It never calls GroupID", "The name takes the same
// placeholders as groupid_auth's name ({env.X}, {file.*}); a name that no
// groupid_auth of the config has stops the config from starting [...]
// with an error listing the names it has"; the status fields, with
// "last_error (class, code, status, message)" and replays_after_401 "with
// the same value" as replays; and "Metrics": served by "the metrics
// handler", and "a credential that is gone leaves no series"; POST
// /groupid/refresh answers "202 with the names".
func TestPromiseTwoCredentialsReadinessStatusAndMetrics(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	nameFile := filepath.Join(t.TempDir(), "ready-name")
	if err := os.WriteFile(nameFile, []byte("good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := s.sim.Config()
	bad := fmt.Sprintf("\thandle /bad/* {\n\t\tgroupid_auth {\n\t\t\tname bad\n\t\t\ttoken_url %s\n\t\t\tusername %s\n\t\t\tpassword not-the-password\n"+
		"\t\t\tclient_id %s\n\t\t\tclient_secret %s\n\t\t\tidentity_store_id 2\n\t\t\tca_cert_file %s\n\t\t}\n"+
		"\t\treverse_proxy %s {\n\t\t\ttransport groupid {\n\t\t\t\ttls_trust_pool file %s\n\t\t\t}\n\t\t}\n\t}\n\thandle {\n",
		s.run.TokenURL(), c.Username, c.ClientID, c.ClientSecret, s.caFile, s.run.URL, s.caFile)
	good := edit(t, s.caddyfile(), "\t\tgroupid_auth {\n", "\t\tgroupid_auth {\n\t\t\tname good\n")
	two := edit(t, edit(t, good, "\thandle {\n", bad), "\thandle /live {", "\thandle /ready-good {\n\t\tgroupid_ready {file."+nameFile+"}\n\t}\n\thandle /live {")
	s.tester.InitServer(two, "caddyfile")
	path := usersPath + "/" + groupidsim.SeedUserID
	s.call("GET", path, nil)
	s.sim.RevokeAllTokens()
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("after a revocation: %d", r.status)
	}
	status := map[string]map[string]any{}
	testenv.Eventually(t, 10*time.Second, func() bool {
		var st []map[string]any
		_ = json.Unmarshal(s.callURL("GET", admin+"/groupid/status", nil).body, &st)
		for _, e := range st {
			status[fmt.Sprint(e["name"])] = e
		}
		return len(st) == 2 && status["good"]["state"] == "valid" && status["bad"]["state"] == "rejected"
	}, "both first token requests in the status")
	tokens, calls := s.sim.Counters().TokensTotal(), len(s.sim.Requests())
	for range 20 {
		if r := s.callURL("GET", ops+"/ready", nil); r.status != 503 || !strings.Contains(string(r.body), "no valid token for bad") {
			t.Fatalf("ready for every credential, one rejected: %d %s", r.status, r.body)
		}
		if r := s.callURL("GET", ops+"/ready-good", nil); r.status != 200 || !strings.Contains(string(r.body), `"name":"good"`) {
			t.Fatalf("groupid_ready {file.*} naming the valid credential: %d %s", r.status, r.body)
		}
	}
	if s.sim.Counters().TokensTotal() != tokens || len(s.sim.Requests()) != calls {
		t.Error("readiness answers called GroupID")
	}
	for _, k := range []string{"token_endpoint_host", "username", "identity_store_id", "token_expires", "expires_in_seconds", "token_age_seconds",
		"last_refresh", "grant_type", "token_requests", "requests_injected", "requests_refused_unavailable", "requests_refused_rejected", "unauthorized_passed"} {
		if _, ok := status["good"][k]; !ok {
			t.Errorf("the status of a credential with a token lacks %s", k)
		}
	}
	if g := status["good"]; g["replays"] != 1.0 || g["replays_after_401"] != 1.0 {
		t.Errorf("replays %v, replays_after_401 %v; want 1 and 1", g["replays"], g["replays_after_401"])
	}
	le, _ := status["bad"]["last_error"].(map[string]any)
	if le["class"] != "rejected" || le["code"] != "invalid_grant" || le["status"] != 400.0 || le["message"] == nil || status["bad"]["next_attempt"] == nil {
		t.Errorf("a rejected credential's last_error %v, next_attempt %v", le, status["bad"]["next_attempt"])
	}
	if m := string(s.callURL("GET", ops+"/metrics", nil).body); !strings.Contains(m, `caddy_groupid_token_valid{name="good"} 1`) ||
		!strings.Contains(m, `caddy_groupid_token_valid{name="bad"} 0`) {
		t.Errorf("the metrics handler does not serve both credentials' series")
	}
	if r := s.callURL("POST", admin+"/groupid/refresh", nil); r.status != http.StatusAccepted || !strings.Contains(string(r.body), `["bad","good"]`) {
		t.Errorf("POST /groupid/refresh: %d %s; want 202 with the names", r.status, r.body)
	}
	unknown := edit(t, two, "groupid_ready {file."+nameFile+"}", "groupid_ready nobody")
	if msg := s.loadExpectingFailure(unknown); !strings.Contains(msg, "names: good, bad") {
		t.Errorf("an unknown readiness name: %s; want the names the config has", msg)
	}
	s.tester.InitServer(good, "caddyfile")
	for _, where := range []string{admin, ops} {
		if m := string(s.callURL("GET", where+"/metrics", nil).body); strings.Contains(m, `name="bad"`) || !strings.Contains(m, `name="good"`) {
			t.Errorf("%s/metrics after the bad credential was removed: series of a gone credential, or none of the kept one", where)
		}
	}
}

// TestPromiseRejectionsGive502NamingTheCode checks README "When no valid
// token can be had": "502 Bad Gateway | GroupID rejected the configured
// credentials (invalid_grant, invalid_client, invalid_scope,
// unauthorized_client, unsupported_grant_type, a redirect, another 4xx) |
// [...] the error log names the OAuth error code".
func TestPromiseRejectionsGive502NamingTheCode(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	cert, err := s.run.CA.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch code := strings.Split(r.URL.Path, "/")[1]; code {
		case "redirect":
			http.Redirect(w, r, "https://elsewhere.example/token", http.StatusFound)
		case "forbidden":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q}`, code)
		}
	}))
	idp.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	idp.StartTLS()
	t.Cleanup(idp.Close)
	for _, code := range []string{"invalid_grant", "invalid_client", "invalid_scope", "unauthorized_client", "unsupported_grant_type", "redirect", "forbidden"} {
		from := s.logSize()
		s.tester.InitServer(edit(t, s.caddyfile(), s.run.TokenURL(), idp.URL+"/"+code+"/token"), "caddyfile")
		if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != http.StatusBadGateway {
			t.Errorf("%s: %d, want 502", code, r.status)
		}
		want := `"oauth_error":"` + code + `"`
		if code == "redirect" || code == "forbidden" {
			want = `"oauth_error":""`
		}
		// The refusal can reach the client a moment before the line is
		// written (the token source records the failure, then reports it).
		testenv.Eventually(t, 5*time.Second, func() error {
			if n := len(s.logLines(from, `"level":"error"`, "groupid rejected the configured credentials", want)); n != 1 {
				return fmt.Errorf("%s: %d error lines with %s, want 1", code, n, want)
			}
			return nil
		}, "the error line")
	}
	if n := len(s.sim.Requests()); n != 0 {
		t.Errorf("GroupID got %d requests", n)
	}
}

// TestPromiseMetricsCountOutcomesAndRefusals checks README "Metrics":
// caddy_groupid_token_requests_total's outcome ("ok, an OAuth code such as
// invalid_grant, other_error, rejected, transient"),
// caddy_groupid_requests_refused_total's reason ("unavailable = 503,
// rejected = 502") and caddy_groupid_unauthorized_passed_total ("upstream
// 401s passed to the client (body too large to replay)").
func TestPromiseMetricsCountOutcomesAndRefusals(t *testing.T) {
	s := newRig(t, groupidsim.Config{RefreshErrorCode: "no_such_code"})
	s.load()
	path := usersPath + "/" + groupidsim.SeedUserID
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	attempts := func() (n float64) {
		for _, smp := range scrape(t, s)["caddy_groupid_token_requests_total"] {
			n += smp.value
		}
		return n
	}
	// force makes the sidecar send n token requests now (POST /groupid/refresh).
	force := func(fault groupidsim.Fault, n float64) {
		s.sim.SetFault(fault)
		want := attempts() + n
		if r := s.callURL("POST", admin+"/groupid/refresh", nil); r.status != http.StatusAccepted {
			t.Fatalf("refresh: %d", r.status)
		}
		testenv.Eventually(t, 10*time.Second, func() bool { return attempts() >= want }, "the forced token requests")
	}
	password := s.sim.Config().Password
	s.sim.InvalidateRefreshTokens()
	force(groupidsim.Fault{}, 2)                                       // refresh_token/other_error, then password/ok
	force(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 403}, 2) // refresh_token/rejected, then password/rejected
	s.sim.SetPassword("changed-elsewhere")
	force(groupidsim.Fault{}, 1) // password/invalid_grant; the held token is still served
	s.sim.RevokeAllTokens()
	if r := s.call("GET", path, nil); r.status != http.StatusBadGateway {
		t.Fatalf("the token dropped after a 401, the password refused: %d", r.status)
	}
	force(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503}, 1) // password/transient
	if r := s.call("GET", path, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("no token, GroupID failing: %d", r.status)
	}
	s.sim.SetPassword(password)
	force(groupidsim.Fault{}, 1) // password/ok
	s.sim.RevokeAllTokens()
	if r := s.call("POST", usersPath, make([]byte, 2<<20)); r.status != http.StatusUnauthorized {
		t.Fatalf("a body too large to replay after a revocation: %d", r.status)
	}
	m := scrape(t, s)
	for _, e := range []struct {
		metric    string
		labels    []string
		want, max float64
	}{
		{"caddy_groupid_token_requests_total", []string{"grant_type", "refresh_token", "outcome", "other_error"}, 1, 1},
		{"caddy_groupid_token_requests_total", []string{"grant_type", "refresh_token", "outcome", "rejected"}, 1, 1},
		{"caddy_groupid_token_requests_total", []string{"grant_type", "password", "outcome", "rejected"}, 1, 1},
		{"caddy_groupid_token_requests_total", []string{"grant_type", "password", "outcome", "invalid_grant"}, 2, 2},
		{"caddy_groupid_token_requests_total", []string{"grant_type", "password", "outcome", "transient"}, 1, 1},
		{"caddy_groupid_token_requests_total", []string{"grant_type", "password", "outcome", "ok"}, 3, 4}, // 4 once the 401's successor came
		{"caddy_groupid_requests_refused_total", []string{"reason", "rejected"}, 1, 1},
		{"caddy_groupid_requests_refused_total", []string{"reason", "unavailable"}, 1, 1},
		{"caddy_groupid_unauthorized_passed_total", nil, 1, 1},
	} {
		labels := map[string]string{"name": s.credentialName()}
		for i := 0; i+1 < len(e.labels); i += 2 {
			labels[e.labels[i]] = e.labels[i+1]
		}
		if v := value(t, m, e.metric, labels); v < e.want || v > e.max {
			t.Errorf("%s%v = %v, want %v", e.metric, labels, v, e.want)
		}
	}
}

// TestPromiseExampleProbesOnTheirOwnLoopbackListener checks README
// "Readiness, liveness and status": "Caddyfile.example has both on a
// separate listener (HEALTH_BIND:HEALTH_PORT, default 127.0.0.1:8081 [...])",
// with its metrics ("Metrics": served "at HEALTH_BIND:HEALTH_PORT/metrics").
func TestPromiseExampleProbesOnTheirOwnLoopbackListener(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"HEALTH_BIND", "HEALTH_PORT"} {
		t.Setenv(v, "")
		os.Unsetenv(v) // the defaults
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct{ Servers map[string]json.RawMessage }
		}
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var probes []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		if strings.Contains(string(srv), `"listen":["127.0.0.1:8081"]`) {
			probes = append(probes, string(srv))
		}
	}
	if len(probes) != 1 {
		t.Fatalf("%d servers listen on 127.0.0.1:8081 alone, want 1", len(probes))
	}
	for _, want := range []string{`"/ready"`, `"handler":"groupid_ready"`, `"/live"`, `"status_code":200`, `"/metrics"`, `"handler":"metrics"`} {
		if !strings.Contains(probes[0], want) {
			t.Errorf("the probe listener lacks %s", want)
		}
	}
	if strings.Contains(probes[0], "groupid_auth") {
		t.Error("the probe listener uses the token")
	}
}
