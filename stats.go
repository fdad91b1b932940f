package groupidauth

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// sourceStats counts what happens to one credential, for the admin status
// and metrics. Request counters are atomics (they are on the request path);
// the rest changes only on token requests.
type sourceStats struct {
	injected    stripedCounter // requests forwarded with the token (hot path)
	unavailable atomic.Uint64  // refused with 503: no token, GroupID failing
	rejected    atomic.Uint64  // refused with 502: credentials rejected
	replays     atomic.Uint64  // requests replayed after an upstream 401
	passed401   atomic.Uint64  // upstream 401s passed to the client (no replay)

	mu            sync.Mutex
	tokenRequests map[outcomeKey]uint64
	lastRefresh   time.Time
	lastGrant     string
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

// outcomeKey labels a token request: the grant sent and its outcome ("ok",
// an OAuth error code from a fixed set, or a failure class).
type outcomeKey struct{ grant, outcome string }

func (st *sourceStats) init() { st.tokenRequests = map[outcomeKey]uint64{} }

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

// record counts a token request and observes its duration.
func (st *sourceStats) record(name string, ev tokencache.Event, now time.Time) {
	outcome := outcomeOf(ev)
	st.mu.Lock()
	st.tokenRequests[outcomeKey{ev.GrantType, outcome}]++
	if ev.Kind == tokencache.EventToken {
		st.lastRefresh = now
		st.lastGrant = ev.GrantType
	}
	st.mu.Unlock()
	observeDuration(name, ev.GrantType, ev.Duration)
}
