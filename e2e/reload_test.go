package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// faceView is what an operator sees of the sidecar, less what moves with
// the clock (seconds left, token age).
type faceView struct {
	ReadyStatus int
	ReadyStates []string
	Status      []map[string]any
	Metrics     []string
}

func (s *rig) faces() faceView {
	s.t.Helper()
	var v faceView
	rd := s.callAfterFailedLoad("GET", ops+"/ready")
	v.ReadyStatus = rd.status
	var ready struct {
		Credentials []struct{ Name, State string }
	}
	if err := json.Unmarshal(rd.body, &ready); err != nil {
		s.t.Fatalf("readiness body %q: %v", rd.body, err)
	}
	for _, c := range ready.Credentials {
		v.ReadyStates = append(v.ReadyStates, c.Name+"="+c.State)
	}
	st := s.callAfterFailedLoad("GET", admin+"/groupid/status")
	if err := json.Unmarshal(st.body, &v.Status); err != nil {
		s.t.Fatalf("status body %q: %v", st.body, err)
	}
	for _, c := range v.Status {
		delete(c, "expires_in_seconds")
		delete(c, "token_age_seconds")
	}
	for name, samples := range scrape(s.t, s) {
		if name == "caddy_groupid_token_expires_in_seconds" {
			continue
		}
		for _, smp := range samples {
			v.Metrics = append(v.Metrics, fmt.Sprintf("%s%v %v", name, smp.labels, smp.value))
		}
	}
	sort.Strings(v.Metrics)
	return v
}

// loadExpectingFailure posts a Caddyfile to the admin API and fails the
// test unless Caddy refuses it.
func (s *rig) loadExpectingFailure(caddyfile string) string {
	s.t.Helper()
	req, err := http.NewRequest("POST", admin+"/load", strings.NewReader(caddyfile))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		s.t.Fatal("the load succeeded; the test needs it to fail")
	}
	return resp.Status + ": " + string(msg)
}

// TestFailedReloadChangesNothingVisible: a reload that fails because a port
// is in use, with the credential's settings unchanged and changed, leaves
// readiness, the admin status, the metrics and traffic exactly as before.
func TestFailedReloadChangesNothingVisible(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		return s.callURL("GET", ops+"/ready", nil).status == 200
	}, "a valid credential")
	token := s.lastRequest("GET", usersPath+"/"+groupidsim.SeedUserID).Authorization

	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	blocked := fmt.Sprintf("\nhttp://localhost:%d {\n\trespond \"never\" 200\n}\n", port)

	for _, tc := range []struct {
		name    string
		timeout string // the token request timeout: part of the credential's settings
	}{
		{"unchanged credential", s.Timeout},
		{"changed credential", "7s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.faces()
			tokensBefore := s.sim.Counters().TokensTotal()
			orig := s.Timeout
			s.Timeout = tc.timeout
			cfg := s.caddyfile() + blocked
			s.Timeout = orig
			t.Logf("load refused: %s", s.loadExpectingFailure(cfg))

			after := s.faces()
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("the failed load changed what operators see:\nbefore %+v\nafter  %+v", before, after)
			}
			if after.ReadyStatus != 200 || len(after.Status) != 1 || after.Status[0]["state"] != "valid" {
				t.Fatalf("not ready after the failed load: %+v", after)
			}
			path := usersPath + "/" + groupidsim.SeedUserID
			if r := s.callAfterFailedLoad("GET", base+path); r.status != 200 {
				t.Fatalf("traffic after the failed load: %d", r.status)
			}
			if got := s.lastRequest("GET", path).Authorization; !reflect.DeepEqual(got, token) {
				t.Fatal("traffic after the failed load carries another token")
			}
			if n := s.sim.Counters().TokensTotal(); n != tokensBefore {
				t.Fatalf("the failed load cost %d token requests", n-tokensBefore)
			}
		})
	}
}
