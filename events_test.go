package groupidauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// eventRecorder stands in for Caddy's events app: it records what the
// groupid app emits, and with which config's context.
type eventRecorder struct {
	mu     sync.Mutex
	events []recordedEvent
}

type recordedEvent struct {
	name string
	data map[string]any
	ctx  context.Context
}

func (r *eventRecorder) Emit(ctx caddy.Context, name string, data map[string]any) caddy.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recordedEvent{name, data, ctx.Context})
	return caddy.Event{}
}

// since returns the events recorded after the first n.
func (r *eventRecorder) since(n int) []recordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedEvent(nil), r.events[n:]...)
}

// await waits (in real time: the app emits on a goroutine of its own)
// until events after the first n include every one of want, in that
// order, and returns them.
func (r *eventRecorder) await(t *testing.T, n int, want ...string) []recordedEvent {
	t.Helper()
	var got []recordedEvent
	testenv.Eventually(t, 10*time.Second, func() error {
		got = r.since(n)
		if !inOrder(got, want) {
			return fmt.Errorf("events %s, want %v in order", describe(got), want)
		}
		return nil
	}, fmt.Sprint("the events ", want))
	return got
}

// inOrder reports whether want is a subsequence of the names of got.
func inOrder(got []recordedEvent, want []string) bool {
	i := 0
	for _, e := range got {
		if i < len(want) && matches(e, want[i]) {
			i++
		}
	}
	return i == len(want)
}

// matches reports whether e is the event w names: "name" or, for state
// changes, "state:from>to" (each may be alternatives: "starting|refreshing").
func matches(e recordedEvent, w string) bool {
	if transition, ok := strings.CutPrefix(w, "state:"); ok {
		from, to, _ := strings.Cut(transition, ">")
		return e.name == eventStateChanged && oneOf(e.data["from"], from) && oneOf(e.data["to"], to)
	}
	return e.name == w
}

// oneOf reports whether v is one of the |-separated alternatives.
func oneOf(v any, alternatives string) bool {
	return strings.Contains("|"+alternatives+"|", "|"+fmt.Sprint(v)+"|")
}

func describe(evs []recordedEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %v", e.name, e.data)
	}
	return b.String()
}

// first returns the first event named name in evs.
func first(t *testing.T, evs []recordedEvent, name string) map[string]any {
	t.Helper()
	for _, e := range evs {
		if e.name == name {
			return e.data
		}
	}
	t.Fatalf("no %s in %s", name, describe(evs))
	return nil
}

// TestEventsTellATokensLife: the groupid app emits, in order and with
// their data, the events of a cold start, a refresh, an outage and its
// healing, a 401 drop and a rejection, all with its config's context; a
// reloaded config's app emits the later ones; no event carries a secret.
func TestEventsTellATokensLife(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, nil)
	rec := r.h.app.events.(*eventRecorder)

	if st, _ := r.getUser(); st != 200 {
		t.Fatalf("cold start: %d", st)
	}
	evs := rec.await(t, 0, eventTokenObtained, "state:starting>valid")
	got := first(t, evs, eventTokenObtained)
	if got["credential"] != r.h.Name || got["grant_type"] != "password" || got["token_source"] != "own" ||
		got["expires_in"] != int64(groupidsim.DefaultTokenLifetime/time.Second) {
		t.Fatalf("obtained: %v", got)
	}
	for _, e := range evs {
		if e.ctx != r.h.app.queue.ctx.Context {
			t.Fatalf("%s emitted with another context than its config's", e.name)
		}
	}

	n := len(rec.since(0))
	r.advance(16*time.Minute, 30*time.Second) // past the refresh time, before expiry
	evs = rec.await(t, n, eventTokenObtained)
	if got := first(t, evs, eventTokenObtained); got["grant_type"] != "refresh_token" {
		t.Fatalf("refresh: %v", got)
	}
	if strings.Contains(describe(evs), eventStateChanged) {
		t.Fatalf("a refresh changed the state: %s", describe(evs))
	}

	n = len(rec.since(0))
	r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	r.h.cred().src.ForceRefresh()
	evs = rec.await(t, n, eventTokenFailed, "state:valid>degraded")
	got = first(t, evs, eventTokenFailed)
	retry, err := time.Parse(time.RFC3339, fmt.Sprint(got["retry_at"]))
	if got["class"] != "transient" || got["status"] != 503 || err != nil || !retry.After(r.clk.Now().Add(-time.Second)) {
		t.Fatalf("failed: %v", got)
	}
	n = len(rec.since(0))
	r.sim.SetFault(groupidsim.Fault{})
	r.advance(2*time.Minute, 5*time.Second)
	rec.await(t, n, eventTokenObtained, "state:degraded>valid")

	// A reload: the new config's app emits from now on.
	r.settle()
	reloaded := simHandler(r.h.TokenURL)
	reloaded.app = r.newApp()
	if err := provision(t, reloaded); err != nil {
		t.Fatal(err)
	}
	if reloaded.cred() != r.h.cred() {
		t.Fatal("the reloaded config has a credential of its own; the test needs the same one")
	}
	if err := retire(r.h); err != nil {
		t.Fatal(err)
	}
	firstRec, old := rec, len(rec.since(0))
	rec = reloaded.app.events.(*eventRecorder)
	r.h = reloaded

	r.sim.RevokeAllTokens()
	if st, _ := r.getUser(); st != 200 {
		t.Fatalf("after the 401: %d", st)
	}
	evs = rec.await(t, 0, eventTokenDropped, "state:valid>starting|refreshing", eventTokenObtained, "state:starting|refreshing>valid")
	if got := first(t, evs, eventTokenDropped); got["credential"] != r.h.Name {
		t.Fatalf("dropped: %v", got)
	}

	n = len(rec.since(0))
	r.sim.SetPassword("changed-elsewhere")
	r.sim.RevokeAllTokens()
	if st, _ := r.getUser(); st != http.StatusBadGateway {
		t.Fatalf("rejected: %d", st)
	}
	evs = rec.await(t, n, eventTokenDropped, eventTokenFailed, "state:starting|refreshing>rejected")
	if got := first(t, evs, eventTokenFailed); got["class"] != "rejected" || got["oauth_error"] == "" || got["grant_type"] != "password" {
		t.Fatalf("failed: %v", got)
	}
	for _, e := range rec.since(0) {
		if e.ctx != reloaded.app.queue.ctx.Context {
			t.Fatalf("%s emitted with another context than the running config's", e.name)
		}
	}
	if late := firstRec.since(old); len(late) > 0 {
		t.Fatalf("the retired config's app emitted after it stopped: %s", describe(late))
	}
	noSecretInEvents(t, r.sim, append(firstRec.since(0), rec.since(0)...))
}

// noSecretIn fails the test if an event's data holds a secret or a token
// the simulator issued.
func noSecretInEvents(t *testing.T, sim *groupidsim.Server, evs []recordedEvent) {
	t.Helper()
	secrets := simSecrets(sim, "changed-elsewhere")
	for _, e := range evs {
		b, err := json.Marshal(e.data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				t.Fatalf("event %s carries a secret (redacted)", e.name)
			}
		}
	}
}

// blockingEmitter is an events app whose handler never returns until
// released.
type blockingEmitter struct{ entered, release chan struct{} }

func (b blockingEmitter) Emit(caddy.Context, string, map[string]any) caddy.Event {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return caddy.Event{}
}

// TestSlowEventHandlerNeverBlocks: with a handler that does not return,
// sending events never waits; past the queue's size they are dropped
// with one warning.
func TestSlowEventHandlerNeverBlocks(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.WarnLevel)
	ctx, cancel := newTestContext()
	defer cancel()
	em := blockingEmitter{make(chan struct{}, 1), make(chan struct{})}
	q := newEventQueue(ctx, em, zap.New(core))
	q.start()
	defer func() { close(em.release); q.end() }()
	// The goroutine is stuck in the handler first: the queue then fills
	// once and stays full, so the drops are one run (one warning). (Were
	// it to take an event only after the queue filled, a slot would free
	// between two drops and start a second run.)
	q.send("groupid_test", map[string]any{"i": -1})
	select {
	case <-em.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the event goroutine never called the handler")
	}
	sent := make(chan struct{})
	go func() {
		for i := range 3 * eventQueueSize {
			q.send("groupid_test", map[string]any{"i": i})
		}
		close(sent)
	}()
	testenv.Eventually(t, 10*time.Second, func() bool {
		select {
		case <-sent:
			return true
		default:
			return false
		}
	}, "the sends, which must not wait for the handler")
	if n := logs.FilterMessageSnippet("too slow").Len(); n != 1 {
		t.Fatalf("%d warnings about the slow handler, want 1", n)
	}
}
