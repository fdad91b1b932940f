// Phase 4: resident memory (VmRSS) of A and B under a long full-load run.

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
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
		p.stop()
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

func (b *bench) memRun(p *caddyProc, url string) (*memRun, error) {
	o := b.o
	pid := p.cmd.Process.Pid
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
			if p.exited() {
				return nil, fmt.Errorf("caddy exited during the run; log:\n%s", p.tail(20))
			}
			mr.Res = r.res
			mr.Up = b.up.counts()
			mr.OtherCPU = cpu.other()
			mr.CPUPerReq = cpuPerRequest(cpu.caddyTicks(), r.res.Requests)
			return mr, nil
		}
	}
}
