package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// Token timing of these tests: 5 s tokens refreshed 2-3 s before expiry
// (refresh_before 2s plus up to 1 s of jitter), so one replica makes a
// refresh every 2-3 s.
const (
	lifetime        = 5 * time.Second
	refreshBefore   = 2 * time.Second
	shortestRefresh = lifetime - refreshBefore - refreshBefore/2
)

var usersPath = "/GroupIDDataService/api/IdentityStores/2/Users/" + groupidsim.SeedUserID

// cluster is a simulator and the files every replica reads.
type cluster struct {
	t       *testing.T
	sim     *groupidsim.Server
	run     *groupidsim.Running
	dir     string
	shared  string // the storage folder
	caFile  string
	pwFile  string
	csFile  string
	keyFile string
	key     string
	client  *http.Client
	// refresh is the refresh_before of the replicas (default refreshBefore).
	refresh time.Duration
}

func newCluster(t *testing.T, cfg groupidsim.Config) *cluster {
	t.Helper()
	gid := testenv.NewSim(t, cfg)
	sim := gid.Sim
	dir := t.TempDir()
	c := &cluster{t: t, sim: sim, run: gid.Running, dir: dir, shared: filepath.Join(dir, "shared"),
		caFile: gid.CAFile, pwFile: filepath.Join(dir, "password"),
		csFile: filepath.Join(dir, "client_secret"), keyFile: filepath.Join(dir, "share.key"),
		client: &http.Client{Timeout: 10 * time.Second}, refresh: refreshBefore}
	t.Cleanup(c.client.CloseIdleConnections)
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c.key = base64.StdEncoding.EncodeToString(k)
	for f, v := range map[string]string{c.pwFile: sim.Config().Password, c.csFile: sim.Config().ClientSecret, c.keyFile: c.key + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// replica returns replica i of the cluster (not started); share is the
// share block, or "" for a replica of its own.
func (c *cluster) replica(i int, share string) *replica {
	cfg := c.sim.Config()
	// Free ports, kept by the replica across restarts.
	admin, httpPort := testenv.FreePort(), testenv.FreePort()
	storage := "storage file_system " + c.shared
	if share == "" {
		storage = ""
	}
	r := strings.NewReplacer(
		"ADMIN", fmt.Sprint(admin), "HTTPSPORT", fmt.Sprint(testenv.FreePort()), "HTTPPORT", fmt.Sprint(httpPort),
		"STORAGE", storage, "SHARE", share, "TOKENURL", c.run.TokenURL(), "ORIGIN", c.run.URL,
		"USERNAME", cfg.Username, "PWFILE", c.pwFile, "CSFILE", c.csFile, "CLIENTID", cfg.ClientID,
		"CAFILE", c.caFile, "REFRESH", c.refresh.String(),
	)
	caddyfile := r.Replace(`{
	admin localhost:ADMIN
	http_port HTTPPORT
	https_port HTTPSPORT
	grace_period 1ns
	skip_install_trust
	auto_https off
	persist_config off
	STORAGE
}

http://localhost:HTTPPORT {
	groupid_auth {
		name cluster
		token_url TOKENURL
		username USERNAME
		password {file.PWFILE}
		client_id CLIENTID
		client_secret {file.CSFILE}
		identity_store_id 2
		ca_cert_file CAFILE
		refresh_before REFRESH
		SHARE
	}
	reverse_proxy ORIGIN {
		transport groupid {
			tls_trust_pool file CAFILE
		}
	}
}
`)
	return &replica{t: c.t, httpClient: &http.Client{Timeout: 5 * time.Second}, CaddyConfig: live.CaddyConfig{
		Bin: caddyBin, Dir: c.dir, Name: fmt.Sprintf("replica%d", i), Caddyfile: caddyfile, Admin: admin, HTTP: httpPort}}
}

// shareBlock is the share block of the tests: the config's storage.
func (c *cluster) shareBlock(extra string) string {
	return "share {\n\t\t\tkey {file." + c.keyFile + "}\n" + extra + "\t\t}"
}

// tokenRequests returns the arrival times of the token requests so far.
func (c *cluster) tokenRequests() []time.Time {
	var out []time.Time
	for _, r := range c.sim.Requests() {
		if strings.HasSuffix(r.Path, "/connect/token") {
			out = append(out, r.At)
		}
	}
	return out
}

// refusedRefreshTokens counts refresh grants the simulator refused (an
// OAuth error such as invalid_grant; not "fault", a request a fault
// answered instead, such as one whose client died while it hung).
func (c *cluster) refusedRefreshTokens() int {
	n := 0
	for k, v := range c.sim.Counters().TokenRequests {
		if strings.HasPrefix(k, "refresh_token/") && k != "refresh_token/ok" && k != "refresh_token/fault" {
			n += v
		}
	}
	return n
}

// traffic sends requests to every replica until stop is closed and
// returns the statuses that were not 2xx (0 for a transport error).
func traffic(client *http.Client, replicas []*replica, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://localhost:%d%s", r.HTTP, usersPath)
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				resp, err := client.Get(url)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if status < 200 || status > 299 {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s at %s: %d", r.Name, time.Now().Format("15:04:05.000"), status))
					mu.Unlock()
				}
			}
		}()
	}
	go func() {
		<-stop
		wg.Wait()
		out <- bad
	}()
	return out
}

// waitServing waits until every replica answers a client request with 200.
func waitServing(t *testing.T, client *http.Client, replicas ...*replica) {
	t.Helper()
	for _, r := range replicas {
		r.waitAdmin(20 * time.Second)
		if err := r.proc.WaitReady(20*time.Second, live.OK(client, fmt.Sprintf("http://localhost:%d%s", r.HTTP, usersPath))); err != nil {
			t.Fatalf("%s does not serve: %v", r.Name, err)
		}
	}
}

// TestClusterSharesOneToken: three Caddy processes share one storage
// folder (CertMagic's file storage and its locks) for ten token lifetimes
// under client traffic to all three, beside a fourth process working alone
// against a simulator of its own. The cluster makes the token requests of
// one replica, refreshes one chain (never a refresh token twice), refuses
// no client; a restarted replica starts from the shared token without a
// token request; the folder holds nothing in clear.
func TestClusterSharesOneToken(t *testing.T) {
	t.Parallel()
	simCfg := groupidsim.Config{TokenLifetime: lifetime, ReuseRevokesFamily: true}
	c := newCluster(t, simCfg)
	alone := newCluster(t, simCfg)
	replicas := []*replica{c.replica(1, c.shareBlock("")), c.replica(2, c.shareBlock("")), c.replica(3, c.shareBlock(""))}
	single := alone.replica(4, "")
	single.start()
	for _, r := range replicas {
		r.start()
	}
	waitServing(t, c.client, append(replicas, single)...)

	stop := make(chan struct{})
	bad := traffic(c.client, append(replicas, single), stop)
	time.Sleep(10 * lifetime)
	close(stop)
	if b := <-bad; len(b) > 0 {
		t.Errorf("%d client requests not 2xx; first: %v", len(b), b[:min(5, len(b))])
	}

	shared, own := c.tokenRequests(), alone.tokenRequests()
	t.Logf("token requests in %s of %s tokens: 3 sharing replicas %d, 1 replica alone %d", time.Since(replicas[0].startedAt).Round(time.Second), lifetime, len(shared), len(own))
	// The single replica is a reference for the log only: how many
	// refreshes fit in the run depends on the machine's speed. What does
	// not: one chain makes at most one request per shortest refresh
	// interval over the span of its requests (three separate chains would
	// make about three times as many), with the gaps checked below.
	if len(shared) > 1 {
		span := shared[len(shared)-1].Sub(shared[0])
		if limit := int(span/(shortestRefresh-300*time.Millisecond)) + 1; len(shared) > limit {
			t.Errorf("3 sharing replicas made %d token requests in %s; one chain makes at most %d", len(shared), span.Round(time.Millisecond), limit)
		}
	}
	// One chain: no two token requests closer than one replica's shortest
	// refresh interval (less scheduling slack).
	for i := 1; i < len(shared); i++ {
		if gap := shared[i].Sub(shared[i-1]); gap < shortestRefresh-300*time.Millisecond {
			t.Errorf("token requests %d and %d only %s apart: not one chain", i-1, i, gap)
		}
	}
	if n := c.refusedRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens refused", n)
	}
	if n := c.sim.Counters().Tokens("password"); n != 1 {
		t.Errorf("%d password grants, want 1 (the first)", n)
	}
	var sources []string
	for _, r := range replicas {
		st := r.mustStatus()
		sources = append(sources, st.TokenSource)
		if st.ShareFallbacks == nil || *st.ShareFallbacks != 0 || *st.ShareStorageErrors != 0 {
			t.Errorf("%s: fallbacks %v, storage errors %v", r.Name, st.ShareFallbacks, st.ShareStorageErrors)
		}
	}
	sort.Strings(sources)
	t.Logf("token sources: %v", sources)

	// Restart a replica just after a refresh: it serves the shared token
	// and makes no token request.
	before := len(c.tokenRequests())
	live.Wait(2*lifetime, func() bool { return len(c.tokenRequests()) > before }) // or restart anyway
	restarted := replicas[1]
	restarted.stop()
	restarted.start()
	waitServing(t, c.client, restarted)
	if st := restarted.mustStatus(); st.tokenRequests() != 0 || st.TokenSource != "shared" {
		t.Errorf("restarted replica: %d token requests, token_source %q; want 0 and shared", st.tokenRequests(), st.TokenSource)
	}

	// Nothing in the storage folder in clear: no token, no refresh token,
	// no secret, no key.
	secrets := append(c.sim.IssuedTokens(), c.sim.IssuedRefreshTokens()...)
	secrets = append(secrets, c.sim.Config().Password, c.sim.Config().ClientSecret, c.key)
	files := 0
	err := filepath.Walk(c.shared, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds secret #%d in clear (redacted)", filepath.Base(p), i)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walking the storage folder: %d files, %v", files, err)
	}
	for _, r := range append(replicas, single) {
		for _, s := range secrets {
			if strings.Contains(r.log(), s) {
				t.Errorf("%s log holds a secret (redacted)", r.Name)
				break
			}
		}
	}
}
