package groupidauth

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// counters count what happens to one credential. Each is named as in the
// admin status JSON and (with _total) in the metrics. Request counters are
// atomics, for the request path; the rest changes only on token requests,
// under mu.
type counters struct {
	requestsInjected           stripedCounter // forwarded with the token
	requestsRefusedUnavailable atomic.Uint64  // refused with 503: no token, GroupID failing
	requestsRefusedRejected    atomic.Uint64  // refused with 502: credentials rejected
	replays                    atomic.Uint64  // replayed once after an upstream 401
	unauthorizedPassed         atomic.Uint64  // upstream 401s passed to the client unreplayed

	mu            sync.Mutex
	tokenRequests map[tokenOutcome]uint64       // guarded by mu
	durations     map[string]*durationHistogram // by grant type; guarded by mu
	lastRefresh   time.Time                     // guarded by mu
	lastGrant     string                        // guarded by mu
}

// tokenOutcome labels a token request: the grant sent and its outcome ("ok",
// an OAuth error code from a fixed set, "other_error", "rejected" or
// "transient").
type tokenOutcome struct{ grantType, outcome string }

func (c *counters) init() {
	c.tokenRequests = map[tokenOutcome]uint64{}
	c.durations = map[string]*durationHistogram{}
}

// knownOAuthCodes bounds the outcome label: any other code is "other_error".
var knownOAuthCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

// outcomeOf names an event's outcome with a bounded set of values.
func outcomeOf(ev tokencache.Event) string {
	switch {
	case ev.Err == nil:
		return "ok"
	case knownOAuthCodes[ev.Err.Code]:
		return ev.Err.Code
	case ev.Err.Code != "":
		return "other_error"
	case ev.Err.Class == tokencache.ClassRejected:
		return "rejected"
	}
	return "transient"
}

// recordTokenRequest counts a token request and its duration.
func (c *counters) recordTokenRequest(ev tokencache.Event, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokenRequests[tokenOutcome{ev.GrantType, outcomeOf(ev)}]++
	h := c.durations[ev.GrantType]
	if h == nil {
		h = new(durationHistogram)
		c.durations[ev.GrantType] = h
	}
	h.observe(ev.Duration)
	if ev.Kind == tokencache.EventToken {
		c.lastRefresh, c.lastGrant = now, ev.GrantType
	}
}

// counterValues is a copy of the counters at one instant.
type counterValues struct {
	requestsInjected           uint64
	requestsRefusedUnavailable uint64
	requestsRefusedRejected    uint64
	replays                    uint64
	unauthorizedPassed         uint64
	tokenRequests              map[tokenOutcome]uint64
	durations                  map[string]durationHistogram
	lastRefresh                time.Time
	lastGrant                  string
}

func (c *counters) values() counterValues {
	v := counterValues{
		requestsInjected:           c.requestsInjected.Load(),
		requestsRefusedUnavailable: c.requestsRefusedUnavailable.Load(),
		requestsRefusedRejected:    c.requestsRefusedRejected.Load(),
		replays:                    c.replays.Load(),
		unauthorizedPassed:         c.unauthorizedPassed.Load(),
		tokenRequests:              map[tokenOutcome]uint64{},
		durations:                  map[string]durationHistogram{},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.tokenRequests {
		v.tokenRequests[k] = n
	}
	for k, h := range c.durations {
		v.durations[k] = *h
	}
	v.lastRefresh, v.lastGrant = c.lastRefresh, c.lastGrant
	return v
}

// durationBuckets are the upper bounds, in seconds, of the token request
// duration histogram.
var durationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// durationHistogram counts token request durations (a value type, copied
// into snapshots; exported as a Prometheus histogram at scrape time).
type durationHistogram struct {
	count   uint64
	sum     float64 // seconds
	buckets [len(durationBuckets)]uint64
}

func (h *durationHistogram) observe(d time.Duration) {
	s := d.Seconds()
	h.count++
	h.sum += s
	for i, le := range durationBuckets {
		if s <= le {
			h.buckets[i]++
		}
	}
}

// stripedCounter is a counter for the request path: each increment goes to
// one of several cache-line-padded stripes picked at random, so cores do
// not fight over one cache line (a single atomic counter made the parallel
// handler benchmark slower on two cores than on one).
type stripedCounter struct {
	stripes [16]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

// Add adds one.
func (c *stripedCounter) Add() { c.stripes[rand.Uint32()&15].n.Add(1) }

// Load returns the sum of the stripes.
func (c *stripedCounter) Load() uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}
