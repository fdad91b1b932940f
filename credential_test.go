package groupidauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// faces is what each face says about one credential at one instant.
type faces struct {
	snapshot    tokencache.Condition
	readyStatus int
	readyState  tokencache.Condition
	adminState  tokencache.Condition
	adminExpiry float64
	adminDrops  uint64
	metricState tokencache.Condition // the caddy_groupid_state series that is 1
	metricValid float64
	metricLeft  float64
	metricDrops float64 // caddy_groupid_token_drops_total
}

// lookFaces asks readiness, the admin API and the metrics of app's config
// about its one credential.
func lookFaces(t *testing.T, app *App) faces {
	t.Helper()
	var f faces
	creds := app.list("")
	if len(creds) != 1 {
		t.Fatalf("%d visible credentials, want 1", len(creds))
	}
	f.snapshot = creds[0].snapshot().state

	w := httptest.NewRecorder()
	if err := (Ready{app: app}).ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil), nil); err != nil {
		t.Fatal(err)
	}
	var rd readiness
	if err := json.Unmarshal(w.Body.Bytes(), &rd); err != nil || len(rd.Credentials) != 1 {
		t.Fatalf("readiness body %q: %v", w.Body, err)
	}
	f.readyStatus, f.readyState = w.Code, rd.Credentials[0].State

	w = httptest.NewRecorder()
	if err := (adminAPI{app: app}).handleStatus(w, httptest.NewRequest("GET", "/groupid/status", nil)); err != nil {
		t.Fatal(err)
	}
	var st []credentialStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || len(st) != 1 {
		t.Fatalf("admin status body %q: %v", w.Body, err)
	}
	f.adminState, f.adminExpiry, f.adminDrops = st[0].State, st[0].ExpiresIn, st[0].TokenDrops

	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg, app); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "caddy_groupid_state":
				if m.GetGauge().GetValue() == 1 {
					for _, l := range m.GetLabel() {
						if l.GetName() == "state" {
							f.metricState = tokencache.Condition(l.GetValue())
						}
					}
				}
			case "caddy_groupid_token_valid":
				f.metricValid = m.GetGauge().GetValue()
			case "caddy_groupid_token_expires_in_seconds":
				f.metricLeft = m.GetGauge().GetValue()
			case "caddy_groupid_token_drops_total":
				f.metricDrops = m.GetCounter().GetValue()
			}
		}
	}
	return f
}

// requestStatus is the status a client gets for the typical call; a request
// that would wait for a token request gives up at once (503).
func requestStatus(r *rig) int {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil).WithContext(ctx)
	return r.status(req)
}

// TestEveryFaceAgreesInEveryState drives one credential through its states
// and checks that the request path, readiness, the admin status and the
// metrics say the same thing in each: a token is served exactly when
// requests are forwarded with one.
func TestEveryFaceAgreesInEveryState(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, nil)
	steps := []struct {
		name       string
		act        func()
		want       tokencache.Condition
		wantStatus int
	}{
		{"valid", func() {
			if st, _ := r.getUser(); st != 200 {
				t.Fatalf("warm-up: %d", st)
			}
			r.settle()
		}, tokencache.ConditionValid, 200},
		{"degraded: refreshes fail, token still valid", func() {
			r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.Fault5xx, Status: 503})
			r.advance(16*time.Minute, 30*time.Second) // past the refresh time (at most 15 min), before expiry (20 min)
		}, tokencache.ConditionDegraded, 200},
		{"dropped after a 401 while GroupID is down", func() {
			r.sim.RevokeAllTokens()
			if st, _ := r.getUser(); st != http.StatusServiceUnavailable {
				t.Fatalf("request that met the 401: %d, want 503", st)
			}
			r.settle()
		}, tokencache.ConditionUnavailable, http.StatusServiceUnavailable},
		{"valid again once GroupID is back", func() {
			r.sim.SetFault(groupidsim.Fault{})
			r.advance(2*time.Minute, 5*time.Second)
		}, tokencache.ConditionValid, 200},
		{"expired while GroupID is down", func() {
			r.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
			r.advance(21*time.Minute, 30*time.Second)
		}, tokencache.ConditionUnavailable, http.StatusServiceUnavailable},
		{"rejected: the password changed", func() {
			r.sim.SetPassword("changed-elsewhere")
			r.sim.InvalidateRefreshTokens()
			r.sim.SetFault(groupidsim.Fault{})
			r.advance(21*time.Minute, 30*time.Second)
		}, tokencache.ConditionRejected, http.StatusBadGateway},
	}
	drops := 0.0 // tokens dropped after a 401 so far
	for _, step := range steps {
		step.act()
		f := lookFaces(t, r.h.app)
		if strings.Contains(step.name, "after a 401") {
			drops++
		}
		if f.metricDrops != drops || float64(f.adminDrops) != drops {
			t.Errorf("%s: caddy_groupid_token_drops_total %v, status token_drops %d, want %v", step.name, f.metricDrops, f.adminDrops, drops)
		}
		got := requestStatus(r)
		if f.snapshot != step.want {
			t.Fatalf("%s: snapshot says %s, want %s", step.name, f.snapshot, step.want)
		}
		if got != step.wantStatus {
			t.Errorf("%s: request path gives %d, want %d", step.name, got, step.wantStatus)
		}
		serving := got == 200
		wantReady := map[bool]int{true: 200, false: 503}[serving]
		if f.readyStatus != wantReady || f.readyState != step.want {
			t.Errorf("%s: readiness %d %s, want %d %s", step.name, f.readyStatus, f.readyState, wantReady, step.want)
		}
		if f.adminState != step.want || (f.adminExpiry > 0) != serving {
			t.Errorf("%s: admin status %s expires_in %.0f; request path serving=%v", step.name, f.adminState, f.adminExpiry, serving)
		}
		if f.metricState != step.want || (f.metricValid == 1) != serving || (f.metricLeft > 0) != serving {
			t.Errorf("%s: metrics state %s token_valid %.0f expires_in %.0f; request path serving=%v",
				step.name, f.metricState, f.metricValid, f.metricLeft, serving)
		}
	}
}

// TestStartingCredential: before its first token request a credential is
// "starting" everywhere and serves nothing.
func TestStartingCredential(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	h.app = new(App)
	cfg := startConfig(t, h.app)
	if err := h.Provision(cfg.ctx); err != nil {
		t.Fatal(err)
	}
	// The config runs, but the token source has not started yet (Caddy
	// starts apps one by one: the HTTP app may start first).
	h.app.mu.Lock()
	h.app.running = true
	h.app.mu.Unlock()

	f := lookFaces(t, h.app)
	if f.snapshot != tokencache.ConditionStarting || f.readyStatus != 503 || f.readyState != tokencache.ConditionStarting ||
		f.adminState != tokencache.ConditionStarting || f.metricState != tokencache.ConditionStarting || f.metricValid != 0 {
		t.Fatalf("starting credential: %+v", f)
	}
}

// TestOneNameOneCredentialPerConfig: within one config, two handlers with
// the same settings share a credential, but a second credential under a
// name already in use fails the load with an error that names the field.
func TestOneNameOneCredentialPerConfig(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	provisionIn, _ := oneConfig(t, func() *Handler {
		h := simHandler(tokenURL)
		h.Name = "svc"
		return h
	})
	first, err := provisionIn(func(*Handler) {})
	if err != nil {
		t.Fatal(err)
	}
	same, err := provisionIn(func(*Handler) {})
	if err != nil || same.cred() != first.cred() {
		t.Fatalf("same settings, same name: %v (shared credential: %v)", err, same.cred() == first.cred())
	}
	_, err = provisionIn(func(h *Handler) { h.Timeout = caddy.Duration(7 * time.Second) })
	if err == nil || !strings.HasPrefix(err.Error(), "name: ") {
		t.Fatalf("different settings, same name: %v", err)
	}
	if _, err := provisionIn(func(h *Handler) { h.Name, h.Timeout = "svc-2", caddy.Duration(7*time.Second) }); err != nil {
		t.Fatalf("different settings, own name: %v", err)
	}
}
