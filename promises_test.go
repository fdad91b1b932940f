package groupidauth

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// Issue 17, "promises tested at their defaults": README promises that had
// no test, or only tests with a changed setting, checked here with the
// settings a user gets (see docs/promises.md). allow_http (the simulator
// runs over plain HTTP), the fake clock and the fixed jitter are test
// seams, as in helpers_test.go.

const usersAPI = "/GroupIDDataService/api/IdentityStores/2/Users"

// promiseIdP is a token endpoint that issues 1200 s tokens; while hold is
// set, requests wait for it to close.
type promiseIdP struct {
	url               string
	mu                sync.Mutex
	hold              chan struct{}
	arrived, answered atomic.Int32
}

func newPromiseIdP(t *testing.T) *promiseIdP {
	d := &promiseIdP{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := d.arrived.Add(1)
		d.mu.Lock()
		hold := d.hold
		d.mu.Unlock()
		if hold != nil {
			<-hold
		}
		defer d.answered.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"at-`+strconv.Itoa(int(n))+`","refresh_token":"rt","token_type":"Bearer","expires_in":1200}`)
	}))
	t.Cleanup(srv.Close)
	d.url = srv.URL + "/GroupIDSecurityService/connect/token"
	return d
}

// holdAll makes requests wait until the returned release is called (also
// at the end of the test, before the server closes).
func (d *promiseIdP) holdAll(t *testing.T) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	d.mu.Lock()
	d.hold = ch
	d.mu.Unlock()
	return release
}

// step moves the rig's clock to the next scheduled token request and waits
// until the refresh goroutine is idle again.
func (r *rig) step() {
	r.settle()
	due, _ := r.clk.NextDeadline()
	r.clk.Advance(due.Sub(r.clk.Now()))
	r.settle()
}

// forceAttempt has c make a token request now (as POST /groupid/refresh
// does), waits for its outcome and returns its error.
func forceAttempt(t *testing.T, c *credential) *tokencache.Error {
	attempts := func() (n uint64) {
		for _, v := range c.counters.values().tokenRequests {
			n += v
		}
		return n
	}
	before := attempts()
	c.src.ForceRefresh()
	testenv.Eventually(t, 10*time.Second, func() bool { return attempts() > before }, "the forced token request")
	return c.src.State().LastErr
}

// TestPromiseProvisionDoesNoNetworkIO checks README "How it behaves": "The
// first request for a credential is fetched in the background when Caddy
// starts the config (no network I/O in Provision itself, and none for caddy validate)."
func TestPromiseProvisionDoesNoNetworkIO(t *testing.T) {
	d := newPromiseIdP(t)
	release := d.holdAll(t)
	guard := time.AfterFunc(10*time.Second, release) // a Provision that waits fails below instead of hanging
	defer guard.Stop()
	h := simHandler(d.url)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	if n := d.answered.Load(); n != 0 {
		t.Fatalf("Provision returned after %d token answers; it must not wait for GroupID", n)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return d.arrived.Load() == 1 }, "the warm-up token request, with no client request")
	release()
	if _, err := h.cred().src.Token(context.Background()); err != nil || d.arrived.Load() != 1 {
		t.Fatalf("warm-up: %v after %d token requests", err, d.arrived.Load())
	}
}

// TestPromiseReplayMemoryAtDefaults checks, with the default
// max_replay_body and process-wide cap, README "How it behaves": "the
// request is sent once more if its body was kept (bodies up to
// max_replay_body, 1 MiB by default, are kept as they stream to GroupID)",
// and "Security": "at most 64 MiB (MaxReplayMemory) are held for replays
// in the whole process [...]; beyond either limit a request streams
// unbuffered and is not replayable". 64 bodies of 1 MiB wait for GroupID's
// answer; the next body streams unkept and its 401 goes to the client; the
// 64 then get a 401 each and are replayed byte for byte.
func TestPromiseReplayMemoryAtDefaults(t *testing.T) {
	h := provisioned(t, nil)
	body := pattern(1 << 20)
	const held = 64
	stalled := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(stalled) }) }
	t.Cleanup(releaseAll)
	var read sync.WaitGroup
	read.Add(held)
	codes := make(chan int, held)
	for range held {
		calls := 0
		next := funcNext(func(w http.ResponseWriter, r *http.Request) error {
			got, err := io.ReadAll(r.Body)
			if calls++; calls == 1 {
				read.Done()
				<-stalled // GroupID has the body but has not answered yet
				w.WriteHeader(http.StatusUnauthorized)
				return err
			}
			w.WriteHeader(map[bool]int{true: http.StatusOK, false: http.StatusTeapot}[bytes.Equal(got, body)])
			return err
		})
		go func() {
			w, err := serve(h, httptest.NewRequest("POST", usersAPI, bytes.NewReader(body)), next)
			codes <- map[bool]int{true: w.Code, false: -1}[err == nil]
		}()
	}
	allRead := make(chan struct{})
	go func() { read.Wait(); close(allRead) }()
	within(t, 30*time.Second, "64 bodies of 1 MiB received", allRead)
	if n := replayMemoryHeld.Load(); n != 64<<20 {
		t.Fatalf("%d bytes held, want 64 MiB", n)
	}
	small := pattern(100)
	next := &answer401Then200{firstRead: -1}
	w, err := serve(h, httptest.NewRequest("POST", usersAPI, bytes.NewReader(small)), next)
	if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 || !bytes.Equal(next.bodies[0], small) {
		t.Fatalf("past the cap: client got %d (err %v) after %d calls; want the body streamed and its 401", w.Code, err, next.calls)
	}
	releaseAll()
	for range held {
		if c := <-codes; c != http.StatusOK {
			t.Fatalf("a 1 MiB request after its 401: %d, want 200 from a byte-for-byte replay", c)
		}
	}
	if n := replayMemoryHeld.Load(); n != 0 {
		t.Fatalf("%d bytes still held", n)
	}
}

// TestPromiseRetryAfterIsSecondsUntilNextAttempt checks README "When no
// valid token can be had": "503 Service Unavailable + Retry-After: <seconds
// until the next attempt>"; the attempt then comes at that time, not
// earlier, whatever the traffic.
func TestPromiseRetryAfterIsSecondsUntilNextAttempt(t *testing.T) {
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown}) })
	r.settle()
	for failures := 1; failures <= 6; failures++ {
		next := r.h.cred().src.State().NextAttempt
		for left := next.Sub(r.clk.Now()); left > 0; left = next.Sub(r.clk.Now()) {
			st, ra := r.getUser()
			if want := strconv.Itoa(max(1, int(math.Ceil(left.Seconds())))); st != 503 || ra != want {
				t.Fatalf("failure %d, %v before the next attempt: %d Retry-After %q, want 503 %s", failures, left, st, ra, want)
			}
			if n := r.tokenRequests(); n != failures {
				t.Fatalf("%d token requests before attempt %d", n, failures+1)
			}
			r.clk.Advance(min(700*time.Millisecond, left))
		}
		r.settle()
	}
}

// TestPromiseRotatedClientSecretFileHeals checks README "How it behaves":
// "When password or client_secret comes from a {file.*} placeholder and
// the password grant is rejected, the files are read again [...] A rejected
// state heals at the next retry after the file changes, without a reload."
func TestPromiseRotatedClientSecretFileHeals(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client_secret")
	if err := os.WriteFile(file, []byte("an-old-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.ClientSecret = "{file." + file + "}" })
	if st, _ := r.getUser(); st != http.StatusBadGateway {
		t.Fatalf("wrong client secret: %d, want 502", st)
	}
	r.settle()
	if err := os.WriteFile(file, []byte(groupidsim.DefaultClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.step()
	if st, _ := r.getUser(); st != http.StatusOK {
		t.Fatalf("at the next retry after the file changed: %d", st)
	}
}

// TestPromiseRefreshingStateOnEveryFace checks README "Readiness, liveness
// and status", the state table: "refreshing | wait for the token request in
// flight (no token served) | 503", the same on every face.
func TestPromiseRefreshingStateOnEveryFace(t *testing.T) {
	d := newPromiseIdP(t)
	release := d.holdAll(t)
	h := simHandler(d.url)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return d.arrived.Load() == 1 }, "the token request in flight")
	f := lookFaces(t, h.app)
	if f.snapshot != tokencache.ConditionRefreshing || f.readyStatus != 503 || f.readyState != tokencache.ConditionRefreshing ||
		f.adminState != tokencache.ConditionRefreshing || f.metricState != tokencache.ConditionRefreshing || f.metricValid != 0 {
		t.Fatalf("a token request in flight, none served: %+v", f)
	}
	got := make(chan error, 1)
	go func() {
		_, err := serve(h, httptest.NewRequest("GET", usersAPI+"/x", nil), &recordNext{})
		got <- err
	}()
	release()
	if err := <-got; err != nil || d.arrived.Load() != 1 {
		t.Fatalf("a request while refreshing: %v after %d token requests; want it to wait for the one in flight", err, d.arrived.Load())
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
