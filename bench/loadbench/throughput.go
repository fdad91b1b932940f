// Phase 1: throughput and latency of A and B in interleaved wrk slices, and C
// (the upstream alone) for scale.

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

type tpRun struct {
	Round  int
	Config string
	Label  string // Config, or what stood in for it
	Slices int
	Res    *wrkResult
	Up     upstreamCounts
	RSSKB  int64
	// OtherCPU is the share of the machine used by other processes
	// during the measurement, in percent.
	OtherCPU float64
	// CPUPerReq is Caddy's CPU time per completed request.
	CPUPerReq time.Duration
}

type throughputResult struct {
	Runs []tpRun
}

func (b *bench) runThroughput() error {
	o := b.o
	_, run, caFile, err := b.newSim(groupidsim.Config{})
	if err != nil {
		return err
	}
	tp := &throughputResult{}
	b.tp = tp
	directURL := "http://" + b.up.addrB + apiPath
	auth := "Authorization: Bearer " + staticToken
	slice := o.duration / time.Duration(o.slices)
	b.commands = append(b.commands,
		"<workdir>/caddy run --config <A or B>.Caddyfile --adapter caddyfile   (copy of bin/caddy; a fresh process per config per round)",
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.warmup, "<url>", ""), " ")+"   (warm-up of each process, discarded)",
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, slice, "http://127.0.0.1:<port>"+apiPath, ""), " ")+
			fmt.Sprintf("   (A, B: %d slices each per round, interleaved)", o.slices),
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.duration, "http://<upstream>"+apiPath, `"`+auth+`"`), " ")+"   (C)",
	)
	for r := 1; r <= o.rounds; r++ {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		runs, err := b.abRound(r, run, caFile, abLoad{tag: "tp", path: apiPath, profile: true})
		if err != nil {
			return err
		}
		tp.Runs = append(tp.Runs, runs...)

		// C: the upstream alone, one run.
		if _, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, min(o.warmup, time.Second), directURL, auth), time.Second); err != nil {
			return fmt.Errorf("round %d config C warm-up: %w", r, err)
		}
		m, err := b.measure(nil, directURL, auth, o.duration)
		if err != nil {
			return fmt.Errorf("round %d config C: %w", r, err)
		}
		tp.Runs = append(tp.Runs, tpRun{Round: r, Config: "C", Label: "C", Res: m.res, Up: m.up, OtherCPU: m.other, Slices: 1})
		logf("round %d C: %.0f req/s, p50 %s, p99 %s, other processes %.0f%% CPU", r, m.res.RPS, fmtDur(m.res.P50), fmtDur(m.res.P99), m.other)
	}
	return nil
}

// abLoad is the request stream of a phase's A/B rounds.
type abLoad struct {
	tag     string   // names the Caddy processes: <tag>-r<round>-<config>
	log     string   // prefix of the progress lines
	path    string   // the path every request goes to
	extra   []string // more wrk arguments, such as a Lua script
	profile bool     // take the -profile profiles in round 1
}

// abRound measures one round of A and B: a fresh Caddy process for each, a
// warm-up of each, then o.slices wrk runs per config, interleaved (A first
// in odd rounds, B first in even ones) so a slow drift of the machine hits
// both alike. It returns A's and B's aggregated runs, in that order. With
// -aa, A is a second B process.
func (b *bench) abRound(r int, run *groupidsim.Running, caFile string, ld abLoad) ([]tpRun, error) {
	o := b.o
	slice := o.duration / time.Duration(o.slices)
	order := []string{"A", "B"}
	if r%2 == 0 {
		order = []string{"B", "A"}
	}
	procs := map[string]*live.Caddy{}
	urls := map[string]string{}
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for _, c := range order {
		var simRun *groupidsim.Running
		if c == "A" && !o.aa {
			simRun = run
		}
		p, _, err := b.startConfig(fmt.Sprintf("%s-r%d-%s", ld.tag, r, c), simRun, caFile, true)
		if err != nil {
			return nil, fmt.Errorf("round %d config %s: %w", r, c, err)
		}
		procs[c], urls[c] = p, fmt.Sprintf("http://127.0.0.1:%d%s", p.HTTP, ld.path)
	}
	for _, c := range order {
		if _, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, o.warmup, urls[c], "", ld.extra...), o.warmup); err != nil {
			return nil, fmt.Errorf("round %d config %s warm-up: %w", r, c, err)
		}
	}
	profile := ld.profile && o.profile != "" && r == 1
	parts := map[string][]*measurement{}
	for i := 0; i < o.slices; i++ {
		for _, c := range order {
			var prof func() error
			if profile && i == 0 {
				prof = b.startProfile(procs[c], c, slice)
			}
			m, err := b.measure(procs[c], urls[c], "", slice, ld.extra...)
			if prof != nil {
				if perr := prof(); perr != nil {
					logf("profile %s: %v", c, perr)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("round %d config %s: %w", r, c, err)
			}
			parts[c] = append(parts[c], m)
		}
	}
	if profile {
		for _, c := range order {
			// Allocations since start (warm-up included), before Caddy stops.
			aurl := procs[c].AdminURL("/debug/pprof/allocs")
			if perr := fetchTo(b.ctx, aurl, filepath.Join(o.profile, c+".allocs.pprof")); perr != nil {
				logf("allocs profile %s: %v", c, perr)
			}
		}
	}
	var runs []tpRun
	for _, c := range []string{"A", "B"} {
		agg := aggregate(parts[c])
		agg.rss, _ = rssKB(procs[c].Pid())
		label := c
		if c == "A" && o.aa {
			label = "A (= B, noise check)"
		}
		runs = append(runs, tpRun{Round: r, Config: c, Label: label, Res: agg.res, Up: agg.up, RSSKB: agg.rss,
			OtherCPU: agg.other, CPUPerReq: agg.cpuPerReq, Slices: len(parts[c])})
		logf("%sround %d %s: %.0f req/s, p50 %s, p99 %s (median of %d slices), non-2xx %d, socket errors %d, Caddy CPU %s/request, other processes %.0f%% CPU",
			ld.log, r, label, agg.res.RPS, fmtDur(agg.res.P50), fmtDur(agg.res.P99), len(parts[c]), agg.res.Non2xx, agg.res.SockErrors, fmtMicros(agg.cpuPerReq), agg.other)
	}
	return runs, nil
}

// startProfile fetches a CPU profile of the Caddy process p from its admin
// endpoint, timed to cover the measured run, and returns a function that
// waits for it and saves it as <profile dir>/<config>.pprof.
func (b *bench) startProfile(p *live.Caddy, config string, d time.Duration) func() error {
	secs := int(d.Seconds())
	if secs < 1 {
		secs = 1
	}
	url := p.AdminURL(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
	done := make(chan error, 1)
	go func() {
		done <- fetchTo(b.ctx, url, filepath.Join(b.o.profile, config+".pprof"))
	}()
	return func() error { return <-done }
}

func fetchTo(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("CPU profile saved: %s", path)
	return f.Close()
}
