// The token timeline: config A's /groupid/status polled through Caddy's
// admin API during the token-economy phase (and its outage tail), for the
// token-timeline plot.

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// pollEvery is how often the timeline polls /groupid/status.
const pollEvery = 250 * time.Millisecond

// statusPoint is one poll of /groupid/status: the fields the timeline
// plots, At counted from the timeline's start.
type statusPoint struct {
	At        time.Duration
	State     string
	ExpiresIn float64           // seconds the served token has left; 0 when none is served
	Requests  map[string]uint64 // token requests so far by "grant/outcome"
}

// timeline is what the token-timeline plot draws.
type timeline struct {
	Start  time.Time
	Points []statusPoint
	// Load is when the token-economy load ran; Outage when the token
	// endpoint was down (zero values: no outage).
	LoadFrom, LoadTo     time.Duration
	OutageFrom, OutageTo time.Duration
}

// tokenEvent is one token request, seen as an increment of a counter of
// /groupid/status between two polls and placed at the later poll.
type tokenEvent struct {
	At        time.Duration
	Key       string // "grant/outcome"
	OK        bool   // outcome "ok"
	ExpiresIn float64
}

// events derives the token requests from the counters' increments. The
// first poll counts from zero, so a token obtained before it shows there.
func (t *timeline) events() []tokenEvent {
	var out []tokenEvent
	prev := map[string]uint64{}
	for _, p := range t.Points {
		keys := make([]string, 0, len(p.Requests))
		for k := range p.Requests {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n := p.Requests[k]
			for i := prev[k]; i < n; i++ {
				out = append(out, tokenEvent{At: p.At, Key: k, OK: outcomeOK(k), ExpiresIn: p.ExpiresIn})
			}
			prev[k] = max(prev[k], n)
		}
	}
	return out
}

// outcomeOK reports whether a "grant/outcome" counter key counts successes.
func outcomeOK(key string) bool {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:] == "ok"
		}
	}
	return key == "ok"
}

// since is d's offset from the timeline's start.
func (t *timeline) since(at time.Time) time.Duration { return at.Sub(t.Start) }

// poller polls a Caddy's /groupid/status until stopped.
type poller struct {
	tl     *timeline
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// startPoller polls p's admin API every pollEvery from now on; polls that
// fail (Caddy not up yet) are skipped.
func startPoller(ctx context.Context, p *live.Caddy) *poller {
	ctx, cancel := context.WithCancel(ctx)
	pl := &poller{tl: &timeline{Start: time.Now()}, cancel: cancel, done: make(chan struct{})}
	client := &http.Client{Timeout: pollEvery, Transport: &http.Transport{Proxy: nil}}
	url := p.AdminURL("/groupid/status")
	go func() {
		defer close(pl.done)
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			if pt, ok := pollStatus(ctx, client, url); ok {
				pt.At = time.Since(pl.tl.Start)
				pl.mu.Lock()
				pl.tl.Points = append(pl.tl.Points, pt)
				pl.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return pl
}

// latest is the newest poll, if any.
func (pl *poller) latest() (statusPoint, bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if len(pl.tl.Points) == 0 {
		return statusPoint{}, false
	}
	return pl.tl.Points[len(pl.tl.Points)-1], true
}

// stop ends the polling and returns the timeline.
func (pl *poller) stop() *timeline {
	pl.cancel()
	<-pl.done
	return pl.tl
}

func pollStatus(ctx context.Context, client *http.Client, url string) (statusPoint, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return statusPoint{}, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return statusPoint{}, false
	}
	defer resp.Body.Close()
	var creds []struct {
		State         string            `json:"state"`
		ExpiresIn     float64           `json:"expires_in_seconds"`
		TokenRequests map[string]uint64 `json:"token_requests"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&creds) != nil || len(creds) == 0 {
		return statusPoint{}, false
	}
	c := creds[0]
	return statusPoint{State: c.State, ExpiresIn: c.ExpiresIn, Requests: c.TokenRequests}, true
}

// outageRate is the request rate through A during the outage tail: light,
// so the refused requests show without measuring anything.
const outageRate = 20

// outageTail runs after the token-economy load, for the timeline only (the
// phase's numbers are taken before it): once A holds a fresh token, the
// token endpoint goes down for -outage, long enough for the token to
// expire, then heals; the tail ends when A is valid again (or 20 s after
// the heal) under a light load.
func (b *bench) outageTail(sim *groupidsim.Server, pl *poller, url string) {
	o := b.o
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	loadDone := make(chan []sample, 1)
	go func() { loadDone <- openLoop(ctx, url, outageRate, time.Hour, 4) }()
	defer func() {
		cancel()
		<-loadDone
	}()
	// Wait for a fresh token (at most one lifetime and a bit).
	waitFor(ctx, o.lifetime+2*time.Second, func() bool {
		pt, ok := pl.latest()
		return ok && pt.State == "valid" && pt.ExpiresIn >= o.lifetime.Seconds()-1
	})
	logf("token timeline: token endpoint down for %s", o.outage)
	sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	pl.tl.OutageFrom = time.Since(pl.tl.Start)
	sleepCtx(ctx, o.outage)
	sim.SetFault(groupidsim.Fault{})
	pl.tl.OutageTo = time.Since(pl.tl.Start)
	healed := waitFor(ctx, 20*time.Second, func() bool {
		pt, ok := pl.latest()
		return ok && pt.At > pl.tl.OutageTo && pt.State == "valid"
	})
	sleepCtx(ctx, time.Second)
	logf("token timeline: endpoint back; valid again: %v", healed)
}

// waitFor polls cond every pollEvery until it holds (true) or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if cond() {
			return true
		}
		sleepCtx(ctx, pollEvery)
	}
	return cond()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
