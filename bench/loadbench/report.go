package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
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

func (b *bench) reportEconomy(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	e := b.econ
	lo, mean, hi := refreshInterval(e.Lifetime)
	p("## 2. Token economy under load\n\n")
	p("Config A at a fixed %d req/s (open loop: each request is due at a fixed time and its latency is counted from "+
		"then) for %s, simulator tokens living %s (%.0f lifetimes).\n\n", e.Rate, e.Dur, e.Lifetime, e.Dur.Seconds()/e.Lifetime.Seconds())
	if len(e.TokenTimes) == 0 {
		p("No token request was recorded.\n\n")
		return []verdict{{"token requests recorded", "0", false}}
	}
	run := e.LoadEnd.Sub(e.FirstToken)
	var ivs []float64
	for i := 1; i < len(e.TokenTimes); i++ {
		ivs = append(ivs, e.TokenTimes[i].Sub(e.TokenTimes[i-1]).Seconds())
	}
	n := len(e.TokenTimes)
	briefCount := int(math.Ceil(run.Seconds()/mean.Seconds())) + 1
	fewest := int(math.Floor(run.Seconds()/hi.Seconds())) + 1
	most := int(math.Floor(run.Seconds()/lo.Seconds())) + 1
	p("Refresh interval by design: the refresh starts when a quarter of the lifetime (%s) remains, minus a random "+
		"extra of up to half that margin, so one refresh every %s..%s (mean %s).\n\n", fmtDur(tokencache.RefreshMargin(e.Lifetime, refreshBefore)), fmtDur(lo), fmtDur(hi), fmtDur(mean))
	p("| | |\n|---|---|\n")
	p("| token requests (first token to end of load) | **%d** |\n", n)
	p("| by grant/outcome | %s |\n", fmtCounters(e.Counters))
	p("| span D = end of load - first token request | %.2f s |\n", run.Seconds())
	if len(ivs) > 0 {
		ilo, ihi := minMax(ivs)
		p("| intervals between token requests | min %.3f s, median %.3f s, max %.3f s |\n", ilo, median(ivs), ihi)
	}
	p("| one per refresh interval: ceil(D / mean interval %.4f s) + 1 initial (rounds a partial last interval up) | %d |\n", mean.Seconds(), briefCount)
	p("| what the schedule allows: 1 + floor(D / %.3f s) .. 1 + floor(D / %.3f s) | %d..%d |\n\n", hi.Seconds(), lo.Seconds(), fewest, most)
	tokenOK := true
	shortest := math.Inf(1)
	for _, iv := range ivs {
		shortest = math.Min(shortest, iv)
	}
	// 50 ms of slack for the token request's own round trip.
	if len(ivs) > 0 && shortest < lo.Seconds()-0.05 {
		tokenOK = false
	}
	if n > most || n < fewest {
		tokenOK = false
	}
	failedGrants := 0
	for _, s := range e.TokenStatus {
		if s != 200 {
			failedGrants++
		}
	}

	p("Latency around token requests (requests due within ±%s of a token request's arrival at the simulator, "+
		"against all other requests):\n\n", e.Window)
	p("| requests | count | p50 | p99 |\n|---|---:|---:|---:|\n")
	p("| near a token request | %d | %s | %s |\n", e.NearN, fmtDur(e.NearP50), fmtDur(e.NearP99))
	p("| all others | %d | %s | %s |\n", e.FarN, fmtDur(e.FarP50), fmtDur(e.FarP99))
	p("| all | %d | %s | %s (max %s) |\n\n", e.Samples, fmtDur(e.AllP50), fmtDur(e.AllP99), fmtDur(e.AllMax))
	ratio := math.NaN()
	if e.FarP99 > 0 {
		ratio = float64(e.NearP99) / float64(e.FarP99)
	}
	non2xx := 0
	var st []string
	for code, c := range e.Statuses {
		if code < 200 || code > 299 {
			non2xx += c
		}
		name := fmt.Sprint(code)
		if code == 0 {
			name = "transport error"
		}
		st = append(st, fmt.Sprintf("%s: %d", name, c))
	}
	sort.Strings(st)
	p("Statuses: %s. Upstream: %d with the newest token, %d with the previous one, %d wrong or missing. "+
		"Other processes used %.0f%% of the machine's CPU during the run.\n\n",
		strings.Join(st, ", "), e.Up.OK, e.Up.Prev, e.Up.Wrong+e.Up.Missing, e.OtherCPU)
	return []verdict{
		{fmt.Sprintf("token requests: one per refresh interval (count within %d..%d, no interval under %.3f s, none failed)", fewest, most, lo.Seconds()),
			fmt.Sprintf("%d (ceil(D / mean interval) + 1 = %d), shortest interval %.3f s, %d failed", n, briefCount, shortest, failedGrants), tokenOK && failedGrants == 0},
		{"p99 near token requests <= 1.1x p99 of the others", fmt.Sprintf("%.2fx (%s vs %s)", ratio, fmtDur(e.NearP99), fmtDur(e.FarP99)), ratio <= 1.1},
		{"token-economy run: 0 non-2xx", fmt.Sprintf("%d (wrong token at upstream: %d)", non2xx, e.Up.Wrong+e.Up.Missing), non2xx == 0 && e.Up.Wrong+e.Up.Missing == 0},
	}
}

func fmtCounters(c map[string]int) string {
	var parts []string
	for k, v := range c {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (b *bench) reportCold(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	c := b.cold
	p("## 3. Cold start\n\n")
	p("A fresh simulator whose token endpoint waits %s before answering; Caddy (config A) is started and %d GETs, "+
		"each on its own connection, are released the moment its port accepts a connection. The same burst against a "+
		"fresh config B (no token to wait for) is the baseline: what %d simultaneous new connections cost on this "+
		"machine anyway.\n\n", c.Delay, c.Conns, c.Conns)
	cols := []*coldStartResult{c}
	if b.coldB != nil {
		cols = append(cols, b.coldB)
	}
	p("| | A | B (baseline) |\n|---|---|---|\n")
	row := func(name string, f func(*coldStartResult) string) {
		p("| %s |", name)
		for _, x := range cols {
			p(" %s |", f(x))
		}
		if len(cols) == 1 {
			p(" |")
		}
		p("\n")
	}
	row("port accepting, after exec", func(x *coldStartResult) string { return fmtDur(x.PortAfter) })
	row("token requests", func(x *coldStartResult) string {
		if x.Config != "A" {
			return "-"
		}
		return fmt.Sprintf("**%d** (%s)", x.TokensTotal, fmtCounters(x.Counters))
	})
	row("token request arrival, after the port opened", func(x *coldStartResult) string {
		var at []string
		for _, d := range x.TokenAt {
			at = append(at, fmtDur(d))
		}
		if len(at) == 0 {
			return "-"
		}
		return strings.Join(at, ", ")
	})
	row("statuses", func(x *coldStartResult) string {
		var st []string
		for code, n := range x.Statuses {
			st = append(st, fmt.Sprintf("%d: %d", code, n))
		}
		sort.Strings(st)
		return strings.Join(st, ", ")
	})
	row("transport errors", func(x *coldStartResult) string {
		if x.Errors == 0 {
			return "0"
		}
		return fmt.Sprintf("%d (%s)", x.Errors, strings.ReplaceAll(x.FirstErr, "|", "/"))
	})
	row("time to first byte from each request's start: min / median / p99 / max", func(x *coldStartResult) string {
		if len(x.TTFB) == 0 {
			return "-"
		}
		return fmt.Sprintf("%s / %s / %s / %s", fmtDur(x.TTFB[0]), fmtDur(percentile(x.TTFB, 50)),
			fmtDur(percentile(x.TTFB, 99)), fmtDur(x.TTFB[len(x.TTFB)-1]))
	})
	row("first byte after the port opened: min / median / max", func(x *coldStartResult) string {
		if len(x.SinceOpen) == 0 {
			return "-"
		}
		return fmt.Sprintf("%s / %s / %s", fmtDur(x.SinceOpen[0]), fmtDur(percentile(x.SinceOpen, 50)), fmtDur(x.SinceOpen[len(x.SinceOpen)-1]))
	})
	p("\n")
	if b.coldB != nil && len(c.TTFB) > 0 && len(b.coldB.TTFB) > 0 {
		p("Median time to first byte: A %s later than B; the token endpoint alone takes %s to answer.\n\n",
			fmtDur(percentile(c.TTFB, 50)-percentile(b.coldB.TTFB, 50)), c.Delay)
	}
	out := []verdict{{"cold start: exactly 1 token request", fmt.Sprint(c.TokensTotal), c.TokensTotal == 1}}
	for _, x := range cols {
		ok := x.Statuses[200]
		out = append(out, verdict{fmt.Sprintf("cold start %s: all %d requests 200", x.Config, x.Conns), fmt.Sprintf("%d of %d", ok, x.Conns), ok == x.Conns})
	}
	return out
}

func (b *bench) reportMemory(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := b.mem
	p("## 4. Memory under full load\n\n")
	p("VmRSS of the Caddy process from `/proc/<pid>/status` every %s during %s of full load (`wrk -t%d -c%d`) per "+
		"config. A runs against %s tokens, so it refreshes about every %s during the run.\n\n",
		b.o.memEvery, m.Dur, b.o.threads, b.o.conns, b.o.lifetime, fmtDur(func() time.Duration { _, mean, _ := refreshInterval(b.o.lifetime); return mean }()))
	p("| config | idle before load | end | max | second half min..max | req/s over the run | p99 | Caddy CPU per request | token requests | non-2xx / wrong token | other processes' CPU |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ends := map[string]int64{}
	flat := map[string]bool{}
	for _, r := range m.Runs {
		if len(r.Samples) == 0 || r.Res == nil {
			continue
		}
		var mx int64
		for _, s := range r.Samples {
			mx = max(mx, s.KiB)
		}
		half := r.Samples[len(r.Samples)/2:]
		hlo, hhi := int64(math.MaxInt64), int64(0)
		for _, s := range half {
			hlo, hhi = min(hlo, s.KiB), max(hhi, s.KiB)
		}
		end := r.Samples[len(r.Samples)-1].KiB
		ends[r.Config] = end
		flat[r.Config] = hhi-hlo < 5*1024
		tok := "-"
		if r.Config == "A" {
			tok = fmt.Sprint(r.Tokens)
		}
		p("| %s | %s | %s | %s | %s..%s | %.0f | %s | %s | %s | %d / %d | %.0f%% |\n", r.Config, mib(r.Samples[0].KiB), mib(end), mib(mx),
			mib(hlo), mib(hhi), r.Res.RPS, fmtDur(r.Res.P99), fmtMicros(r.CPUPerReq), tok, r.Res.Non2xx+r.Res.SockErrors, r.Up.Wrong+r.Up.Missing, r.OtherCPU)
	}
	// Samples side by side, every 10 s.
	if len(m.Runs) == 2 {
		a, bb := m.Runs[0], m.Runs[1]
		p("\n| time | A | B |\n|---:|---:|---:|\n")
		every := int(math.Max(1, math.Round(float64(10*time.Second)/float64(b.o.memEvery))))
		for i := 0; i < len(a.Samples) || i < len(bb.Samples); i++ {
			last := i == len(a.Samples)-1 || i == len(bb.Samples)-1
			if i%every != 0 && !last {
				continue
			}
			av, bv, t := "", "", ""
			if i < len(a.Samples) {
				av, t = mib(a.Samples[i].KiB), fmt.Sprintf("%.1f s", a.Samples[i].At.Seconds())
			}
			if i < len(bb.Samples) {
				bv = mib(bb.Samples[i].KiB)
				if t == "" {
					t = fmt.Sprintf("%.1f s", bb.Samples[i].At.Seconds())
				}
			}
			if last {
				t = "end, " + t
			}
			p("| %s | %s | %s |\n", t, av, bv)
		}
	}
	p("\n")
	ea, okA := ends["A"]
	eb, okB := ends["B"]
	if !okA || !okB {
		return nil
	}
	diff := ea - eb
	p("A - B at the end: %+.1f MiB.\n\n", float64(diff)/1024)
	return []verdict{
		{"RSS A - B at the end within 10 MB", fmt.Sprintf("%+.1f MiB", float64(diff)/1024), math.Abs(float64(diff)) <= 10*1000*1000/1024},
		{"RSS flat (second half of the run varies < 5 MiB)", fmt.Sprintf("A %v, B %v", flat["A"], flat["B"]), flat["A"] && flat["B"]},
	}
}

// postCPUTarget is the most config A may cost over B in Caddy CPU per POST.
const postCPUTarget = 1.02

func (b *bench) reportPost(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	o, pr := b.o, b.post
	size := fmt.Sprintf("%d-byte", pr.Size)
	if pr.Size%1024 == 0 {
		size = fmt.Sprintf("%d KiB", pr.Size/1024)
	}
	p("## 5. %s JSON POST bodies (wrk)\n\n", size)
	p("As section 1 without C: %d rounds, a fresh Caddy process for A and for B each round, warmed up for %s, then %d "+
		"interleaved wrk runs of %s each. Every request, warm-up included, is a POST of the same %d-byte JSON document "+
		"(`Content-Type: application/json`) to `%s`, set by a wrk Lua script (`-s`). Config A's groupid_auth keeps a "+
		"body up to `max_replay_body` (1 MiB by default) in memory so that it can replay the request after a 401; B "+
		"forwards it as it comes.\n\n", o.rounds, o.warmup, o.slices, o.duration/time.Duration(o.slices), pr.Size, pr.Path)
	s := b.reportRounds(w, pr.Runs)
	// Every body read to the end must be whole, or the row measures less
	// work. Requests in flight when a wrk run stops lose their body on the
	// way; they are counted apart.
	var reqs, cut, bytes int64
	for _, r := range pr.Runs {
		reqs += r.Up.requests()
		cut += r.Up.Cut
		bytes += r.Up.BodyBytes
	}
	whole := reqs > cut && bytes == (reqs-cut)*int64(pr.Size)
	perReq := 0.0
	if reqs > cut {
		perReq = float64(bytes) / float64(reqs-cut)
	}
	p("The upstream read %.0f body bytes per request on average over the %d requests whose body it read to the end; "+
		"%d more broke off when a wrk run stopped.\n\n", perReq, reqs-cut, cut)
	var out []verdict
	if len(s.cpu.all) > 0 {
		out = append(out, verdict{fmt.Sprintf("POST %s JSON: Caddy CPU per request A/B <= %.2f (median of rounds)", size, postCPUTarget),
			s.cpu.String(), s.cpu.med <= postCPUTarget})
	}
	out = append(out, verdict{"POST runs: no non-2xx, socket errors or wrong tokens; every body the upstream read to the end was whole",
		fmt.Sprintf("%d; %.0f bytes per request", s.bad, perReq), s.bad == 0 && whole})
	return out
}
