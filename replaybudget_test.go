package groupidauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// trickleBody yields data, then either ends (EOF) or blocks until release
// is closed (then EOF) or the body is closed. sent is closed once data has
// been read.
type trickleBody struct {
	data      []byte
	block     bool
	sent      chan struct{}
	release   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newTrickle(data string, block bool, release chan struct{}) *trickleBody {
	return &trickleBody{data: []byte(data), block: block, sent: make(chan struct{}), release: release, closed: make(chan struct{})}
}

// TestAnnouncedTerabyteAllocatesNothing: a request that announces a huge
// body and sends a few bytes (then ends, or stalls) holds one chunk, not
// its announced length, even with max_replay_body forced far past its
// bound; it is still replayed correctly.
func TestAnnouncedTerabyteAllocatesNothing(t *testing.T) {
	cases := []struct {
		name   string
		max    int64 // forced after Provision, past validation
		length int64
		block  bool
	}{
		{"16MiB announced, max_replay_body 16MiB", MaxReplayBodyLimit, MaxReplayBodyLimit, false},
		{"16MiB announced then stalls", MaxReplayBodyLimit, MaxReplayBodyLimit, true},
		{"1TiB announced, max_replay_body forced to 1TiB", 1 << 40, 1 << 40, false},
		{"1TiB announced then stalls, max_replay_body forced to 1TiB", 1 << 40, 1 << 40, true},
	}
	const sent = "hello"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := provisioned(t, nil) // each case spends one of three token drops a minute
			h.binding.maxBody = tc.max
			body := newTrickle(sent, tc.block, nil)
			r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", body)
			r.ContentLength = tc.length
			var peak int64
			calls := 0
			next := funcNext(func(w http.ResponseWriter, r *http.Request) error {
				calls++
				got := make([]byte, len(sent))
				if _, err := io.ReadFull(r.Body, got); err != nil || string(got) != sent {
					return fmt.Errorf("call %d read %q: %v", calls, got, err)
				}
				peak = max(peak, replayMemoryHeld.Load())
				if calls == 1 {
					w.WriteHeader(http.StatusUnauthorized)
					return nil
				}
				w.WriteHeader(http.StatusOK)
				return nil
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			w, err := serve(h, r, next)
			runtime.ReadMemStats(&after)
			if err != nil || w.Code != 200 || calls != 2 {
				t.Fatalf("client got %d (err %v) after %d calls", w.Code, err, calls)
			}
			// Bytes held: what was received, rounded up to one chunk.
			if peak != replayChunkSize {
				t.Fatalf("%d bytes held for %d received, want one %d-byte chunk", peak, len(sent), replayChunkSize)
			}
			// The request, the token refresh after the 401 and a chunk
			// take some KiB; the announced length would take 16 MiB and more.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<20 {
				t.Fatalf("allocated %d bytes for a %d-byte body", grew, len(sent))
			}
			if held := replayMemoryHeld.Load(); held != 0 {
				t.Fatalf("%d bytes still held", held)
			}
			if tc.block {
				select {
				case <-body.closed:
				default:
					t.Fatal("the stalled original body was not closed when the handler ended")
				}
			}
		})
	}
}

// within waits for ch to be closed, failing the test after d.
func within(t *testing.T, d time.Duration, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s did not happen within %v", what, d)
	}
}

// TestSlowBodiesHoldOneChunkEach: 300 concurrent requests each announce
// 1 MiB and send 1 byte, then stall, while the next handler (standing in
// for reverse_proxy) reads their bodies. Together they hold at most one
// chunk each, within the process-wide cap, and the heap grows by about
// that: 300 x 16 KiB = 4.7 MiB of chunks plus the requests' own objects
// (a few KiB each: request, recorder, replacer, reader), bounded here at
// 300 x 40 KiB = 11.7 MiB. Allocating by the announced length would take
// 300 MiB.
func TestSlowBodiesHoldOneChunkEach(t *testing.T) {
	const n = 300
	h := provisioned(t, nil)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // a failed test leaves no request stalled
	var got sync.WaitGroup
	got.Add(n)
	var peak atomic.Int64
	next := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		buf := make([]byte, 4<<10)
		first := true
		for {
			k, err := r.Body.Read(buf)
			for p := peak.Load(); ; p = peak.Load() {
				if held := replayMemoryHeld.Load(); held <= p || peak.CompareAndSwap(p, held) {
					break
				}
			}
			if k > 0 && first {
				first = false
				got.Done()
			}
			if err != nil {
				break
			}
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", newTrickle("x", true, release))
		reqs[i].ContentLength = 1 << 20
	}
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var all sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for _, r := range reqs {
		all.Add(1)
		go func() {
			defer all.Done()
			w, err := serve(h, r, next)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				statuses[-1]++
				return
			}
			statuses[w.Code]++
		}()
	}
	allGot := make(chan struct{})
	go func() { got.Wait(); close(allGot) }()
	within(t, 10*time.Second, "every upstream receiving its byte", allGot)

	runtime.GC()
	runtime.ReadMemStats(&during)
	held := replayMemoryHeld.Load()
	grew := int64(during.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d stalled requests: %d bytes held for replays, heap in use grew %d bytes", n, held, grew)
	if held > n*replayChunkSize || held > replayMemoryLimit {
		t.Errorf("%d bytes held for replays, want at most %d", held, n*replayChunkSize)
	}
	if grew > n*40<<10 {
		t.Errorf("heap in use grew by %d bytes, want at most %d", grew, n*40<<10)
	}

	releaseAll()
	allDone := make(chan struct{})
	go func() { all.Wait(); close(allDone) }()
	within(t, 10*time.Second, "every request ending", allDone)
	if statuses[200] != n {
		t.Errorf("statuses %v, want %d x 200", statuses, n)
	}
	if p := peak.Load(); p > n*replayChunkSize {
		t.Errorf("peak %d bytes held, want at most %d", p, n*replayChunkSize)
	}
	if held := replayMemoryHeld.Load(); held != 0 {
		t.Errorf("%d bytes still held after every request ended", held)
	}
}

// TestReplayMemoryCap: with the process-wide budget taken by a stalled
// request, a request with a body streams unkept and its 401 goes to the
// client (counted as passed); a request without a body is still replayed;
// a panic in the next handler gives the memory back; when every request
// has ended the budget is back to 0.
func TestReplayMemoryCap(t *testing.T) {
	h := provisioned(t, nil)
	old := replayMemoryLimit
	replayMemoryLimit = replayChunkSize // one chunk: taken by the stalled request
	t.Cleanup(func() { replayMemoryLimit = old })

	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // a failed test leaves no request stalled
	stalled := newTrickle("x", true, release)
	sr := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", stalled)
	sr.ContentLength = 1 << 20
	stalledDone := make(chan struct{})
	var stalledCode int
	go func() {
		defer close(stalledDone)
		w, err := serve(h, sr, drainOK{})
		if err == nil {
			stalledCode = w.Code
		}
	}()
	within(t, 10*time.Second, "the stalled request's first byte", stalled.sent)
	testenv.Eventually(t, 10*time.Second, func() bool { return replayMemoryHeld.Load() == replayChunkSize }, "the stalled request's chunk being held")

	// The budget is exhausted: this body streams unkept, its 401 passes.
	passedBefore := h.cred().counters.unauthorizedPassed.Load()
	want := pattern(100)
	next := &answer401Then200{firstRead: -1}
	w, err := serve(h, httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want)), next)
	if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 || !bytes.Equal(next.bodies[0], want) {
		t.Fatalf("over budget: client got %d (err %v) after %d calls", w.Code, err, next.calls)
	}
	if n := h.cred().counters.unauthorizedPassed.Load() - passedBefore; n != 1 {
		t.Fatalf("unauthorizedPassed grew by %d, want 1", n)
	}
	if held := replayMemoryHeld.Load(); held != replayChunkSize {
		t.Fatalf("%d bytes held, want the stalled request's chunk only", held)
	}

	// Without a body there is nothing to keep: still replayed.
	next = &answer401Then200{firstRead: -1}
	w, err = serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x", nil), next)
	if err != nil || w.Code != 200 || next.calls != 2 {
		t.Fatalf("bodiless: client got %d (err %v) after %d calls", w.Code, err, next.calls)
	}

	releaseAll()
	within(t, 10*time.Second, "the stalled request ending", stalledDone)
	if stalledCode != 200 {
		t.Fatalf("stalled request: %d", stalledCode)
	}
	if held := replayMemoryHeld.Load(); held != 0 {
		t.Fatalf("%d bytes still held after every request ended", held)
	}

	// A panic on the way gives the memory back too.
	replayMemoryLimit = old
	func() {
		defer func() { _ = recover() }()
		_, _ = serve(h, httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want)),
			funcNext(func(_ http.ResponseWriter, r *http.Request) error {
				_, _ = io.ReadAll(r.Body)
				if replayMemoryHeld.Load() == 0 {
					t.Error("nothing held while the body was read")
				}
				panic("upstream handler panics")
			}))
	}()
	if held := replayMemoryHeld.Load(); held != 0 {
		t.Fatalf("%d bytes still held after a panic", held)
	}
}

// drainOK reads the whole body and answers 200.
type drainOK struct{}

func (tb *trickleBody) Read(p []byte) (int, error) {
	if len(tb.data) > 0 {
		n := copy(p, tb.data)
		tb.data = tb.data[n:]
		if len(tb.data) == 0 {
			close(tb.sent)
		}
		return n, nil
	}
	if !tb.block {
		return 0, io.EOF
	}
	select {
	case <-tb.release:
		return 0, io.EOF
	case <-tb.closed:
		return 0, errors.New("body closed")
	}
}

func (tb *trickleBody) Close() error {
	tb.closeOnce.Do(func() { close(tb.closed) })
	return nil
}

func (drainOK) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
