package e2e

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
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

func init() {
	caddy.RegisterModule(eventRecorder{})
}

// eventRecorder is an events handler (Caddyfile: `events { on * groupid_test_recorder }`)
// that records every event it is given in recorded.
type eventRecorder struct{}

func (eventRecorder) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.groupid_test_recorder", New: func() caddy.Module { return new(eventRecorder) }}
}

func (*eventRecorder) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	return nil
}

func (*eventRecorder) Handle(_ context.Context, e caddy.Event) error {
	if !strings.HasPrefix(e.Name(), "groupid_") {
		return nil
	}
	origin := ""
	if e.Origin() != nil {
		origin = string(e.Origin().CaddyModule().ID)
	}
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	recorded.events = append(recorded.events, seenEvent{e.Name(), origin, e.Data})
	return nil
}

type seenEvent struct {
	name, origin string
	data         map[string]any
}

var recorded struct {
	mu     sync.Mutex
	events []seenEvent
}

func eventsSince(n int) []seenEvent {
	recorded.mu.Lock()
	defer recorded.mu.Unlock()
	return append([]seenEvent(nil), recorded.events[n:]...)
}

// awaitEvents waits until the events after the first n include want in
// that order (a name, or "state:from>to" with |-separated alternatives)
// and returns them.
func awaitEvents(t *testing.T, n int, want ...string) []seenEvent {
	t.Helper()
	var got []seenEvent
	testenv.Eventually(t, 15*time.Second, func() error {
		got = eventsSince(n)
		i := 0
		for _, e := range got {
			if i < len(want) && eventIs(e, want[i]) {
				i++
			}
		}
		if i < len(want) {
			return fmt.Errorf("events %v, want %v in order", got, want)
		}
		return nil
	}, fmt.Sprint("the events ", want))
	return got
}

func eventIs(e seenEvent, w string) bool {
	transition, ok := strings.CutPrefix(w, "state:")
	if !ok {
		return e.name == w
	}
	from, to, _ := strings.Cut(transition, ">")
	in := func(v any, alts string) bool { return strings.Contains("|"+alts+"|", "|"+fmt.Sprint(v)+"|") }
	return e.name == "groupid_state_changed" && in(e.data["from"], from) && in(e.data["to"], to)
}

func firstEvent(t *testing.T, evs []seenEvent, name string) map[string]any {
	t.Helper()
	for _, e := range evs {
		if e.name == name {
			return e.data
		}
	}
	t.Fatalf("no %s in %v", name, evs)
	return nil
}

// eventsConfig is a named credential svc used by one site whose access
// log has the groupid_auth placeholders, with a subscription of the test
// recorder to every event; extra goes into the site (a reload).
func (s *rig) eventsConfig(extra string) string {
	cfg := s.namedConfig(map[string]string{"svc": "2"}, "10s", fmt.Sprintf(`
http://localhost:%d {
	log {
		output file %s
	}
	log_append gid_credential {http.groupid_auth.credential}
	log_append gid_source {http.groupid_auth.token_source}
	log_append gid_replayed {http.groupid_auth.replayed}
	log_append gid_expires_in {http.groupid_auth.token_expires_in}
	route /GroupIDDataService/* {
		groupid_auth svc
		reverse_proxy %s {
			header_down X-Gid-Replayed {http.groupid_auth.replayed}
			transport groupid {
				tls_trust_pool file %s
			}
		}
	}
	%s
}
`, httpPort, s.logFile, s.run.URL, s.caFile, extra))
	return strings.Replace(cfg, "\tgroupid {\n", "\tevents {\n\t\ton * groupid_test_recorder\n\t}\n\tgroupid {\n", 1)
}

// accessLine is the access log line of the latest request to path.
func (s *rig) accessLine(offset int, path string) map[string]any {
	s.t.Helper()
	var line map[string]any
	testenv.Eventually(s.t, 10*time.Second, func() bool {
		lines := s.logLines(offset, `"http.log.access`, path)
		return len(lines) > 0 && json.Unmarshal([]byte(lines[len(lines)-1]), &line) == nil
	}, "the access log line of "+path)
	return line
}

// TestEventsAndPlaceholders: a real Caddy's events subscription records the
// events of a cold start, a refresh, an outage and its healing, a 401 drop
// and, after a reload, another drop and a rejection, in order, with their
// data, from the groupid app, and none carries a secret; the access log
// and header_down show the groupid_auth placeholders.
func TestEventsAndPlaceholders(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	n := len(eventsSince(0))
	s.tester.InitServer(s.eventsConfig(""), "caddyfile")
	evs := awaitEvents(t, n, "groupid_token_obtained", "state:starting>valid")
	got := firstEvent(t, evs, "groupid_token_obtained")
	if got["credential"] != "svc" || got["grant_type"] != "password" || got["token_source"] != "own" {
		t.Fatalf("cold start: %v", got)
	}
	if in, ok := got["expires_in"].(int64); !ok || in < 1100 || in > 1200 {
		t.Fatalf("cold start expires_in: %v", got["expires_in"])
	}
	for _, e := range evs {
		if e.origin != "groupid" {
			t.Fatalf("%s came from %q, want the groupid app", e.name, e.origin)
		}
	}

	user := base + usersPath + "/" + groupidsim.SeedUserID
	off := s.logSize()
	if r := s.getFrom(user, http.StatusOK); r.header.Get("X-Gid-Replayed") != "false" {
		t.Fatalf("header_down replayed: %q", r.header.Get("X-Gid-Replayed"))
	}
	line := s.accessLine(off, usersPath)
	if line["gid_credential"] != "svc" || line["gid_source"] != "own" || line["gid_replayed"] != false {
		t.Fatalf("access log: %v", line)
	}
	if in, ok := line["gid_expires_in"].(float64); !ok || in < 1 || in > 1200 || in != float64(int(in)) {
		t.Fatalf("access log gid_expires_in: %v", line["gid_expires_in"])
	}

	n = len(eventsSince(0))
	s.callURL("POST", admin+"/groupid/refresh", nil)
	if got := firstEvent(t, awaitEvents(t, n, "groupid_token_obtained"), "groupid_token_obtained"); got["grant_type"] != "refresh_token" {
		t.Fatalf("refresh: %v", got)
	}

	n = len(eventsSince(0))
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
	s.callURL("POST", admin+"/groupid/refresh", nil)
	got = firstEvent(t, awaitEvents(t, n, "groupid_token_failed", "state:valid>degraded"), "groupid_token_failed")
	if got["class"] != "transient" || got["status"] != 503 || got["retry_at"] == "" {
		t.Fatalf("outage: %v", got)
	}
	n = len(eventsSince(0))
	s.sim.SetFault(groupidsim.Fault{})
	s.callURL("POST", admin+"/groupid/refresh", nil)
	awaitEvents(t, n, "groupid_token_obtained", "state:degraded>valid")

	n, off = len(eventsSince(0)), s.logSize()
	s.sim.RevokeAllTokens()
	if r := s.getFrom(user, http.StatusOK); r.header.Get("X-Gid-Replayed") != "true" {
		t.Fatalf("header_down after a replay: %q", r.header.Get("X-Gid-Replayed"))
	}
	awaitEvents(t, n, "groupid_token_dropped", "state:valid>starting|refreshing", "groupid_token_obtained", "state:starting|refreshing>valid")
	if line := s.accessLine(off, usersPath); line["gid_replayed"] != true || line["gid_credential"] != "svc" {
		t.Fatalf("access log after a replay: %v", line)
	}

	// A reload (the routes change, the credential does not): the new
	// config's app reports from now on.
	s.tester.InitServer(s.eventsConfig("handle /extra {\n\t\trespond \"extra\" 200\n\t}"), "caddyfile")
	n = len(eventsSince(0))
	s.sim.SetPassword("changed-elsewhere")
	s.sim.RevokeAllTokens()
	s.getFrom(user, http.StatusBadGateway)
	evs = awaitEvents(t, n, "groupid_token_dropped", "groupid_token_failed", "state:starting|refreshing>rejected")
	got = firstEvent(t, evs, "groupid_token_failed")
	if got["class"] != "rejected" || got["oauth_error"] == "" || got["credential"] != "svc" {
		t.Fatalf("rejection: %v", got)
	}

	secrets := append([]string{s.Password, s.ClientSecret, "changed-elsewhere"}, append(s.sim.IssuedTokens(), s.sim.IssuedRefreshTokens()...)...)
	for _, e := range eventsSince(0) {
		b, _ := json.Marshal(e.data)
		for _, sec := range secrets {
			if sec != "" && strings.Contains(string(b), sec) {
				t.Fatalf("event %s carries a secret (redacted)", e.name)
			}
		}
	}
}
