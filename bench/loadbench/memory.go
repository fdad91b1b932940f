// Phase 4: resident memory (VmRSS) of A and B under a long full-load run.

package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

type rssSample struct {
	At  time.Duration
	KiB int64
}

type memRun struct {
	Config  string
	Samples []rssSample
	Res     *wrkResult
	Up      upstreamCounts
	Tokens  int
	// OtherCPU is the share of the machine used by other processes.
	OtherCPU float64
	// CPUPerReq is Caddy's CPU time per completed request.
	CPUPerReq time.Duration
}

type memoryResult struct {
	Dur  time.Duration
	Runs []memRun
}

func (b *bench) runMemory() error {
	o := b.o
	if o.memDur <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{TokenLifetime: o.lifetime})
	if err != nil {
		return err
	}
	m := &memoryResult{Dur: o.memDur}
	b.mem = m
	for _, c := range []string{"A", "B"} {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		logf("memory: config %s at full load for %s", c, o.memDur)
		var simRun *groupidsim.Running
		if c == "A" {
			simRun = run
		}
		before := sim.Counters().TokensTotal()
		p, url, err := b.startConfig("mem-"+c, simRun, caFile, true)
		if err != nil {
			return err
		}
		mr, err := b.memRun(p, url)
		p.Stop()
		if err != nil {
			return fmt.Errorf("config %s: %w", c, err)
		}
		mr.Config = c
		if c == "A" {
			mr.Tokens = sim.Counters().TokensTotal() - before
		}
		m.Runs = append(m.Runs, *mr)
		last := mr.Samples[len(mr.Samples)-1]
		logf("memory %s: end %.1f MiB, %.0f req/s", c, float64(last.KiB)/1024, mr.Res.RPS)
	}
	b.commands = append(b.commands, "wrk "+strings.Join(wrkArgs(o.threads, o.conns, o.memDur, "http://127.0.0.1:<port>"+apiPath, ""), " ")+
		fmt.Sprintf("   (memory runs; VmRSS from /proc/<caddy pid>/status every %s)", o.memEvery))
	return nil
}

func (b *bench) memRun(p *live.Caddy, url string) (*memRun, error) {
	o := b.o
	pid := p.Pid()
	mr := &memRun{}
	start := time.Now()
	sampleNow := func() {
		if kb, err := rssKB(pid); err == nil {
			mr.Samples = append(mr.Samples, rssSample{At: time.Since(start).Round(100 * time.Millisecond), KiB: kb})
		}
	}
	sampleNow()
	b.up.counts()
	cpu := startCPU(p)
	type out struct {
		res *wrkResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, o.memDur, url, ""), o.memDur)
		done <- out{res, err}
	}()
	tick := time.NewTicker(o.memEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			sampleNow()
		case r := <-done:
			sampleNow()
			if r.err != nil {
				return nil, r.err
			}
			if p.Exited() {
				return nil, fmt.Errorf("caddy exited during the run; log:\n%s", p.Tail(20))
			}
			mr.Res = r.res
			mr.Up = b.up.counts()
			mr.OtherCPU = cpu.other()
			mr.CPUPerReq = cpuPerRequest(cpu.caddyTicks(), r.res.Requests)
			return mr, nil
		}
	}
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
