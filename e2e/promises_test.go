package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// Issue 17, "promises tested at their defaults": README promises that had
// no test, or only tests with a changed setting, checked here through a
// real Caddy with the sidecar's defaults (see docs/promises.md). Each test
// edits the harness's Caddyfile only where the promise is about the edit.

// edit replaces the first old in cfg with new, failing the test if cfg
// has no old (the harness's Caddyfile changed).
func edit(t *testing.T, cfg, old, new string) string {
	t.Helper()
	if !strings.Contains(cfg, old) {
		t.Fatalf("the harness's Caddyfile has no %q", old)
	}
	return strings.Replace(cfg, old, new, 1)
}

// logLines returns the lines of the Caddy log written after offset bytes
// that contain every one of parts.
func (s *rig) logLines(offset int, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(readFile(s.t, s.logFile)[offset:], "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// logSize is the length of the Caddy log so far (0 before Caddy wrote it).
func (s *rig) logSize() int {
	fi, err := os.Stat(s.logFile)
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

// TestPromiseLogsShowOnlyTheClientsAuthorization checks README "Logs":
// "access logs, reverse_proxy's debug upstream roundtrip line and
// {http.request.header.Authorization} show the client's own header (if
// any), whatever log_credentials says. {http.vars.groupid_auth} is the
// credential's name while the request is bound to it." and "Each refused
// request is also logged by Caddy itself (logger http.log.error, level
// error for 5xx)"; and "Security": override headers are "removed from every
// request that carries the token, after header_up and request_header ran".
func TestPromiseLogsShowOnlyTheClientsAuthorization(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	cfg := edit(t, s.caddyfile(), "\tpersist_config off\n", "\tpersist_config off\n\tservers {\n\t\tlog_credentials\n\t}\n")
	cfg = edit(t, cfg, "\thandle @groupid {\n", "\thandle @groupid {\n"+
		"\t\theader >X-Seen-Authorization \"{http.request.header.Authorization}\"\n"+
		"\t\theader >X-Groupid-Credential \"{http.vars.groupid_auth}\"\n"+
		"\t\trequest_header X-HTTP-Method-Override DELETE\n")
	cfg = edit(t, cfg, "\t\t\ttransport groupid {", "\t\t\theader_up X-Original-URL "+logsPath+"\n\t\t\ttransport groupid {")
	cfg = edit(t, cfg, "\thandle /public/* {\n", "\thandle /public/* {\n\t\trequest_header X-HTTP-Method-Override DELETE\n")
	cfg = edit(t, cfg, "\t\t\ttransport http {", "\t\t\theader_up X-Original-URL "+logsPath+"\n\t\t\ttransport http {")
	s.tester.InitServer(cfg, "caddyfile")

	const clientAuth = "Basic bGVnYWN5OmNsaWVudA=="
	path := usersPath + "/" + groupidsim.SeedUserID
	r := s.call("GET", path, nil, "Authorization", clientAuth)
	if r.status != 200 || r.header.Get("X-Seen-Authorization") != clientAuth || r.header.Get("X-Groupid-Credential") != s.credentialName() {
		t.Fatalf("status %d; {http.request.header.Authorization} %q, {http.vars.groupid_auth} %q; want the client's own header and %q",
			r.status, r.header.Get("X-Seen-Authorization"), r.header.Get("X-Groupid-Credential"), s.credentialName())
	}
	overrides := func(h http.Header) (n int) {
		for k := range h {
			if k := strings.ToLower(k); strings.Contains(k, "method-override") || strings.Contains(k, "original-url") {
				n++
			}
		}
		return n
	}
	if got := s.lastRequest("GET", path); len(got.Authorization) != 1 || got.Authorization[0] != s.bearerOf(0) || overrides(got.Header) != 0 {
		t.Errorf("GroupID got %d Authorization values and %d override headers; want the token alone", len(got.Authorization), overrides(got.Header))
	}
	s.call("GET", "/public/readme", nil)
	if n := overrides(s.lastRequest("GET", "/public/readme").Header); n != 2 {
		t.Fatalf("the test's premise: the header operations add %d override headers on a route without the token, want 2", n)
	}

	// GroupID revokes the token while its token endpoint is down: 503.
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	s.sim.RevokeAllTokens()
	if r := s.call("GET", path, nil, "Authorization", clientAuth); r.status != http.StatusServiceUnavailable {
		t.Fatalf("revoked while GroupID is down: %d", r.status)
	}
	if len(s.logLines(0, clientAuth)) == 0 {
		t.Fatal("the test's premise: with log_credentials the log shows the client's Authorization")
	}
	for _, tok := range s.sim.IssuedTokens() {
		if len(s.logLines(0, tok)) != 0 {
			t.Error("the log holds the token (value not shown)")
		}
	}
	if len(s.logLines(0, `"upstream roundtrip"`, clientAuth)) == 0 {
		t.Error("no upstream roundtrip line shows the client's own header")
	}
	// The logger is http.log.error, or its child (….log0) for a site with a log directive.
	if len(s.logLines(0, `"level":"error"`, `"logger":"http.log.error`, `"status":503`)) != 1 {
		t.Error("the refused request is not logged by http.log.error at level error")
	}
}

// TestPromiseRefusalsCanBeShapedByHandleErrors checks README "When no
// valid token can be had": "The request is not forwarded. groupid_auth
// [...] returns a Caddy HTTP error (shape it with handle_errors if you
// like)", for the 503 and the 502.
func TestPromiseRefusalsCanBeShapedByHandleErrors(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	shaped := func() string {
		return edit(t, s.caddyfile(), "\t@groupid path", "\thandle_errors {\n\t\trespond \"shaped {err.status_code}\" {err.status_code}\n\t}\n\t@groupid path")
	}
	s.tester.InitServer(shaped(), "caddyfile")
	path := usersPath + "/" + groupidsim.SeedUserID
	if r := s.call("GET", path, nil); r.status != 503 || string(r.body) != "shaped 503" {
		t.Errorf("GroupID down: %d %q, want handle_errors' 503", r.status, r.body)
	} else {
		t.Logf("Retry-After through handle_errors: %q", r.header.Get("Retry-After"))
	}
	s.sim.SetFault(groupidsim.Fault{})
	s.Password = "not-the-password"
	s.tester.InitServer(shaped(), "caddyfile")
	if r := s.call("GET", path, nil); r.status != 502 || string(r.body) != "shaped 502" {
		t.Errorf("wrong password: %d %q, want handle_errors' 502", r.status, r.body)
	}
	for _, rq := range s.sim.Requests() {
		if !strings.HasSuffix(rq.Path, "/connect/token") {
			t.Errorf("a refused request reached GroupID: %s %s", rq.Method, rq.Path)
		}
	}
}

// TestPromiseTransportRefusalIsAFailedAttempt checks README "When no
// valid token can be had": "A refusal by the transport counts, for
// reverse_proxy, as a failed attempt: with lb_retries a GET is tried again
// (and refused again, at no cost to GroupID), and with passive health
// checks (fail_duration) it counts as a failure of the upstream."
func TestPromiseTransportRefusalIsAFailedAttempt(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.tester.InitServer(edit(t, s.caddyfile(), "\t\t\ttransport groupid {", "\t\t\tlb_retries 2\n\t\t\ttransport groupid {"), "caddyfile")
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	seen := len(s.sim.Requests())
	for _, c := range []struct {
		method   string
		attempts int
	}{{"GET", 3}, {"POST", 1}} {
		from := s.logSize()
		if r := s.call(c.method, logsPath, []byte("{}")); r.status != http.StatusForbidden {
			t.Errorf("%s of the log download: %d, want the transport's 403", c.method, r.status)
		}
		if n := len(s.logLines(from, `"upstream roundtrip"`, "not sending the groupid token")); n != c.attempts {
			t.Errorf("%s with lb_retries 2: %d refused attempts, want %d", c.method, n, c.attempts)
		}
	}
	if n := len(s.sim.Requests()) - seen; n != 0 {
		t.Errorf("the refused attempts cost GroupID %d requests", n)
	}
	s.tester.InitServer(edit(t, s.caddyfile(), "\t\t\ttransport groupid {", "\t\t\tfail_duration 30s\n\t\t\ttransport groupid {"), "caddyfile")
	if r := s.call("GET", logsPath, nil); r.status != http.StatusForbidden {
		t.Fatalf("log download: %d", r.status)
	}
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("after one refusal with fail_duration: %d, want 503 (the upstream counted as failed)", r.status)
	}
}

// TestPromiseTransportRefusalLogsThePath checks README "When no valid
// token can be had": "403 Forbidden | the path as it leaves reverse_proxy
// [...] is not <api_base>/IdentityStores/<identity_store_id>/Users… or
// …/Groups…; the error log names the path", at Caddy's default log level.
func TestPromiseTransportRefusalLogsThePath(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.tester.InitServer(edit(t, s.caddyfile(), "\t\tlevel DEBUG\n", ""), "caddyfile")
	if r := s.call("GET", logsPath, nil); r.status != http.StatusForbidden {
		t.Fatalf("log download: %d", r.status)
	}
	if len(s.logLines(0, "not sending the groupid token to", logsPath)) == 0 {
		t.Error("no log line names the refused path")
	}
}
