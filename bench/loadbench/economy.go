// Phase 2: the token economy of config A under a fixed request rate with
// short-lived tokens.

package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
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
	// Timeline is /groupid/status over the run and its outage tail.
	Timeline *timeline
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
	p, url, err := b.startConfig("economy-A", run, caFile, false)
	if err != nil {
		return err
	}
	defer p.Stop()
	pl := startPoller(b.ctx, p)
	defer pl.stop()
	if err := waitServing(p, url); err != nil {
		return err
	}
	b.up.counts()
	e := &economyResult{Rate: o.econRate, Dur: o.econDur, Lifetime: o.lifetime, Window: o.window, Statuses: map[int]int{}}
	b.econ = e
	e.LoadStart = time.Now()
	cpu := startCPU(p)
	samples := openLoop(b.ctx, url, o.econRate, o.econDur, o.econWorkers)
	e.OtherCPU = cpu.other()
	e.LoadEnd = time.Now()
	e.Up = b.up.counts()
	if p.Exited() {
		return fmt.Errorf("caddy exited during the run; log:\n%s", p.Tail(20))
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
	if o.outage > 0 {
		b.outageTail(sim, pl, url)
	}
	e.Timeline = pl.stop()
	e.Timeline.LoadFrom, e.Timeline.LoadTo = e.Timeline.since(e.LoadStart), e.Timeline.since(e.LoadEnd)
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
