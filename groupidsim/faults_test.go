package groupidsim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultDownDropsConnection(t *testing.T) {
	h := newHarness(t, testCfg())
	h.sim.SetFault(Fault{Kind: FaultDown})
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+tokenPath, strings.NewReader(passwordForm().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d), want a transport error", resp.StatusCode)
	}
	c := h.sim.Counters()
	if c.TokenRequests["password/fault"] != 1 || c.TokensTotal() != 1 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
	if reqs := h.sim.Requests(); len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("requests = %+v", reqs)
	}
	// The Data API is not affected by token endpoint faults.
	wantStatus(t, h.do(http.MethodGet, dataAPI+"/Users/"+SeedUserID, nil), http.StatusUnauthorized)

	h.sim.SetFault(Fault{Kind: FaultNone})
	wantStatus(t, h.token(passwordForm()), http.StatusOK)
}

func TestFaultSlowHonoursCancel(t *testing.T) {
	h := newHarness(t, testCfg())
	h.sim.SetFault(Fault{Kind: FaultSlow, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+tokenPath, strings.NewReader(passwordForm().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := h.srv.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// Close waits for every handler: it returns only if the hour-long
	// delay gave up when the client went away.
	h.srv.Close()
	c := h.sim.Counters()
	if c.TokenRequests["password/fault"] != 1 || len(h.sim.IssuedTokens()) != 0 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
	if reqs := h.sim.Requests(); len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestFaultSlowThenAnswers(t *testing.T) {
	h := newHarness(t, testCfg())
	h.sim.SetFault(Fault{Kind: FaultSlow, Delay: 20 * time.Millisecond})
	start := time.Now()
	r := h.token(passwordForm())
	wantStatus(t, r, http.StatusOK)
	if time.Since(start) < 20*time.Millisecond {
		t.Error("answered before the delay")
	}
	hasNoStore(t, r)
	if c := h.sim.Counters(); c.TokenRequests["password/ok"] != 1 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
}

func TestFault5xx(t *testing.T) {
	h := newHarness(t, testCfg())
	h.sim.SetFault(Fault{Kind: Fault5xx})
	r := h.token(passwordForm())
	wantStatus(t, r, http.StatusServiceUnavailable)
	contentTypeIs(t, r, "text/plain")
	if !strings.Contains(string(r.body), "Service Unavailable") {
		t.Errorf("body = %q", r.body)
	}
	h.sim.SetFault(Fault{Kind: Fault5xx, Status: http.StatusBadGateway})
	wantStatus(t, h.token(refreshForm("x")), http.StatusBadGateway)
	c := h.sim.Counters()
	if c.TokenRequests["password/fault"] != 1 || c.TokenRequests["refresh_token/fault"] != 1 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
	// Faults come before validation: even a GET gets the fault.
	wantStatus(t, h.do(http.MethodGet, tokenPath, nil), http.StatusBadGateway)
}

func TestFaultGarbage200(t *testing.T) {
	h := newHarness(t, testCfg())
	h.sim.SetFault(Fault{Kind: FaultGarbage200})
	r := h.token(passwordForm())
	wantStatus(t, r, http.StatusOK)
	contentTypeIs(t, r, "text/html")
	if !strings.HasPrefix(string(r.body), "<html>") {
		t.Errorf("body = %q", r.body)
	}
	if h.sim.Counters().TokenRequests["password/fault"] != 1 || len(h.sim.IssuedTokens()) != 0 {
		t.Errorf("counters = %v", h.sim.Counters().TokenRequests)
	}
}

func TestFaultKindNames(t *testing.T) {
	for k := FaultNone; k <= FaultGarbage200; k++ {
		got, err := ParseFaultKind(k.String())
		if err != nil || got != k {
			t.Errorf("%v round trip: %v %v", k, got, err)
		}
	}
	if _, err := ParseFaultKind("boom"); err == nil {
		t.Error("unknown kind accepted")
	}
}
