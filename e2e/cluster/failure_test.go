package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// lockStale is how long CertMagic's file storage waits before it takes
// over a lock that its holder stopped refreshing (2 x its 5 s update
// interval), and lockPoll how often a waiter looks again. groupid_auth's
// own lease breaks a dead holder's lock sooner (6 s), also when a
// CertMagic refresher left over from an earlier lock keeps the file fresh.
const (
	lockStale = 10 * time.Second
	lockPoll  = time.Second
)

// lockFile waits for a lock file in the storage folder and returns the
// time CertMagic wrote into it.
func (c *cluster) lockFile(timeout time.Duration) time.Time {
	c.t.Helper()
	var created time.Time
	testenv.Eventually(c.t, timeout, func() bool {
		files, _ := filepath.Glob(filepath.Join(c.shared, "locks", "groupid_auth_*.lock"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			var meta struct {
				Created time.Time `json:"created"`
			}
			if err == nil && json.Unmarshal(b, &meta) == nil && !meta.Created.IsZero() {
				created = meta.Created
				return true
			}
		}
		return false
	}, "a lock file")
	return created
}

// forceRefresh asks a replica for a token request now (admin API).
func (r *replica) forceRefresh() {
	r.t.Helper()
	resp, err := r.httpClient.Post(r.AdminURL("/groupid/refresh"), "", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		r.t.Fatalf("%s refresh: %s", r.Name, resp.Status)
	}
}

// refreshesOK is the number of successful refresh grants so far.
func (c *cluster) refreshesOK() int { return c.sim.Counters().TokenRequests["refresh_token/ok"] }

// TestClusterLockHolderKilledMidRefresh: the replica holding the storage
// lock is killed (SIGKILL) while its refresh hangs at GroupID, with the two
// others waiting for the lock. One of them takes the lock over once it is
// stale and continues the shared chain with the shared refresh token (which
// the dead replica never got to use); clients see no error meanwhile. With
// the default share settings, as a user gets them.
func TestClusterLockHolderKilledMidRefresh(t *testing.T) {
	t.Parallel()
	c := newCluster(t, groupidsim.Config{TokenLifetime: 30 * time.Second, ReuseRevokesFamily: true})
	c.refresh = 10 * time.Second
	share := c.shareBlock("") // the default share settings (lock_timeout 15s)
	replicas := []*replica{c.replica(5, share), c.replica(6, share), c.replica(7, share)}
	for _, r := range replicas {
		r.start()
	}
	waitServing(t, c.client, replicas...)

	// The replica whose token is its own is the one that refreshes.
	var leader *replica
	var followers []*replica
	testenv.Eventually(t, 10*time.Second, func() bool {
		leader, followers = nil, nil
		for _, r := range replicas {
			switch r.mustStatus().TokenSource {
			case "own":
				leader = r
			case "shared":
				followers = append(followers, r)
			}
		}
		return leader != nil && len(followers) == 2
	}, "a single refreshing replica")
	stop := make(chan struct{})
	bad := traffic(c.client, followers, stop)

	c.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: time.Minute})
	leader.forceRefresh()
	locked := c.lockFile(10 * time.Second)
	// The lock is the leader's: its refresh hangs at GroupID.
	testenv.Eventually(t, 2*time.Second, func() bool {
		for _, rq := range c.sim.Requests() {
			if strings.HasSuffix(rq.Path, "/connect/token") && rq.Status == 0 {
				return true
			}
		}
		return false
	}, "the leader's refresh in flight")
	for _, f := range followers {
		f.forceRefresh() // both now wait for the lock
	}
	time.Sleep(200 * time.Millisecond)
	before := c.refreshesOK()
	leader.kill()
	killed := time.Now()
	c.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultNone})

	if !live.Wait(2*lockStale, func() bool { return c.refreshesOK() > before }) {
		for _, rq := range c.sim.Requests() {
			if strings.HasSuffix(rq.Path, "/connect/token") {
				t.Logf("token request at %s: %d", rq.At.Format("15:04:05.000"), rq.Status)
			}
		}
		for _, f := range followers {
			t.Logf("%s:\n%s", f.Name, f.tail(12))
		}
		t.Fatalf("no replica took over within %s of the kill", 2*lockStale)
	}
	tookOver := time.Now()
	t.Logf("lock taken %s, holder killed %s later, refresh by another replica %s after the kill",
		locked.Format("15:04:05.000"), killed.Sub(locked).Round(time.Millisecond), tookOver.Sub(killed).Round(time.Millisecond))
	if limit := locked.Add(lockStale + lockPoll + 1500*time.Millisecond); tookOver.After(limit) {
		t.Errorf("takeover at %s after the lock was taken; want within the stale time (%s) plus a poll", tookOver.Sub(locked), lockStale)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	if b := <-bad; len(b) > 0 {
		t.Errorf("%d client requests not 2xx; first: %v", len(b), b[:min(5, len(b))])
	}
	if n := c.refusedRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens refused", n)
		t.Logf("simulator: %v", c.sim.Counters().TokenRequests)
	}
	if n := c.sim.Counters().Tokens("password"); n != 1 {
		t.Errorf("%d password grants, want 1: the shared chain was not continued", n)
	}
}

// TestClusterStorageOutage: the storage folder is replaced by a file (root
// ignores permissions, so chmod would prove nothing) for two token
// lifetimes. Every replica keeps serving with token requests of its own;
// when the folder returns, the replicas share one chain again.
func TestClusterStorageOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, groupidsim.Config{TokenLifetime: lifetime, ReuseRevokesFamily: true})
	replicas := []*replica{c.replica(8, c.shareBlock("")), c.replica(9, c.shareBlock("")), c.replica(10, c.shareBlock(""))}
	for _, r := range replicas {
		r.start()
	}
	waitServing(t, c.client, replicas...)
	stop := make(chan struct{})
	bad := traffic(c.client, replicas, stop)
	time.Sleep(lifetime)

	away := c.shared + ".away"
	if err := os.Rename(c.shared, away); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.shared, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	time.Sleep(2 * lifetime)
	for _, r := range replicas {
		st := r.mustStatus()
		if *st.ShareStorageErrors == 0 || *st.ShareFallbacks == 0 {
			t.Errorf("%s during the outage: storage errors %d, fallbacks %d", r.Name, *st.ShareStorageErrors, *st.ShareFallbacks)
		}
		if st.TokenSource != "own" {
			t.Errorf("%s during the outage: token_source %q", r.Name, st.TokenSource)
		}
	}
	if err := os.Remove(c.shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, c.shared); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	time.Sleep(4 * lifetime)
	close(stop)
	if b := <-bad; len(b) > 0 {
		t.Errorf("%d client requests not 2xx; first: %v", len(b), b[:min(5, len(b))])
	}
	var during, after int
	var last []time.Time
	for _, at := range c.tokenRequests() {
		switch {
		case at.After(outage) && at.Before(restored):
			during++
		case at.After(restored.Add(2 * lifetime)):
			last = append(last, at)
			after++
		}
	}
	t.Logf("token requests: %d during 2 lifetimes of outage (3 replicas on their own), %d in the last 2 lifetimes after the folder returned", during, after)
	// Sharing again: one chain, as a single replica.
	for i := 1; i < len(last); i++ {
		if gap := last[i].Sub(last[i-1]); gap < shortestRefresh-300*time.Millisecond {
			t.Errorf("after the outage, token requests %s apart: not one chain", gap)
		}
	}
	shared := 0
	for _, r := range replicas {
		if r.mustStatus().TokenSource == "shared" {
			shared++
		}
	}
	if shared != 2 {
		t.Errorf("%d replicas serve the shared token after the outage, want 2", shared)
	}
	if n := c.refusedRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens refused", n)
	}
	for _, r := range replicas {
		if n := strings.Count(r.log(), "shared token storage failed;"); n != 1 {
			t.Errorf("%s logged the storage failure %d times, want once", r.Name, n)
		}
	}
}
