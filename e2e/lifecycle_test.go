package e2e

import (
	"bytes"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// TestRevocationThroughReverseProxy: GroupID revokes every token; requests
// with small bodies succeed after one replay through reverse_proxy, with
// one new token request; a large streamed body gets the 401 and the next
// request succeeds.
func TestRevocationThroughReverseProxy(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("warm: %d", r.status)
	}
	s.sim.RevokeAllTokens()
	before := s.sim.Counters()
	body := []byte(`{"samAccountName":"replayed","DisplayName":"Replayed"}`)
	var wg sync.WaitGroup
	statuses := make(chan int, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.call("POST", usersPath, body).status
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("status %d after revocation", st)
		}
	}
	after := s.sim.Counters()
	if n := after.TokensTotal() - before.TokensTotal(); n != 1 {
		t.Fatalf("new token requests %d, want 1 (%v)", n, after.TokenRequests)
	}

	s.sim.RevokeAllTokens()
	big := bytes.Repeat([]byte("b"), 2<<20)
	if r := s.call("POST", usersPath, big); r.status != http.StatusUnauthorized {
		t.Fatalf("large body after revocation: %d, want 401", r.status)
	}
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("next request: %d", r.status)
	}
}

// TestTwentyReloadsLeaveNoGoroutines: reloads with unchanged credentials
// make no token request and leave no goroutine behind. Every other reload
// also changes the token request timeout, which replaces the token source:
// the old one must stop, and the new one starts from the stored token.
func TestTwentyReloadsLeaveNoGoroutines(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil)
	s.client.CloseIdleConnections()
	baseline := settledGoroutines(0)
	for i := range 20 {
		s.Extra = "reload " + string(rune('a'+i))
		s.Timeout = []string{"10s", "11s"}[i%2]
		s.load()
		if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
			t.Fatalf("reload %d: status %d", i, r.status)
		}
	}
	s.client.CloseIdleConnections()
	if n := s.sim.Counters().TokensTotal(); n != 1 {
		t.Fatalf("token requests over 20 reloads: %d, want 1", n)
	}
	if after := settledGoroutines(baseline + 3); after > baseline+3 {
		t.Fatalf("goroutines: %d before, %d after 20 reloads", baseline, after)
	}
}

// settledGoroutines returns the goroutine count once it drops to target or
// stops changing (old servers finish closing asynchronously).
func settledGoroutines(target int) int {
	n := runtime.NumGoroutine()
	for range 50 {
		if target > 0 && n <= target {
			return n
		}
		time.Sleep(100 * time.Millisecond) // waiting for shutdown of replaced servers
		m := runtime.NumGoroutine()
		if target == 0 && m == n {
			return n
		}
		n = m
	}
	return n
}
