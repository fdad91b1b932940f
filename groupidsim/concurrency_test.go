package groupidsim

import (
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentUse exercises the shared state under the race detector.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, testCfg())
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				r := h.token(passwordForm())
				if r.status != http.StatusOK {
					t.Errorf("grant: %d", r.status)
					return
				}
				m := r.json(t)
				at := m["access_token"].(string)
				if r := h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID+"/Groups", at, ""); r.status != http.StatusOK {
					t.Errorf("groups: %d", r.status)
				}
				h.token(refreshForm(m["refresh_token"].(string)))
				h.sim.Counters()
				h.sim.Requests()
			}
		}()
	}
	wg.Wait()
	c := h.sim.Counters()
	if c.TokenRequests["password/ok"] != 80 || c.TokenRequests["refresh_token/ok"] != 80 || c.APICalls[200] != 80 {
		t.Errorf("counters = %+v", c)
	}
}
