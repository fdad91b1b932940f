// Phase 3: cold start of config A against a slow token endpoint, with the
// same burst against a fresh config B as the baseline.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// coldResult is one request of the cold-start burst.
type coldResult struct {
	Status int   // 0 on a transport error
	Err    error // transport error, if any
	// TTFB is from the moment this request was handed to the client to
	// its first response byte.
	TTFB time.Duration
	// SinceOpen is from the moment the port first accepted a connection to
	// the first response byte.
	SinceOpen time.Duration
}

// waitPort dials addr every millisecond until it accepts, and returns the
// moment it did.
func waitPort(ctx context.Context, addr string, timeout time.Duration, alive func() bool) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !alive() {
			return time.Time{}, err
		}
		time.Sleep(time.Millisecond)
	}
}

// burstRun is n parked requests that go out together when fired.
type burstRun struct {
	release chan struct{}
	opened  time.Time
	out     []coldResult
	wg      sync.WaitGroup
	tr      *http.Transport
}

// prepareBurst parks n goroutines, each holding a GET of url that will use
// its own connection, and returns once all are parked.
func prepareBurst(ctx context.Context, url string, n int) *burstRun {
	b := &burstRun{release: make(chan struct{}), out: make([]coldResult, n)}
	b.tr = &http.Transport{Proxy: nil, MaxIdleConns: n, MaxIdleConnsPerHost: n, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	client := &http.Client{Transport: b.tr, Timeout: 30 * time.Second}
	var ready sync.WaitGroup
	ready.Add(n)
	b.wg.Add(n)
	for i := 0; i < n; i++ {
		go func(r *coldResult) {
			defer b.wg.Done()
			var first time.Time
			trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
			ready.Done()
			<-b.release
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				r.Err = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r.Status = resp.StatusCode
			if first.IsZero() {
				first = time.Now()
			}
			r.TTFB = first.Sub(start)
			r.SinceOpen = first.Sub(b.opened)
		}(&b.out[i])
	}
	ready.Wait()
	return b
}

// fire releases every parked request and waits for all answers. opened is
// when the port first accepted a connection.
func (b *burstRun) fire(opened time.Time) []coldResult {
	b.opened = opened
	close(b.release)
	b.wg.Wait()
	b.tr.CloseIdleConnections()
	return b.out
}

type coldStartResult struct {
	Config      string
	Conns       int
	Delay       time.Duration
	PortAfter   time.Duration // from exec to the port accepting
	TokenAt     []time.Duration
	Counters    map[string]int
	TokensTotal int
	Statuses    map[int]int
	Errors      int
	FirstErr    string
	TTFB        []time.Duration
	SinceOpen   []time.Duration
}

// runCold bursts config A against a fresh, slow simulator, then config B
// (no token at all) as the baseline for what the burst itself costs.
func (b *bench) runCold() error {
	o := b.o
	if o.coldConns <= 0 {
		return nil
	}
	sim, run, caFile, err := b.newSim(groupidsim.Config{})
	if err != nil {
		return err
	}
	sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: o.coldDelay})
	logf("cold start: %d concurrent requests, token endpoint delayed %s", o.coldConns, o.coldDelay)
	a, err := b.coldOnce("A", sim, run, caFile)
	if err != nil {
		return err
	}
	b.cold = a
	logf("cold start A: %d token requests, statuses %v, errors %d", a.TokensTotal, a.Statuses, a.Errors)
	base, err := b.coldOnce("B", nil, nil, "")
	if err != nil {
		return err
	}
	b.coldB = base
	logf("cold start B (baseline): statuses %v, errors %d", base.Statuses, base.Errors)
	b.commands = append(b.commands, fmt.Sprintf("cold start: fresh simulator with FaultSlow %s; a Go client fires %d concurrent GETs on %d connections once the port accepts (A, then B as the baseline)",
		o.coldDelay, o.coldConns, o.coldConns))
	return nil
}

func (b *bench) coldOnce(name string, sim *groupidsim.Server, run *groupidsim.Running, caFile string) (*coldStartResult, error) {
	o := b.o
	port, admin := live.FreePort(), live.FreePort()
	var cfg string
	if sim != nil {
		cfg = configA(admin, port, run.TokenURL(), caFile, b.up.addrA, b.o.aExtra)
		b.up.useSim(sim)
	} else {
		cfg = configB(admin, port, b.up.addrB)
	}
	b.up.counts()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, apiPath)
	br := prepareBurst(b.ctx, url, o.coldConns)
	started := time.Now()
	p, err := b.startCaddy(b.dir, "cold-"+name, cfg, port, admin)
	if err != nil {
		br.fire(time.Now())
		return nil, err
	}
	defer p.Stop()
	opened, err := waitPort(b.ctx, fmt.Sprintf("127.0.0.1:%d", port), 20*time.Second, func() bool { return !p.Exited() })
	if err != nil {
		br.fire(time.Now())
		return nil, fmt.Errorf("port never opened: %v; log:\n%s", err, p.Tail(20))
	}
	res := br.fire(opened)
	c := &coldStartResult{Config: name, Conns: o.coldConns, Delay: o.coldDelay, PortAfter: opened.Sub(started), Statuses: map[int]int{}}
	if sim != nil {
		time.Sleep(500 * time.Millisecond) // let any straggling token request land
		counters := sim.Counters()
		c.Counters, c.TokensTotal = counters.TokenRequests, counters.TokensTotal()
		tokenPath := sim.Config().SecurityPrefix + "/connect/token"
		for _, r := range sim.Requests() {
			if r.Path == tokenPath {
				c.TokenAt = append(c.TokenAt, r.At.Sub(opened))
			}
		}
	}
	for _, r := range res {
		if r.Err != nil {
			c.Errors++
			if c.FirstErr == "" {
				c.FirstErr = r.Err.Error()
			}
			continue
		}
		c.Statuses[r.Status]++
		c.TTFB = append(c.TTFB, r.TTFB)
		c.SinceOpen = append(c.SinceOpen, r.SinceOpen)
	}
	sort.Slice(c.TTFB, func(i, j int) bool { return c.TTFB[i] < c.TTFB[j] })
	sort.Slice(c.SinceOpen, func(i, j int) bool { return c.SinceOpen[i] < c.SinceOpen[j] })
	return c, nil
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
