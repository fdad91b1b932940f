package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// upstreamBody is the JSON document every upstream answer carries (about
// 200 bytes, the size of a small GroupID API answer).
var upstreamBody = []byte(`{"identityStoreId":2,"objectGuid":"3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f02",` +
	`"samAccountName":"alice","displayName":"Alice Example","mail":"alice@example.test",` +
	`"department":"Engineering","enabled":true}` + "\n")

// Authorization checks the upstream applies.
const (
	expectStatic = int32(iota) // the static bench token (configs B and C)
	expectSim                  // the simulator's newest token (config A)
)

// tokenPair is the simulator's newest token and the one before it, as
// complete header values.
type tokenPair struct{ cur, prev string }

// upstream is the fast in-process backend every configuration proxies to.
// It answers 200 with upstreamBody when the Authorization header is what
// the configuration must send, and 403 otherwise (never 401, which would
// make groupid_auth heal and fetch a token). The same handler listens on
// two ports: addrA expects the simulator's newest token (config A), addrB
// the static token (configs B and C). Separate ports keep the check right
// for requests still in flight when the benchmark switches configs.
type upstream struct {
	addrA, addrB string
	srvs         []*http.Server
	static       string

	simMu sync.Mutex
	sim   *groupidsim.Server
	pair  atomic.Pointer[tokenPair]

	ok      atomic.Int64 // right header (for A: the newest token)
	prev    atomic.Int64 // A only: the token issued just before the newest (in flight across a refresh; still valid)
	missing atomic.Int64 // no Authorization header, or more than one
	wrong   atomic.Int64 // anything else
	body    atomic.Int64 // request body bytes of the requests read to the end
	cut     atomic.Int64 // requests whose body broke off (the client went away)
}

func startUpstream(static string) (*upstream, error) {
	u := &upstream{static: "Bearer " + static}
	u.pair.Store(&tokenPair{})
	for _, mode := range []int32{expectSim, expectStatic} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			u.close()
			return nil, err
		}
		if mode == expectSim {
			u.addrA = ln.Addr().String()
		} else {
			u.addrB = ln.Addr().String()
		}
		srv := &http.Server{Handler: &upstreamPort{u: u, mode: mode}, ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout: 5 * time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
		u.srvs = append(u.srvs, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return u, nil
}

// useSim makes config A's port require the newest token sim issued.
func (u *upstream) useSim(sim *groupidsim.Server) {
	u.simMu.Lock()
	u.sim = sim
	u.pair.Store(&tokenPair{})
	u.simMu.Unlock()
}

type upstreamCounts struct {
	OK, Prev, Missing, Wrong int64
	// BodyBytes is the request body bytes of all requests whose body the
	// upstream read to the end; Cut counts those whose body broke off, as
	// happens to requests in flight when wrk stops.
	BodyBytes, Cut int64
}

// requests is how many requests reached the upstream.
func (c upstreamCounts) requests() int64 { return c.OK + c.Prev + c.Missing + c.Wrong }

// counts returns and zeroes the counters.
func (u *upstream) counts() upstreamCounts {
	return upstreamCounts{OK: u.ok.Swap(0), Prev: u.prev.Swap(0), Missing: u.missing.Swap(0), Wrong: u.wrong.Swap(0),
		BodyBytes: u.body.Swap(0), Cut: u.cut.Swap(0)}
}

// upstreamPort is the handler of one of the two ports.
type upstreamPort struct {
	u    *upstream
	mode int32
}

func (h *upstreamPort) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil {
		if n, err := io.Copy(io.Discard, r.Body); err != nil {
			h.u.cut.Add(1)
		} else if n > 0 {
			h.u.body.Add(n)
		}
	}
	if h.u.check(h.mode, r.Header["Authorization"]) {
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/json; charset=utf-8"}
		hdr["Content-Length"] = []string{strconv.Itoa(len(upstreamBody))}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(upstreamBody)
		return
	}
	w.WriteHeader(http.StatusForbidden)
}

func (u *upstream) check(mode int32, auth []string) bool {
	if len(auth) != 1 || auth[0] == "" {
		u.missing.Add(1)
		return false
	}
	a := auth[0]
	if mode == expectStatic {
		if a == u.static {
			u.ok.Add(1)
			return true
		}
		u.wrong.Add(1)
		return false
	}
	if p := u.pair.Load(); p != nil {
		switch a {
		case p.cur:
			u.ok.Add(1)
			return true
		case p.prev:
			u.prev.Add(1)
			return true
		}
	}
	// Slow path, once per new token: ask the simulator what it issued.
	u.simMu.Lock()
	defer u.simMu.Unlock()
	p := u.pair.Load()
	switch a {
	case p.cur:
		u.ok.Add(1)
		return true
	case p.prev:
		u.prev.Add(1)
		return true
	}
	var issued []string
	if u.sim != nil {
		issued = u.sim.IssuedTokens()
	}
	if n := len(issued); n > 0 && a == "Bearer "+issued[n-1] {
		np := &tokenPair{cur: a, prev: p.cur}
		if p.cur == "" && n > 1 {
			np.prev = "Bearer " + issued[n-2]
		}
		u.pair.Store(np)
		u.ok.Add(1)
		return true
	}
	u.wrong.Add(1)
	return false
}

func (u *upstream) close() {
	for _, s := range u.srvs {
		_ = s.Close()
	}
}
