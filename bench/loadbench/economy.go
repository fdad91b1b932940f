// Phase 2: the token economy of config A under a fixed request rate with
// short-lived tokens.

package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

type economyResult struct {
	Rate        int
	Dur         time.Duration
	Lifetime    time.Duration
	Window      time.Duration
	Samples     int
	Statuses    map[int]int
	TokenTimes  []time.Time // arrival of every token request at the simulator
	TokenStatus []int
	Counters    map[string]int
	FirstToken  time.Time
	LoadStart   time.Time
	LoadEnd     time.Time
	NearN       int
	FarN        int
	NearP50     time.Duration
	NearP99     time.Duration
	FarP50      time.Duration
	FarP99      time.Duration
	AllP50      time.Duration
	AllP99      time.Duration
	AllMax      time.Duration
	Up          upstreamCounts
	OtherCPU    float64
}

func (b *bench) runEconomy() error {
	o := b.o
	if o.econDur <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{TokenLifetime: o.lifetime})
	if err != nil {
		return err
	}
	logf("token economy: %d req/s for %s through A, token lifetime %s", o.econRate, o.econDur, o.lifetime)
	p, url, err := b.startConfig("economy-A", run, caFile, true)
	if err != nil {
		return err
	}
	defer p.stop()
	b.up.counts()
	e := &economyResult{Rate: o.econRate, Dur: o.econDur, Lifetime: o.lifetime, Window: o.window, Statuses: map[int]int{}}
	b.econ = e
	e.LoadStart = time.Now()
	cpu := startCPU(p)
	samples := openLoop(b.ctx, url, o.econRate, o.econDur, o.econWorkers)
	e.OtherCPU = cpu.other()
	e.LoadEnd = time.Now()
	e.Up = b.up.counts()
	if p.exited() {
		return fmt.Errorf("caddy exited during the run; log:\n%s", p.tail(20))
	}
	tokenPath := sim.Config().SecurityPrefix + "/connect/token"
	for _, r := range sim.Requests() {
		if r.Path == tokenPath {
			e.TokenTimes = append(e.TokenTimes, r.At)
			e.TokenStatus = append(e.TokenStatus, r.Status)
		}
	}
	e.Counters = sim.Counters().TokenRequests
	if len(e.TokenTimes) > 0 {
		e.FirstToken = e.TokenTimes[0]
	}
	e.Samples = len(samples)
	var near, far, all []time.Duration
	for _, s := range samples {
		e.Statuses[s.Status]++
		all = append(all, s.Latency)
		if nearAny(s.Start, e.TokenTimes, o.window) {
			near = append(near, s.Latency)
		} else {
			far = append(far, s.Latency)
		}
	}
	e.NearN, e.FarN = len(near), len(far)
	e.NearP50, e.NearP99 = percentile(near, 50), percentile(near, 99)
	e.FarP50, e.FarP99 = percentile(far, 50), percentile(far, 99)
	e.AllP50, e.AllP99, e.AllMax = percentile(all, 50), percentile(all, 99), percentile(all, 100)
	b.commands = append(b.commands, fmt.Sprintf("open-loop Go client: GET %s at %d req/s for %s, %d workers (token lifetime %s)",
		"http://127.0.0.1:<port>"+apiPath, o.econRate, o.econDur, o.econWorkers, o.lifetime))
	logf("token economy: %d token requests, p99 near %s vs far %s", len(e.TokenTimes), fmtDur(e.NearP99), fmtDur(e.FarP99))
	return nil
}

// refreshBefore is the refresh_before config A runs with: none set, so
// tokencache's default margin applies.
const refreshBefore time.Duration = 0

// refreshInterval is the time between two scheduled refreshes of tokens of
// lifetime l, as tokencache schedules them for config A: the shortest and
// longest come from tokencache.RefreshInterval, and the mean is their
// midpoint because the jitter is drawn uniformly.
func refreshInterval(l time.Duration) (lo, mean, hi time.Duration) {
	lo, hi = tokencache.RefreshInterval(l, refreshBefore)
	return lo, lo + (hi-lo)/2, hi
}

// nearAny reports whether t lies within w of any of the sorted times.
func nearAny(t time.Time, sorted []time.Time, w time.Duration) bool {
	i := sort.Search(len(sorted), func(i int) bool { return !sorted[i].Before(t.Add(-w)) })
	return i < len(sorted) && !sorted[i].After(t.Add(w))
}
