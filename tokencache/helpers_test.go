package tokencache

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache/clock"
)

const (
	testPassword = "pw-Secret-123"
	testSecret   = "cs-Secret-456"
)

// idp is a scripted token endpoint. Each request is answered by reply, which
// defaults to issuing a fresh token "at-N" with refresh token "rt-N".
type idp struct {
	t     *testing.T
	mu    sync.Mutex
	forms []url.Values
	reply func(n int, form url.Values, w http.ResponseWriter)
	srv   *httptest.Server
	hold  chan struct{} // when not nil, requests wait on it
	// arrived receives one value per request, before it is answered.
	arrived chan struct{}
}

func newIdP(t *testing.T) *idp {
	d := &idp{t: t, arrived: make(chan struct{}, 1024)}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		d.mu.Lock()
		d.forms = append(d.forms, r.PostForm)
		n, reply, hold := len(d.forms), d.reply, d.hold
		d.mu.Unlock()
		d.arrived <- struct{}{}
		if hold != nil {
			<-hold
		}
		if reply == nil {
			reply = okReply(60)
		}
		reply(n, r.PostForm, w)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *idp) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.forms)
}

func (d *idp) form(i int) url.Values {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.forms[i]
}

func (d *idp) setReply(f func(n int, form url.Values, w http.ResponseWriter)) {
	d.mu.Lock()
	d.reply = f
	d.mu.Unlock()
}

func (d *idp) grant() Grant {
	return Grant{
		TokenURL: d.srv.URL + "/GroupIDSecurityService/connect/token",
		Username: "svc", Password: testPassword,
		ClientID: "legacy", ClientSecret: testSecret,
		IdentityStoreID: "2",
	}
}

func okReply(expiresIn int) func(int, url.Values, http.ResponseWriter) {
	return func(n int, _ url.Values, w http.ResponseWriter) {
		writeJSON(w, 200, map[string]any{
			"access_token":  "at-" + itoa(n),
			"refresh_token": "rt-" + itoa(n),
			"token_type":    "Bearer",
			"expires_in":    expiresIn,
			"scope":         "directorymanager.api offline_access",
		})
	}
}

func errReply(status int, code, desc string) func(int, url.Values, http.ResponseWriter) {
	return func(_ int, _ url.Values, w http.ResponseWriter) {
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness is a Source on a fake clock whose events arrive on a channel.
type harness struct {
	src    *Source
	clock  *clock.Fake
	events chan Event
}

func newHarness(t *testing.T, d *idp, mod func(*Options)) *harness {
	h := &harness{clock: clock.NewFake(epoch), events: make(chan Event, 64)}
	opts := Options{
		Grant:    d.grant(),
		Client:   &Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)},
		Clock:    h.clock,
		Rand:     func() float64 { return 0.5 },
		Observer: func(ev Event) { h.events <- ev },
	}
	if mod != nil {
		mod(&opts)
	}
	h.src = New(opts)
	t.Cleanup(h.src.Close)
	return h
}

// next waits for the next event that is not a fallback notice.
func (h *harness) next(t *testing.T) Event {
	t.Helper()
	for {
		select {
		case ev := <-h.events:
			if ev.Kind != EventFallback {
				return ev
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no token event within 10s")
		}
	}
}

// due waits until the refresh goroutine has armed its timer and returns the
// timer's deadline.
func (h *harness) due(t *testing.T) time.Time {
	t.Helper()
	h.clock.BlockUntil(1)
	d, ok := h.clock.NextDeadline()
	if !ok {
		t.Fatal("no timer armed")
	}
	return d
}

// advanceToDue moves the clock to the armed timer's deadline.
func (h *harness) advanceToDue(t *testing.T) {
	t.Helper()
	h.clock.Advance(h.due(t).Sub(h.clock.Now()))
}

// memShared is an in-memory Shared: one entry and one lock, shared by every
// Source given it. fail makes every call fail; held makes Lock wait for
// ctx's deadline.
type memShared struct {
	mu    sync.Mutex
	entry *SharedEntry
	lock  chan struct{}
	fail  bool
	held  bool
	// whileHeld, if set, runs when Lock finds the lock held (another
	// replica's work), before Lock times out.
	whileHeld func(m *memShared)
	stores    int
	deletes   int
}

func newMemShared() *memShared { return &memShared{lock: make(chan struct{}, 1)} }

// sharedHarness is a harness whose Source shares through sh.
func sharedHarness(t *testing.T, d *idp, sh *memShared, c *clock.Fake) *harness {
	h := newHarness(t, d, func(o *Options) {
		o.Shared = sh
		o.ShareLockTimeout = 200 * time.Millisecond
		if c != nil {
			o.Clock = c
		}
	})
	if c != nil {
		h.clock = c
	}
	return h
}

func validEntry(now time.Time, version uint64, life time.Duration) *SharedEntry {
	return &SharedEntry{Version: version, AccessToken: "shared-at", RefreshToken: "shared-rt", TokenType: "Bearer",
		GrantType: "refresh_token", IssuedAt: now, Expiry: now.Add(life)}
}

func (m *memShared) down() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fail
}

func (m *memShared) Load(context.Context) (*SharedEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return nil, errStorageDown
	}
	if m.entry == nil {
		return nil, nil
	}
	e := *m.entry
	return &e, nil
}

func (m *memShared) Store(_ context.Context, e *SharedEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errStorageDown
	}
	c := *e
	m.entry = &c
	m.stores++
	return nil
}

func (m *memShared) Delete(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errStorageDown
	}
	m.entry = nil
	m.deletes++
	return nil
}

func (m *memShared) Lock(ctx context.Context) error {
	if m.down() {
		return errStorageDown
	}
	m.mu.Lock()
	held, whileHeld := m.held, m.whileHeld
	if held && whileHeld != nil {
		whileHeld(m)
	}
	m.mu.Unlock()
	if held {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case m.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memShared) Unlock(context.Context) error {
	select {
	case <-m.lock:
	default:
		panic("unlock of an unlocked memShared")
	}
	return nil
}

func (m *memShared) get() *SharedEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entry == nil {
		return nil
	}
	e := *m.entry
	return &e
}

func (m *memShared) set(f func(m *memShared)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// nextOf waits for the next event of kind k, skipping others.
func (h *harness) nextOf(t *testing.T, k EventKind) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-h.events:
			if ev.Kind == k {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event of kind %d within 10s", k)
		}
	}
}

// advanceUntil moves the clock from one armed timer to the next until an
// event satisfies ok (at most 100 steps).
func (h *harness) advanceUntil(t *testing.T, ok func(Event) bool) {
	t.Helper()
	for range 100 {
		h.advanceToDue(t)
		h.due(t) // the goroutine is idle again: its events are queued
		for {
			select {
			case ev := <-h.events:
				if ok(ev) {
					return
				}
				continue
			default:
			}
			break
		}
	}
	t.Fatal("no such event within 100 timer steps")
}

var errStorageDown = errors.New("storage down")
