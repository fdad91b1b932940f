package monitoring

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// TestRealPrometheus runs a real Prometheus (Debian's package) scraping a
// real Caddy in front of the simulator, every second, with a copy of the
// rules whose `for` is 3 s: after traffic (and a 401 that drops a token)
// every dashboard query returns data; the token endpoint goes down, the
// refreshes fail while the token (16 s, refreshed 8-12 s before expiry)
// is still served and GroupIDRefreshFailing fires with the time left, the
// token expires and GroupIDNoValidToken fires; GroupID heals and both
// alerts resolve.
func TestRealPrometheus(t *testing.T) {
	promBin := tool(t, "prometheus")
	start := time.Now()
	dir := t.TempDir()
	caddyBin := filepath.Join(dir, "caddy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := live.BuildCaddy(ctx, "", caddyBin); err != nil {
		t.Fatal(err)
	}
	t.Logf("caddy built in %s", time.Since(start).Round(time.Millisecond))

	gid := testenv.NewSim(t, groupidsim.Config{TokenLifetime: 16 * time.Second})
	caddy, client := startCaddy(t, dir, caddyBin, gid)
	prom := startPrometheus(t, dir, promBin, caddy.metricsPort)
	t.Logf("caddy and prometheus up at %s", time.Since(start).Round(time.Millisecond))

	// Traffic, and a 401: GroupID forgets its tokens, the sidecar drops
	// the one it holds and replays the request with a new one.
	for range 5 {
		caddy.get(t, client, http.StatusOK)
	}
	gid.Sim.RevokeAllTokens()
	caddy.get(t, client, http.StatusOK)
	prom.waitFor(t, 30*time.Second, `caddy_groupid_token_drops_total == 1 and caddy_groupid_replays_total == 1`)
	for _, p := range Dashboard().Visualizations() {
		for _, tg := range p.Targets {
			expr := strings.NewReplacer("$instance", ".*", "$name", ".*", "$__rate_interval", "1m").Replace(tg.Expr)
			prom.waitFor(t, 30*time.Second, expr)
		}
	}
	t.Logf("every dashboard query returned data at %s", time.Since(start).Round(time.Millisecond))

	// GroupID's token endpoint goes down: the served token runs out.
	gid.Sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	down := time.Now()
	a := prom.waitAlert(t, 30*time.Second, "GroupIDRefreshFailing", true)
	t.Logf("GroupIDRefreshFailing firing %s after the outage began: %s",
		time.Since(down).Round(time.Millisecond), a["summary"])
	if !regexp.MustCompile(`the token expires in (\d+m )?[\d.]+s$`).MatchString(a["summary"]) {
		t.Errorf("GroupIDRefreshFailing summary %q does not give the time left", a["summary"])
	}
	prom.waitAlert(t, 40*time.Second, "GroupIDNoValidToken", true)
	t.Logf("GroupIDNoValidToken firing %s after the outage began", time.Since(down).Round(time.Millisecond))
	caddy.get(t, client, http.StatusServiceUnavailable)

	// GroupID is back. The operator's refresh (POST /groupid/refresh)
	// retries at once instead of after the backoff (up to 60 s).
	gid.Sim.SetFault(groupidsim.Fault{})
	healed := time.Now()
	resp, err := client.Post(caddy.AdminURL("/groupid/refresh"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	prom.waitAlert(t, 30*time.Second, "GroupIDNoValidToken", false)
	prom.waitAlert(t, 10*time.Second, "GroupIDRefreshFailing", false)
	t.Logf("GroupIDNoValidToken resolved %s after GroupID healed; test took %s",
		time.Since(healed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	caddy.get(t, client, http.StatusOK)
}

// sidecar is the Caddy under test: a groupid_auth site with a shared
// token (so the sharing series exist) and a metrics site.
type sidecar struct {
	*live.Caddy
	metricsPort int
}

func startCaddy(t *testing.T, dir, bin string, gid *live.Sim) (*sidecar, *http.Client) {
	t.Helper()
	cfg := gid.Sim.Config()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	files := map[string]string{"password": cfg.Password, "client_secret": cfg.ClientSecret,
		"share.key": base64.StdEncoding.EncodeToString(key)}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	admin, httpPort, metricsPort := testenv.FreePort(), testenv.FreePort(), testenv.FreePort()
	caddyfile := testenv.OfflineGlobals(admin, httpPort, testenv.FreePort(), "storage file_system "+filepath.Join(dir, "shared")) +
		strings.NewReplacer(
			"HTTPPORT", fmt.Sprint(httpPort), "METRICSPORT", fmt.Sprint(metricsPort), "DIR", dir,
			"TOKENURL", testenv.UniqueTokenURL(gid.TokenURL()), "ORIGIN", gid.URL, "USERNAME", cfg.Username,
			"CLIENTID", cfg.ClientID, "CAFILE", gid.CAFile,
		).Replace(`
http://127.0.0.1:METRICSPORT {
	metrics
}

http://localhost:HTTPPORT {
	groupid_auth {
		name monitored
		token_url TOKENURL
		username USERNAME
		password {file.DIR/password}
		client_id CLIENTID
		client_secret {file.DIR/client_secret}
		identity_store_id 2
		ca_cert_file CAFILE
		refresh_before 8s
		share {
			key {file.DIR/share.key}
		}
	}
	reverse_proxy ORIGIN {
		transport groupid {
			tls_trust_pool file CAFILE
		}
	}
}
`)
	p := testenv.StartCaddy(t, live.CaddyConfig{Bin: bin, Dir: dir, Name: "caddy", Caddyfile: caddyfile, Admin: admin, HTTP: httpPort})
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	if err := p.WaitReady(30*time.Second, live.OK(client, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))); err != nil {
		t.Fatal(err)
	}
	return &sidecar{Caddy: p, metricsPort: metricsPort}, client
}

// get sends the typical call through the sidecar and wants status.
func (s *sidecar) get(t *testing.T, client *http.Client, status int) {
	t.Helper()
	resp, err := client.Get(fmt.Sprintf("http://localhost:%d/GroupIDDataService/api/IdentityStores/2/Users/%s", s.HTTP, groupidsim.SeedUserID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET a user through the sidecar: %d, want %d; caddy log:\n%s", resp.StatusCode, status, s.Tail(20))
	}
}

// prometheus is a running Prometheus server.
type prometheus struct {
	url     string
	logPath string
	client  *http.Client
}

// startPrometheus runs Prometheus on a free port with a temporary TSDB,
// scraping the sidecar's metrics site and evaluating a copy of the rules
// every second, their `for` shortened to 3 s.
func startPrometheus(t *testing.T, dir, bin string, metricsPort int) *prometheus {
	t.Helper()
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	rules = regexp.MustCompile(`(?m)^(\s+for:) \S+$`).ReplaceAll(rules, []byte("$1 3s"))
	rulesCopy, config := filepath.Join(dir, "rules.yml"), filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(rulesCopy, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: caddy
    static_configs:
      - targets: ["127.0.0.1:%d"]
`, rulesCopy, metricsPort), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort()
	p := &prometheus{url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "prometheus.log"),
		client: &http.Client{Timeout: 5 * time.Second}}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := live.StartGroup(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() { live.KillGroup(cmd.Process.Pid); <-exited })
	err = live.Poll(30*time.Second, func() error {
		select {
		case <-exited:
			return live.Stop(fmt.Errorf("prometheus exited"))
		default:
		}
		return live.OK(p.client, p.url+"/-/ready")()
	})
	if err != nil {
		t.Fatalf("prometheus not ready: %v\n%s", err, p.log())
	}
	return p
}

func (p *prometheus) log() string { b, _ := os.ReadFile(p.logPath); return string(b) }

// api GETs path from Prometheus's HTTP API into out's data field.
func (p *prometheus) api(path string, out any) error {
	resp, err := p.client.Get(p.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	if body.Status != "success" {
		return live.Stop(fmt.Errorf("%s: %s", path, body.Error)) // a bad query stays bad
	}
	return json.Unmarshal(body.Data, out)
}

// waitFor waits until the instant query expr returns at least one series.
func (p *prometheus) waitFor(t *testing.T, timeout time.Duration, expr string) {
	t.Helper()
	err := live.Poll(timeout, func() error {
		var data struct {
			Result []json.RawMessage `json:"result"`
		}
		if err := p.api("/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
			return err
		}
		if len(data.Result) == 0 {
			return fmt.Errorf("no data")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
}

// waitAlert waits until alert is firing (or, if !firing, not active),
// and returns its annotations.
func (p *prometheus) waitAlert(t *testing.T, timeout time.Duration, alert string, firing bool) map[string]string {
	t.Helper()
	var annotations map[string]string
	err := live.Poll(timeout, func() error {
		var data struct {
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
				State       string            `json:"state"`
			} `json:"alerts"`
		}
		if err := p.api("/api/v1/alerts", &data); err != nil {
			return err
		}
		state := "inactive"
		for _, a := range data.Alerts {
			if a.Labels["alertname"] == alert {
				state, annotations = a.State, a.Annotations
			}
		}
		if (state == "firing") != firing || (!firing && state != "inactive") {
			return fmt.Errorf("%s is %s", alert, state)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for %s (firing=%v): %v", alert, firing, err)
	}
	return annotations
}
