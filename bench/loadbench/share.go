// Phase 6: token requests of a cluster of replicas that share one token
// through one storage folder (groupid_auth's share block), against 1, 3 and
// 5 replicas, and 3 replicas that do not share, for contrast.

package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// shareRow is one cluster run.
type shareRow struct {
	Replicas      int
	Shared        bool
	Dur           time.Duration
	Lifetime      time.Duration
	TokenRequests int
	Password      int
	Refresh       int
	Refused       int // refresh grants answered with an OAuth error
	Requests      int
	Non2xx        int
}

// refreshesPerLifetime is the refresh grants per token lifetime of the run.
func (r shareRow) refreshesPerLifetime() float64 {
	return float64(r.Refresh) / (r.Dur.Seconds() / r.Lifetime.Seconds())
}

// configShare is config A with a share block over folder, proxying to the
// simulator's Data API (which checks every token itself: replicas that do
// not share hold different valid tokens).
func configShare(admin, port int, tokenURL, caFile, origin, folder, keyFile string, share bool) string {
	var storage, block string
	if share {
		storage = "\tstorage file_system " + folder + "\n"
		block = "\t\tshare {\n\t\t\tkey {file." + keyFile + "}\n\t\t}\n"
	}
	global := fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n\tauto_https off\n\tgrace_period 1s\n%s}\n", admin, storage)
	transport := "\t\ttransport groupid {\n\t\t\ttls_trust_pool file " + caFile + "\n\t\t}\n"
	return global + sidecarSite(port, tokenURL, caFile, block, origin, transport)
}

func (b *bench) runShare() error {
	if b.o.shareLifetimes <= 0 {
		return nil
	}
	for _, c := range []struct {
		n      int
		shared bool
	}{{1, true}, {3, true}, {5, true}, {3, false}} {
		row, err := b.shareRun(c.n, c.shared)
		if err != nil {
			return err
		}
		b.share = append(b.share, row)
	}
	return nil
}

// shareRun starts n replicas (sharing one folder or not) against a fresh
// simulator, sends each -rate/n requests per second for -share-lifetimes
// token lifetimes, and counts the token requests.
func (b *bench) shareRun(n int, shared bool) (shareRow, error) {
	o := b.o
	row := shareRow{Replicas: n, Shared: shared, Lifetime: o.lifetime, Dur: time.Duration(o.shareLifetimes) * o.lifetime}
	sim, run, caFile, err := b.newSim(groupidsim.Config{TokenLifetime: o.lifetime, ReuseRevokesFamily: true})
	if err != nil {
		return row, err
	}
	dir, err := os.MkdirTemp(b.dir, "share-")
	if err != nil {
		return row, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(dir, "share.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return row, err
	}
	logf("share: %d replicas (sharing %v) for %s, token lifetime %s", n, shared, row.Dur, o.lifetime)
	var urls []string
	for i := range n {
		port, admin := live.FreePort(), live.FreePort()
		cfg := configShare(admin, port, run.TokenURL(), caFile, run.URL, filepath.Join(dir, "storage"), keyFile, shared)
		p, err := b.startCaddy(dir, fmt.Sprintf("replica%d", i+1), cfg, port, admin)
		if err != nil {
			return row, err
		}
		defer p.Stop()
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, apiPath)
		if err := waitServing(p, url); err != nil {
			return row, err
		}
		urls = append(urls, url)
	}
	if n == 1 || b.cfgShare == "" {
		b.cfgShare = configShare(0, 0, "<token url>", "<ca.pem>", "<groupid>", "<folder>", "<key file>", true)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	rate := max(1, o.econRate/n)
	for _, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples := openLoop(b.ctx, url, rate, row.Dur, max(4, o.econWorkers/n))
			mu.Lock()
			defer mu.Unlock()
			for _, s := range samples {
				row.Requests++
				if s.Status < 200 || s.Status > 299 {
					row.Non2xx++
				}
			}
		}()
	}
	wg.Wait()
	c := sim.Counters()
	row.TokenRequests, row.Password, row.Refresh = c.TokensTotal(), c.Tokens("password"), c.Tokens("refresh_token")
	for k, v := range c.TokenRequests {
		if strings.HasPrefix(k, "refresh_token/") && k != "refresh_token/ok" && k != "refresh_token/fault" {
			row.Refused += v
		}
	}
	logf("share: %d replicas (sharing %v): %d token requests", n, shared, row.TokenRequests)
	return row, nil
}

func (b *bench) reportShare(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## 6. Replicas sharing one token\n\n")
	p("Replicas of config A with a `share` block over one `file_system` storage folder (CertMagic's file storage "+
		"and locks), proxying to the simulator's Data API, %d req/s in all spread over the replicas, simulator tokens "+
		"living %s (one-time refresh tokens that revoke the family on reuse), for %d lifetimes after every replica "+
		"served. Token requests count everything from the first start.\n\n", b.o.econRate, b.o.lifetime, b.o.shareLifetimes)
	p("| replicas | sharing | token requests | password | refresh | refreshes per lifetime | refresh tokens refused | client requests | not 2xx |\n")
	p("|---|---|---|---|---|---|---|---|---|\n")
	var one, three, five *shareRow
	for i := range b.share {
		r := &b.share[i]
		sharing := "no"
		if r.Shared {
			sharing = "yes"
		}
		p("| %d | %s | %d | %d | %d | %.2f | %d | %d | %d |\n", r.Replicas, sharing, r.TokenRequests,
			r.Password, r.Refresh, r.refreshesPerLifetime(), r.Refused, r.Requests, r.Non2xx)
		if r.Shared {
			switch r.Replicas {
			case 1:
				one = r
			case 3:
				three = r
			case 5:
				five = r
			}
		}
	}
	p("\n")
	if b.cfgShare != "" {
		p("Config of each sharing replica:\n\n```caddyfile\n%s```\n\n", b.cfgShare)
	}
	var out []verdict
	for _, r := range []*shareRow{three, five} {
		if one == nil || r == nil {
			continue
		}
		d := r.TokenRequests - one.TokenRequests
		out = append(out, verdict{
			Target:   fmt.Sprintf("%d sharing replicas make the token requests of one (within 2: random refresh jitter)", r.Replicas),
			Measured: fmt.Sprintf("%d vs %d", r.TokenRequests, one.TokenRequests),
			Met:      d >= -2 && d <= 2 && r.Refused == 0 && r.Non2xx == 0,
		})
	}
	return out
}
