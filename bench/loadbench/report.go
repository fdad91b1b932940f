package main

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// verdict is one line of the targets table.
type verdict struct {
	Target, Measured string
	Met              bool
}

func yes(met bool) string {
	if met {
		return "met"
	}
	return "**MISSED**"
}

func fmtMicros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// report renders every phase that ran as Markdown.
func (b *bench) report() string {
	var w strings.Builder
	var targets []verdict
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	m := b.machine

	p("# caddy-groupid load benchmark\n\n")
	var args []string
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " \t\"'$;|&") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	p("Run on %s with `go run ./bench/loadbench %s`.\n\n", m.Date, strings.Join(args, " "))

	if len(b.plots) > 0 {
		p("## Plots\n\n")
		for _, f := range b.plots {
			p("![%s](%s/%s)\n\n", f.Title, b.plotsRel, f.Name)
		}
	}

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %s |\n| CPU model | %s |\n| memory | %s |\n| kernel | %s |\n", m.NProc, m.CPU, m.MemTotal, m.Kernel)
	p("| Go | %s |\n| Caddy | %s |\n| wrk | %s |\n", m.GoVersion, firstLine(m.CaddyVersion), m.WrkVersion)
	p("| source measured | %s |\n| Caddy binary SHA-256 (first 16 hex) | %s |\n", strings.ReplaceAll(m.Source, "|", "/"), m.CaddySHA)
	p("| load average at start | %s |\n", m.LoadAvg)
	p("| other load at start | %s |\n", otherLoadText(m.OtherLoad))
	p("| other load at end | %s |\n", otherLoadText(m.OtherLoadLate))
	if b.cpuEnd.total > b.cpuStart.total {
		p("| CPU used by other processes during the benchmark | %.0f%% of the machine |\n", otherCPU(b.cpuStart, b.cpuEnd))
	}
	p("\n")
	p("Everything shares the same %s CPUs: wrk (or the Go load generator), the Caddy process, and this program's "+
		"upstream and GroupID simulator.\n\n", m.NProc)

	p("## Setup\n\n")
	p("- **Upstream**: an in-process Go `net/http` server answering 200 with a %d-byte JSON body. It checks the "+
		"`Authorization` header of every request: on the port config A proxies to it must be the newest token the "+
		"simulator issued (the one before it is accepted and counted separately, for requests in flight across a "+
		"refresh); on the port B and C use, the static token. Same handler, same process, two listeners, so requests "+
		"still in flight when the benchmark switches configs are checked against the right rule. Anything else gets "+
		"403 (never 401, which would trigger groupid_auth's 401 healing).\n", len(upstreamBody))
	p("- **Token endpoint**: the in-repo GroupID simulator (`groupidsim`), started in the same process over **HTTPS** "+
		"with a fresh CA that config A trusts through `ca_cert_file`. Tokens live 1200 s (the default) in the "+
		"throughput runs and %s in the token-economy and memory runs.\n", b.o.lifetime)
	p("- **Caddy**: `bin/caddy`, built from `./cmd/caddy` and copied into a work directory so that a rebuild by " +
		"someone else cannot change the binary mid-run, as a separate process: a fresh one per config per round, one " +
		"per run in the other phases. Free loopback ports, `persist_config off`, `auto_https off`, and the same " +
		"`reverse_proxy` transport in A and B (`keepalive_idle_conns_per_host 256`).\n\n")
	p("Commands:\n\n```sh\n")
	for _, c := range b.commands {
		p("%s\n", c)
	}
	p("```\n\n")
	if b.cfgA != "" {
		p("Config A (ports differ per run):\n\n```caddyfile\n%s```\n\n", b.cfgA)
	}
	if b.cfgB != "" {
		p("Config B:\n\n```caddyfile\n%s```\n\n", b.cfgB)
	}
	p("Config C: wrk straight at the upstream with `-H \"Authorization: Bearer <static>\"`.\n\n")

	if b.tp != nil {
		targets = append(targets, b.reportThroughput(&w)...)
	}
	if b.econ != nil {
		targets = append(targets, b.reportEconomy(&w)...)
	}
	if b.cold != nil {
		targets = append(targets, b.reportCold(&w)...)
	}
	if b.mem != nil {
		targets = append(targets, b.reportMemory(&w)...)
	}
	if b.post != nil {
		targets = append(targets, b.reportPost(&w)...)
	}
	if len(b.share) > 0 {
		targets = append(targets, b.reportShare(&w)...)
	}

	p("## Targets\n\n| target | measured | |\n|---|---|---|\n")
	for _, t := range targets {
		p("| %s | %s | %s |\n", t.Target, t.Measured, yes(t.Met))
	}
	p("\n")
	if len(b.errs) > 0 {
		p("## Errors\n\n")
		for _, e := range b.errs {
			p("- %s\n", e)
		}
		p("\n")
	}
	return w.String()
}

func otherLoadText(l []string) string {
	if len(l) == 0 {
		return "none seen (no `go test`, no fuzzer)"
	}
	return strings.ReplaceAll(strings.Join(l, "; "), "|", "/")
}

func (b *bench) reportThroughput(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	o := b.o
	p("## 1. Throughput and latency (wrk)\n\n")
	slice := o.duration / time.Duration(o.slices)
	p("%d rounds. Each round starts a fresh Caddy process for A and one for B, warms each up for %s, then measures "+
		"them in %d interleaved wrk runs of %s each (A first in odd rounds, B first in even ones), so that a slow drift "+
		"of the machine's speed hits both alike; then C for %s. `wrk -t%d -c%d --latency`. Per round and config: req/s "+
		"is all requests over all measured time; p50 and p99 are the medians of the %d runs' values; Caddy CPU per "+
		"request is the process's user+system time over the requests.\n\n",
		o.rounds, o.warmup, o.slices, slice, o.duration, o.threads, o.conns, o.slices)
	s := b.reportRounds(w, b.tp.Runs)
	var out []verdict
	if len(s.rps.all) > 0 {
		if s.med["C"] > 0 {
			p("For scale: B reaches %.0f%% and A %.0f%% of the upstream's own rate (C) on this machine.\n",
				100*s.med["B"]/s.med["C"], 100*s.med["A"]/s.med["C"])
		}
		out = append(out,
			verdict{"throughput A/B >= 0.98 (median of rounds)", s.rps.String(), s.rps.med >= 0.98},
			verdict{"p99 A/B <= 1.05 (median of rounds)", s.p99.String(), s.p99.med <= 1.05},
		)
	}
	out = append(out, verdict{"throughput runs: no non-2xx, socket errors or wrong tokens", fmt.Sprint(s.bad), s.bad == 0})
	p("\n")
	return out
}

// ratios is one A/B ratio over the rounds of a phase.
type ratios struct {
	all         []float64 // one a round
	med, lo, hi float64
}

func newRatios(xs []float64) ratios {
	r := ratios{all: xs, med: median(xs)}
	r.lo, r.hi = minMax(xs)
	return r
}

// String is the median with the range over the rounds.
func (r ratios) String() string { return fmt.Sprintf("%.3f (%.3f..%.3f)", r.med, r.lo, r.hi) }

// roundsSummary is what reportRounds works out from a phase's runs.
type roundsSummary struct {
	rps, p99, cpu ratios             // A/B per round
	med           map[string]float64 // median req/s per config
	bad           int64              // non-2xx, socket errors, wrong or missing tokens
}

// reportRounds writes the tables of a phase measured in A/B rounds (with C
// when present): every run, the medians per config, the A/B ratios per
// round and their medians.
func (b *bench) reportRounds(w *strings.Builder, runs []tpRun) roundsSummary {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	o := b.o
	if o.aa {
		p("**Noise check (-aa)**: the row labelled A is a second B process, so every A/B ratio below measures only noise.\n\n")
	}
	p("| round | config | req/s | p50 | p99 | non-2xx | socket errors | upstream: right / previous / wrong token | Caddy CPU per request | Caddy RSS | other processes' CPU |\n")
	p("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n")
	byCfg := map[string][]tpRun{}
	for _, r := range runs {
		byCfg[r.Config] = append(byCfg[r.Config], r)
		rss := "-"
		if r.RSSKB > 0 {
			rss = mib(r.RSSKB)
		}
		cpu := "-"
		if r.CPUPerReq > 0 {
			cpu = fmtMicros(r.CPUPerReq)
		}
		p("| %d | %s | %.0f | %s | %s | %d | %d | %d / %d / %d | %s | %s | %.0f%% |\n", r.Round, r.Label, r.Res.RPS, fmtDur(r.Res.P50),
			fmtDur(r.Res.P99), r.Res.Non2xx, r.Res.SockErrors, r.Up.OK, r.Up.Prev, r.Up.Wrong+r.Up.Missing, cpu, rss, r.OtherCPU)
	}
	p("\n| config | req/s median | req/s min..max | p50 median | p99 median | p99 min..max | Caddy CPU per request, median |\n|---|---:|---:|---:|---:|---:|---:|\n")
	s := roundsSummary{med: map[string]float64{}}
	for _, c := range []string{"A", "B", "C"} {
		runs := byCfg[c]
		if len(runs) == 0 {
			continue
		}
		var rps, p50, p99, cpu []float64
		for _, r := range runs {
			rps = append(rps, r.Res.RPS)
			p50 = append(p50, float64(r.Res.P50))
			p99 = append(p99, float64(r.Res.P99))
			cpu = append(cpu, float64(r.CPUPerReq))
		}
		lo, hi := minMax(rps)
		plo, phi := minMax(p99)
		s.med[c] = median(rps)
		cpuText := "-"
		if c != "C" {
			cpuText = fmtMicros(time.Duration(median(cpu)))
		}
		p("| %s | %.0f | %.0f..%.0f | %s | %s | %s..%s | %s |\n", c, s.med[c], lo, hi, fmtDur(time.Duration(median(p50))),
			fmtDur(time.Duration(median(p99))), fmtDur(time.Duration(plo)), fmtDur(time.Duration(phi)), cpuText)
	}
	// Per-round A/B ratios.
	var rr, pr, cr []float64
	p("\n| round | A/B req/s | A/B p99 | A/B Caddy CPU per request |\n|---|---:|---:|---:|\n")
	for r := 1; r <= o.rounds; r++ {
		var a, bb *tpRun
		for i := range runs {
			run := &runs[i]
			if run.Round == r && run.Config == "A" {
				a = run
			}
			if run.Round == r && run.Config == "B" {
				bb = run
			}
		}
		if a == nil || bb == nil {
			continue
		}
		x, y := a.Res.RPS/bb.Res.RPS, float64(a.Res.P99)/float64(bb.Res.P99)
		z := math.NaN()
		if bb.CPUPerReq > 0 {
			z = float64(a.CPUPerReq) / float64(bb.CPUPerReq)
		}
		rr, pr, cr = append(rr, x), append(pr, y), append(cr, z)
		p("| %d | %.3f | %.3f | %.3f |\n", r, x, y, z)
	}
	for _, r := range runs {
		s.bad += r.Res.Non2xx + r.Res.SockErrors + r.Up.Wrong + r.Up.Missing
	}
	s.rps, s.p99, s.cpu = newRatios(rr), newRatios(pr), newRatios(cr)
	if len(rr) > 0 {
		p("\nA/B throughput: median **%.3f** (rounds %.3f..%.3f). A/B p99: median **%.3f** (rounds %.3f..%.3f). "+
			"A/B Caddy CPU per request: median **%.3f** (rounds %.3f..%.3f).\n", s.rps.med, s.rps.lo, s.rps.hi,
			s.p99.med, s.p99.lo, s.p99.hi, s.cpu.med, s.cpu.lo, s.cpu.hi)
	}
	return s
}

// postCPUTarget is the most config A may cost over B in Caddy CPU per POST.
const postCPUTarget = 1.02
