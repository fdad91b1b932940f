package groupidauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// flaky401 answers 401 (with a challenge header and a body) to its first
// call and 200 afterwards, recording the bodies it received.
type flaky401 struct {
	calls  int
	bodies []string
}

func (f *flaky401) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	f.calls++
	b, _ := io.ReadAll(r.Body)
	f.bodies = append(f.bodies, string(b))
	if f.calls == 1 {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.Header().Add("Server", "upstream")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("denied"))
		return nil
	}
	w.Header().Set("X-Upstream", "yes")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("fine"))
	return nil
}

// TestReplayRestoresResponseHeaders: after a held-back 401 the client sees
// only the replay's answer, on top of the headers set before the upstream
// was called (few, or more than the writer keeps inline).
func TestReplayRestoresResponseHeaders(t *testing.T) {
	for _, pre := range []int{0, 1, 3, 4, 9} {
		t.Run(strconv.Itoa(pre)+" headers set before", func(t *testing.T) {
			_, tokenURL := simSite(t, groupidsim.Config{})
			h := simHandler(tokenURL)
			if err := provision(t, h); err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			for i := range pre {
				w.Header().Set("X-Pre-"+strconv.Itoa(i), "v")
			}
			w.Header().Set("Alt-Svc", `h3=":443"`) // one of the headers Caddy's server sets
			next := &flaky401{}
			r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", strings.NewReader(`{"a":1}`))
			if _, err := serveWith(h, w, r, next); err != nil {
				t.Fatal(err)
			}
			if w.Code != 200 || w.Body.String() != "fine" || next.calls != 2 {
				t.Fatalf("client got %d %q after %d calls", w.Code, w.Body.String(), next.calls)
			}
			if next.bodies[0] != `{"a":1}` || next.bodies[1] != `{"a":1}` {
				t.Fatalf("bodies %q", next.bodies)
			}
			got := w.Header()
			if got.Get("WWW-Authenticate") != "" || len(got.Values("Server")) != 0 {
				t.Errorf("the held-back 401's headers leaked: %v", got)
			}
			if got.Get("X-Upstream") != "yes" {
				t.Error("the replay's headers are missing")
			}
			if got.Get("Alt-Svc") != `h3=":443"` {
				t.Error("Alt-Svc set before the upstream was lost")
			}
			for i := range pre {
				if got.Get("X-Pre-"+strconv.Itoa(i)) != "v" {
					t.Errorf("header X-Pre-%d set before the upstream was lost", i)
				}
			}
		})
	}
}

// TestRecordBody: whatever is kept, the upstream reads the whole body; a
// body within max can be replayed byte for byte after the upstream read
// it all, across chunk boundaries; a larger one cannot, and gives its
// memory back at once.
func TestRecordBody(t *testing.T) {
	const max = 3*replayChunkSize + 5
	cases := []struct {
		name       string
		size       int
		length     int64 // -1: unknown (chunked)
		armed      bool
		replayable bool
	}{
		{"empty, known length", 0, 0, true, true},
		{"small, known length", 10, 10, true, true},
		{"one chunk", replayChunkSize, replayChunkSize, true, true},
		{"one chunk and a byte", replayChunkSize + 1, replayChunkSize + 1, true, true},
		{"exactly max", max, max, true, true},
		{"over max, known length", max + 1, max + 1, false, false},
		{"small, chunked", 10, -1, true, true},
		{"exactly max, chunked", max, -1, true, true},
		{"over max, chunked", max + 1, -1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := pattern(tc.size)
			orig := io.NopCloser(bytes.NewReader(want))
			r := httptest.NewRequest("POST", "/", orig)
			r.ContentLength = tc.length
			if tc.length < 0 {
				r.TransferEncoding = []string{"chunked"}
			}
			b, armed := recordBody(r, max)
			if b != nil {
				defer b.finish() // finish may run twice
			}
			if armed != tc.armed {
				t.Fatalf("armed %v", armed)
			}
			// The upstream reads in odd sizes, as a transport may.
			got, err := io.ReadAll(io.LimitReader(oddReader{r.Body}, 1<<30))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("forwarded %d bytes (err %v), want %d", len(got), err, len(want))
			}
			if b == nil {
				if tc.size > 0 && tc.armed {
					t.Fatal("a body was not recorded")
				}
				return
			}
			if b.hold() != tc.replayable {
				t.Fatalf("replayable %v", !tc.replayable)
			}
			if held := replayMemoryHeld.Load(); held > int64(roundUpChunk(tc.size)) || (!tc.replayable && held != 0) {
				t.Fatalf("%d bytes held for a %d-byte body (replayable %v)", held, tc.size, tc.replayable)
			}
			if tc.replayable {
				again, err := io.ReadAll(oddReader{b.replay()})
				if err != nil || !bytes.Equal(again, want) {
					t.Fatalf("replayed %d bytes (err %v), want %d", len(again), err, len(want))
				}
			}
			b.finish()
			if held := replayMemoryHeld.Load(); held != 0 {
				t.Fatalf("%d bytes still held after finish", held)
			}
		})
	}
}

// pattern is n bytes that differ from one position to the next, so a
// misplaced or repeated piece shows.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i/251)
	}
	return p
}

func roundUpChunk(n int) int {
	return (n + replayChunkSize - 1) / replayChunkSize * replayChunkSize
}

// oddReader reads in sizes 1, 1000, 5000, 40000, 1, ... regardless of the
// caller's buffer, as a transport's writes may.
type oddReader struct{ r io.Reader }

var oddSizes = [...]int{1, 1000, 5000, 40000, 3}

func (o oddReader) Read(p []byte) (int, error) {
	n := oddSizes[len(p)%len(oddSizes)]
	return o.r.Read(p[:min(len(p), n)])
}

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

// funcNext is a next handler made of a function.
type funcNext func(http.ResponseWriter, *http.Request) error

func (f funcNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// answer401Then200 is a next handler that, on its first call, reads at
// most firstRead bytes of the body (-1: all of it) and answers 401; later
// calls read the whole body and answer 200. It records the bodies.
type answer401Then200 struct {
	firstRead int
	calls     int
	bodies    [][]byte
	first     io.Reader // the body the first call was given
}

func (a *answer401Then200) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	a.calls++
	if a.calls == 1 {
		a.first = r.Body
		var got []byte
		var err error
		if a.firstRead < 0 {
			got, err = io.ReadAll(oddReader{r.Body})
		} else {
			got, err = io.ReadAll(io.LimitReader(r.Body, int64(a.firstRead)))
		}
		if err != nil {
			return err
		}
		a.bodies = append(a.bodies, got)
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	}
	// The first call's body is dead: a transport still writing it from
	// its own goroutine must not take bytes from the replay.
	if _, err := a.first.Read(make([]byte, 1)); !errors.Is(err, errReplayBodyGone) && a.first != http.NoBody {
		return fmt.Errorf("the first pass's body during the replay: %v", err)
	}
	got, err := io.ReadAll(oddReader{r.Body})
	a.bodies = append(a.bodies, got)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// provisioned is a handler in front of a simulator, with a token held.
func provisioned(t *testing.T, mod func(*Handler)) *Handler {
	t.Helper()
	_, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if mod != nil {
		mod(h)
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReplayBodyByteForByte: the replay carries the whole body, byte for
// byte, whether the upstream read all of it or answered 401 after a part
// (then the rest comes from the original); the first pass's body is dead
// once the 401 is held back, the replay's once the handler returned.
func TestReplayBodyByteForByte(t *testing.T) {
	for _, size := range []int{1, 100, 5*replayChunkSize + 7} {
		for _, chunked := range []bool{false, true} {
			for _, firstRead := range []int{-1, 0, 100} {
				name := fmt.Sprintf("%d bytes, chunked %v, upstream reads %d", size, chunked, firstRead)
				t.Run(name, func(t *testing.T) {
					// A handler each: every case spends one of the
					// credential's token drops (three a minute).
					h := provisioned(t, nil)
					want := pattern(size)
					r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
					if chunked {
						r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
					}
					next := &answer401Then200{firstRead: firstRead}
					passedBefore := h.cred.counters.unauthorizedPassed.Load()
					w, err := serve(h, r, next)
					if err != nil || w.Code != 200 || next.calls != 2 {
						t.Fatalf("client got %d (err %v) after %d calls", w.Code, err, next.calls)
					}
					if !bytes.Equal(next.bodies[1], want) {
						t.Fatalf("replayed %d bytes, want the %d sent", len(next.bodies[1]), size)
					}
					if n := h.cred.counters.unauthorizedPassed.Load() - passedBefore; n != 0 {
						t.Fatalf("%d 401s passed", n)
					}
					if _, err := next.first.Read(make([]byte, 1)); !errors.Is(err, errReplayBodyGone) {
						t.Fatalf("first pass's body after the replay: %v", err)
					}
					if held := replayMemoryHeld.Load(); held != 0 {
						t.Fatalf("%d bytes still held", held)
					}
				})
			}
		}
	}
}

// TestReplayBodyOverMaxNotReplayed: a body larger than max_replay_body,
// announced or found out while streaming, is not replayed; its 401 goes to
// the client and is counted.
func TestReplayBodyOverMaxNotReplayed(t *testing.T) {
	const max = 64 << 10
	h := provisioned(t, func(h *Handler) { h.MaxReplayBody = max })
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked %v", chunked), func(t *testing.T) {
			want := pattern(max + 1)
			r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
			if chunked {
				r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
			}
			next := &answer401Then200{firstRead: -1}
			passedBefore := h.cred.counters.unauthorizedPassed.Load()
			w, err := serve(h, r, next)
			if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 {
				t.Fatalf("client got %d (err %v) after %d calls, want the upstream's 401 after 1", w.Code, err, next.calls)
			}
			if !bytes.Equal(next.bodies[0], want) {
				t.Fatalf("forwarded %d bytes, want %d", len(next.bodies[0]), len(want))
			}
			if n := h.cred.counters.unauthorizedPassed.Load() - passedBefore; n != 1 {
				t.Fatalf("unauthorizedPassed grew by %d, want 1", n)
			}
			if held := replayMemoryHeld.Load(); held != 0 {
				t.Fatalf("%d bytes still held", held)
			}
		})
	}
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
			h.MaxReplayBody = tc.max
			t.Cleanup(func() { h.MaxReplayBody = DefaultMaxReplayBody })
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
	waitUntil(t, "the stalled request's chunk being held", func() bool { return replayMemoryHeld.Load() == replayChunkSize })

	// The budget is exhausted: this body streams unkept, its 401 passes.
	passedBefore := h.cred.counters.unauthorizedPassed.Load()
	want := pattern(100)
	next := &answer401Then200{firstRead: -1}
	w, err := serve(h, httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want)), next)
	if err != nil || w.Code != http.StatusUnauthorized || next.calls != 1 || !bytes.Equal(next.bodies[0], want) {
		t.Fatalf("over budget: client got %d (err %v) after %d calls", w.Code, err, next.calls)
	}
	if n := h.cred.counters.unauthorizedPassed.Load() - passedBefore; n != 1 {
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

func (drainOK) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// TestMaxReplayBodyBound: max_replay_body is at most 16 MiB, which fits in
// the process-wide budget, in JSON and in the Caddyfile.
func TestMaxReplayBodyBound(t *testing.T) {
	if MaxReplayBodyLimit > MaxReplayMemory || MaxReplayBodyLimit != 16<<20 {
		t.Fatalf("MaxReplayBodyLimit %d, MaxReplayMemory %d", MaxReplayBodyLimit, MaxReplayMemory)
	}
	for _, tc := range []struct {
		size int64
		err  string
	}{
		{MaxReplayBodyLimit, ""},
		{MaxReplayBodyLimit + 1, "max_replay_body: must be at most 16MiB"},
		{1 << 40, "max_replay_body: must be at most 16MiB"},
	} {
		h := simHandler("http://127.0.0.1:1/token")
		h.MaxReplayBody = tc.size
		err := h.validate()
		if (tc.err == "" && err != nil) || (tc.err != "" && (err == nil || err.Error() != tc.err)) {
			t.Errorf("max_replay_body %d: %v, want %q", tc.size, err, tc.err)
		}
	}
	for in, want := range map[string]string{
		"16MiB":    "",
		"16777217": "max_replay_body: must be at most 16MiB",
		"1TiB":     "max_replay_body: must be at most 16MiB",
	} {
		h := new(Handler)
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid_auth {\n max_replay_body " + in + "\n}"))
		if (want == "" && err != nil) || (want != "" && (err == nil || !strings.Contains(err.Error(), want))) {
			t.Errorf("max_replay_body %s: %v, want %q", in, err, want)
		}
	}
}

// TestReplayThroughRealTransport: through a real http.Transport (as
// reverse_proxy uses), an upstream that answers 401 before reading a
// 512 KiB body, while the transport is still writing it from its own
// goroutine, gets the whole body byte for byte on the replay; the race
// detector watches the transport's late reads and closes.
func TestReplayThroughRealTransport(t *testing.T) {
	want := pattern(512 << 10)
	var calls atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusUnauthorized) // without reading the body
			return
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, want) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(upstream.Close)
	target, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	proxy.Transport = transport
	next := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		proxy.ServeHTTP(w, r)
		return nil
	})
	for i := range 5 {
		h := provisioned(t, nil) // each round spends one of three token drops a minute
		calls.Store(0)
		r := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", bytes.NewReader(want))
		w, err := serve(h, r, next)
		if err != nil || w.Code != 200 || calls.Load() != 2 {
			t.Fatalf("round %d: client got %d (err %v) after %d upstream calls", i, w.Code, err, calls.Load())
		}
	}
	waitUntil(t, "replay memory given back", func() bool { return replayMemoryHeld.Load() == 0 })
}

// TestReplayOnlyWhenTheTokenWasDropped: an upstream that rejects every
// token gets each request replayed only while the drop budget lets the
// token be dropped; after that the token is kept, the 401 passes through,
// and neither a token request nor a replay is spent.
func TestReplayOnlyWhenTheTokenWasDropped(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	calls := 0
	always401 := funcNext(func(w http.ResponseWriter, r *http.Request) error {
		calls++
		w.WriteHeader(http.StatusUnauthorized)
		return nil
	})
	for i := range tokencache.MaxInvalidations + 3 {
		calls = 0
		w, err := serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil), always401)
		if err != nil || w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %v %d", i, err, w.Code)
		}
		want := 1
		if i < tokencache.MaxInvalidations {
			want = 2 // dropped, so replayed once with a fresh token
		}
		if calls != want {
			t.Fatalf("request %d reached the upstream %d times, want %d", i, calls, want)
		}
	}
	if n := sim.Counters().TokensTotal(); n != 1+tokencache.MaxInvalidations {
		t.Fatalf("%d token requests, want %d", n, 1+tokencache.MaxInvalidations)
	}
	if r := h.cred.counters.replays.Load(); r != tokencache.MaxInvalidations {
		t.Fatalf("%d replays, want %d", r, tokencache.MaxInvalidations)
	}
}
