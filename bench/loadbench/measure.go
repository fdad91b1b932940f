package main

import (
	"fmt"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// measurement is one measured wrk run.
type measurement struct {
	res   *wrkResult
	up    upstreamCounts
	rss   int64
	other float64
	// cpuPerReq is the Caddy process's CPU time (user + system) during the
	// run divided by the requests wrk completed; zero for config C.
	cpuPerReq time.Duration
	ticks     int64 // Caddy's CPU time in clock ticks
}

// measure runs one wrk run of length d against url; extra goes to wrk
// before the URL.
func (b *bench) measure(p *live.Caddy, url, header string, d time.Duration, extra ...string) (*measurement, error) {
	o := b.o
	b.up.counts()
	cpu := startCPU(p)
	res, err := runWrk(b.ctx, wrkArgs(o.threads, o.conns, d, url, header, extra...), d)
	if err != nil {
		return nil, err
	}
	m := &measurement{res: res, other: cpu.other(), up: b.up.counts()}
	if p != nil {
		m.ticks = cpu.caddyTicks()
		m.cpuPerReq = cpuPerRequest(m.ticks, res.Requests)
		m.rss, _ = rssKB(p.Pid())
		if p.Exited() {
			return nil, fmt.Errorf("caddy exited during the run; log:\n%s", p.Tail(20))
		}
	}
	return m, nil
}

// aggregate combines the slices of one config in one round: requests and
// errors are summed, the rate is total requests over total time, CPU per
// request is total Caddy CPU over total requests, and p50/p90/p99 are the
// medians of the slices' values.
func aggregate(ms []*measurement) *measurement {
	out := &measurement{res: &wrkResult{}}
	var secs, other float64
	var ticks int64
	var p50, p90, p99 []float64
	for _, m := range ms {
		r := m.res
		out.res.Requests += r.Requests
		out.res.Non2xx += r.Non2xx
		out.res.SockErrors += r.SockErrors
		if r.RPS > 0 {
			secs += float64(r.Requests) / r.RPS
		}
		p50 = append(p50, float64(r.P50))
		p90 = append(p90, float64(r.P90))
		p99 = append(p99, float64(r.P99))
		out.up.OK += m.up.OK
		out.up.Prev += m.up.Prev
		out.up.Missing += m.up.Missing
		out.up.Wrong += m.up.Wrong
		out.up.BodyBytes += m.up.BodyBytes
		out.up.Cut += m.up.Cut
		ticks += m.ticks
		other += m.other
	}
	if secs > 0 {
		out.res.RPS = float64(out.res.Requests) / secs
	}
	out.cpuPerReq = cpuPerRequest(ticks, out.res.Requests)
	if len(ms) > 0 {
		out.other = other / float64(len(ms))
		out.res.P50, out.res.P90, out.res.P99 = time.Duration(median(p50)), time.Duration(median(p90)), time.Duration(median(p99))
	}
	out.ticks = ticks
	return out
}
