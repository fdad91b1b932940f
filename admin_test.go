package groupidauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

func apiStatus(err error) int {
	var ae caddy.APIError
	if errors.As(err, &ae) {
		return ae.HTTPStatus
	}
	return 0
}

func TestAdminStatusShowsNoSecretAndFiltersByName(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Name = "svc-a" })
	r.getUser()
	r.settle()
	a := adminAPI{app: r.h.app}
	w := httptest.NewRecorder()
	if err := a.handleStatus(w, httptest.NewRequest("GET", "/groupid/status", nil)); err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	for _, secret := range append(r.sim.IssuedTokens(), groupidsim.DefaultPassword, groupidsim.DefaultClientSecret) {
		if strings.Contains(body, secret) {
			t.Fatal("admin status shows a secret or a token")
		}
	}
	var st []credentialStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || len(st) != 1 {
		t.Fatalf("%v %s", err, body)
	}
	if st[0].Name != "svc-a" || st[0].State != tokencache.ConditionValid || st[0].TokenRequests["password/ok"] != 1 ||
		st[0].RequestsInjected != 1 || st[0].Replays != st[0].ReplaysAfter401 {
		t.Fatalf("status %+v", st[0])
	}
	w = httptest.NewRecorder()
	if err := a.handleStatus(w, httptest.NewRequest("GET", "/groupid/status?name=other", nil)); err != nil || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Fatalf("unknown name: %v %s", err, w.Body)
	}
	if err := a.handleStatus(httptest.NewRecorder(), httptest.NewRequest("POST", "/groupid/status", nil)); apiStatus(err) != http.StatusMethodNotAllowed {
		t.Fatalf("POST status: %v", err)
	}
}

func TestAdminRefreshForcesOneTokenRequest(t *testing.T) {
	t.Parallel() // the rig's seams are its app's options
	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Name = "svc-a" })
	r.getUser()
	r.settle()
	a := adminAPI{app: r.h.app}
	if err := a.handleRefresh(httptest.NewRecorder(), httptest.NewRequest("GET", "/groupid/refresh", nil)); apiStatus(err) != http.StatusMethodNotAllowed {
		t.Fatalf("GET refresh: %v", err)
	}
	if err := a.handleRefresh(httptest.NewRecorder(), httptest.NewRequest("POST", "/groupid/refresh?name=other", nil)); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("unknown name: %v", err)
	}
	before := r.tokenRequests()
	w := httptest.NewRecorder()
	if err := a.handleRefresh(w, httptest.NewRequest("POST", "/groupid/refresh?name=svc-a", nil)); err != nil || w.Code != http.StatusAccepted {
		t.Fatalf("refresh: %v %d", err, w.Code)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return r.tokenRequests() > before }, "the forced token request")
	r.settle()
	if got := r.tokenRequests() - before; got != 1 {
		t.Fatalf("forced refresh made %d token requests, want 1", got)
	}
}
