package groupidsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestControlEndpoints(t *testing.T) {
	h := newHarness(t, testCfg())
	at, rt := h.login()
	h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at, "")
	logged := len(h.sim.Requests())

	r := h.do(http.MethodGet, "/_sim/counters", nil)
	wantStatus(t, r, http.StatusOK)
	var raw map[string]map[string]int
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatalf("counters JSON: %v: %s", err, r.body)
	}
	if raw["TokenRequests"]["password/ok"] != 1 || raw["APICalls"]["200"] != 1 {
		t.Errorf("counters = %s", r.body)
	}

	wantStatus(t, h.do(http.MethodPost, "/_sim/reset", nil), http.StatusOK)
	if h.sim.Counters().TokensTotal() != 0 {
		t.Error("reset did not clear counters")
	}

	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=5xx&status=502", nil), http.StatusOK)
	wantStatus(t, h.token(passwordForm()), http.StatusBadGateway)
	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=slow&delay=1ms", nil), http.StatusOK)
	wantStatus(t, h.token(passwordForm()), http.StatusOK)
	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=none", nil), http.StatusOK)
	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=explode", nil), http.StatusBadRequest)
	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=slow&delay=soon", nil), http.StatusBadRequest)
	wantStatus(t, h.do(http.MethodPost, "/_sim/fault?kind=5xx&status=x", nil), http.StatusBadRequest)

	wantStatus(t, h.do(http.MethodPost, "/_sim/invalidate-refresh", nil), http.StatusOK)
	wantStatus(t, h.token(refreshForm(rt)), http.StatusBadRequest)
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at, ""), http.StatusOK)

	wantStatus(t, h.do(http.MethodPost, "/_sim/revoke", nil), http.StatusOK)
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at, ""), http.StatusUnauthorized)

	wantStatus(t, h.do(http.MethodPost, "/_sim/password", []byte("new pw&=")), http.StatusOK)
	wantStatus(t, h.token(passwordForm()), http.StatusBadRequest)
	f := passwordForm()
	f.Set("password", "new pw&=")
	wantStatus(t, h.token(f), http.StatusOK)
	wantStatus(t, h.do(http.MethodPost, "/_sim/password", nil), http.StatusBadRequest)

	wantStatus(t, h.do(http.MethodGet, "/_sim/reset", nil), http.StatusMethodNotAllowed)
	wantStatus(t, h.do(http.MethodPost, "/_sim/counters", nil), http.StatusMethodNotAllowed)
	wantStatus(t, h.do(http.MethodPost, "/_sim/nothing", nil), http.StatusNotFound)

	for _, req := range h.sim.Requests() {
		if strings.HasPrefix(req.Path, "/_sim/") {
			t.Errorf("control call recorded: %s", req.Path)
		}
	}
	// Logged since: 2 fault-phase grants, 1 refresh, 2 API calls, 2 grants.
	if got := len(h.sim.Requests()) - logged; got != 7 {
		t.Errorf("%d requests recorded after the control calls began", got)
	}
}
