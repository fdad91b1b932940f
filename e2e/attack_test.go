package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// The adversarial suite: what a hostile client, a hostile or broken token
// endpoint, or an unlucky operator can send, run against a real Caddy in
// front of the simulator. Time-dependent points that need hours of GroupID
// behaviour (a rotated password healed after a rejection, then a reload)
// run at the handler level on a fake clock (faults_test.go).

// TestAttackConnectionHeaderCannotStripTheToken: clients that name
// Authorization in their Connection header, during a token endpoint outage
// with a valid token held, cause no token request, no 401 at GroupID and no
// refusal for anyone.
func TestAttackConnectionHeaderCannotStripTheToken(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	path := usersPath + "/" + groupidsim.SeedUserID
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultDown})
	before := s.sim.Counters()
	hostile := []string{"Authorization", "authorization", "close, AUTHORIZATION", "keep-alive,\tAuthorization ", "x, y, Authorization, z"}
	var wg sync.WaitGroup
	statuses := make(chan int, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				statuses <- s.call("GET", path, nil, "Connection", hostile[i/2%len(hostile)]).status
			} else {
				statuses <- s.call("GET", path, nil).status
			}
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("a client got %d", st)
		}
	}
	after := s.sim.Counters()
	if n := after.TokensTotal() - before.TokensTotal(); n != 0 {
		t.Errorf("hostile Connection headers cost %d token requests", n)
	}
	if n := after.APICalls[401] - before.APICalls[401]; n != 0 {
		t.Errorf("GroupID answered 401 %d times: the token was stripped", n)
	}
}

// TestAttackNoExpiredTokenWhileRefreshHangs: the token endpoint hangs past
// the token's expiry; GroupID never sees an expired token (no 401), and
// clients get their answers once the refresh completes.
func TestAttackNoExpiredTokenWhileRefreshHangs(t *testing.T) {
	s := newRig(t, groupidsim.Config{TokenLifetime: 6 * time.Second})
	s.load()
	path := usersPath + "/" + groupidsim.SeedUserID
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	// The refresh (due 3.75-4.5 s after issue) hangs 3 s: past the expiry,
	// yet its token (valid 6 s from the request) arrives still valid.
	s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultSlow, Delay: 3 * time.Second})
	before := s.sim.Counters()
	end := time.Now().Add(9 * time.Second)
	for time.Now().Before(end) {
		if r := s.call("GET", path, nil); r.status != 200 {
			t.Fatalf("client got %d", r.status)
		}
		time.Sleep(20 * time.Millisecond) // pacing the client, not timing the sidecar
	}
	if n := s.sim.Counters().APICalls[401] - before.APICalls[401]; n != 0 {
		t.Fatalf("GroupID got an expired token %d times", n)
	}
}

// TestAttackEncodedPathsAreRefused: encoded separators, NULs and double
// encoding never reach GroupID with the token.
func TestAttackEncodedPathsAreRefused(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	s.load()
	seen := len(s.sim.Requests())
	// Matched as a Users path once decoded: the handler refuses it.
	if r := s.call("GET", "/GroupIDDataService/api/IdentityStores/2%2FUsers", nil); r.status != http.StatusBadRequest {
		t.Errorf("encoded slash: %d, want 400", r.status)
	}
	// The rest: refused by the handler (400) or by the example's matcher
	// (403, when the cleaned path is no longer a Users path).
	for _, p := range []string{
		"/GroupIDDataService/api/IdentityStores/2/Users%2F..%2F..%2FLogs%2FDownload",
		"/GroupIDDataService/api/IdentityStores/2/Users/x%5C..%5C..%5CLogs",
		"/GroupIDDataService/api/IdentityStores/2/Users/x%00",
		"/GroupIDDataService/api/IdentityStores/2/Users/%252e%252e/%252e%252e/Logs",
		"/GroupIDDataService/api/IdentityStores/2/Users/..;/..;/Logs/Download",
	} {
		if r := s.call("GET", p, nil); r.status != http.StatusBadRequest && r.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 400 or 403", p, r.status)
		}
	}
	if n := len(s.sim.Requests()) - seen; n != 0 {
		t.Fatalf("%d refused paths reached GroupID", n)
	}
}

// TestAttackOverrideHeadersAreRemoved: URL and method override headers, in
// every spelling IIS maps to the same variable, never reach GroupID with
// the token. Caddy drops header names with '_' unless the server allows
// them (expected_underscore_headers, which then drops their '-' forms), so
// the test allows every underscore spelling it sends, as an operator might
// for a legacy app, and first checks that they do reach GroupID's host on
// a route without the token. The '-' spellings are sent first, with
// Caddy's defaults.
func TestAttackOverrideHeadersAreRemoved(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	spellings := []string{
		"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		"X_Original_URL", "x_rewrite_url", "X_HTTP_Method_Override", "x_http_method", "X_Method_Override",
		"X-Original_Url", "x-http_method-override",
	}
	var underscored, header, hyphenated []string
	for _, h := range spellings {
		if strings.Contains(h, "_") {
			underscored = append(underscored, h)
		} else {
			hyphenated = append(hyphenated, h, "DELETE")
		}
		header = append(header, h, "DELETE")
	}
	path := usersPath + "/" + groupidsim.SeedUserID
	noOverride := func(phase string) {
		t.Helper()
		for k := range s.lastRequest("GET", path).Header {
			norm := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			if strings.Contains(norm, "original-url") || strings.Contains(norm, "rewrite-url") || strings.Contains(norm, "method") {
				t.Errorf("%s: GroupID got %s with the token", phase, k)
			}
		}
	}
	s.load()
	if r := s.call("GET", path, nil, hyphenated...); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	noOverride("'-' spellings, Caddy's defaults")

	cfg := strings.Replace(s.caddyfile(), "\tpersist_config off\n",
		"\tpersist_config off\n\tservers {\n\t\texpected_underscore_headers "+strings.Join(underscored, " ")+"\n\t}\n", 1)
	s.tester.InitServer(cfg, "caddyfile")
	// The route without the token shows what Caddy lets through.
	s.call("GET", "/public/readme", nil, header...)
	passed := s.lastRequest("GET", "/public/readme").Header
	for _, h := range underscored {
		found := false
		for k := range passed {
			found = found || strings.EqualFold(k, h)
		}
		if !found {
			t.Fatalf("the test's premise: Caddy did not pass %s on a route without the token", h)
		}
	}
	if r := s.call("GET", path, nil, header...); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	noOverride("'_' spellings allowed by the server")
}

// TestAttackRemovedCAIsNotTrustedAfterReload: after a reload with a trust
// pool that no longer holds GroupID's CA, the next token request is refused
// by TLS (the password is never sent), while the held token keeps serving.
func TestAttackRemovedCAIsNotTrustedAfterReload(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	pool := s.caFile + ".pool.pem"
	copyFile(t, s.caFile, pool)
	s.TLS = "tls_trust_pool file " + pool
	s.load()
	path := usersPath + "/" + groupidsim.SeedUserID
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	other, err := groupidsim.GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.WriteCertFile(pool); err != nil {
		t.Fatal(err)
	}
	s.Extra = "after the CA was removed" // a real reload (the JSON changes)
	s.load()
	before := s.sim.Counters().TokensTotal()
	if r := s.callURL("POST", admin+"/groupid/refresh", nil); r.status != http.StatusAccepted {
		t.Fatalf("refresh: %d", r.status)
	}
	var st []struct {
		State     string `json:"state"`
		LastError *struct {
			Message string `json:"message"`
		} `json:"last_error"`
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		if err := json.Unmarshal(s.callURL("GET", admin+"/groupid/status", nil).body, &st); err != nil || len(st) != 1 {
			return false
		}
		return st[0].LastError != nil
	}, "the refused refresh in the status")
	if st[0].State != "degraded" || !strings.Contains(st[0].LastError.Message, "certificate") {
		t.Fatalf("after removing the CA: state %s, error %q", st[0].State, st[0].LastError.Message)
	}
	if n := s.sim.Counters().TokensTotal() - before; n != 0 {
		t.Fatalf("%d token requests reached GroupID through an untrusted connection", n)
	}
	if r := s.call("GET", path, nil); r.status != 200 {
		t.Fatalf("the held token stopped serving: %d", r.status)
	}

	// Trusting the CA again heals at the next token request.
	copyFile(t, s.caFile, pool)
	s.Extra = "after the CA came back"
	s.load()
	s.callURL("POST", admin+"/groupid/refresh", nil)
	testenv.Eventually(t, 10*time.Second, func() bool {
		return json.Unmarshal(s.callURL("GET", admin+"/groupid/status", nil).body, &st) == nil && len(st) == 1 && st[0].State == "valid"
	}, "a valid state")
}

// TestAttackEchoedSecretsAreRedacted: a token endpoint that echoes the
// request body and the Authorization header in error_description puts no
// encoding of the password or client secret into the status, readiness,
// metrics or logs.
func TestAttackEchoedSecretsAreRedacted(t *testing.T) {
	cfg := groupidsim.Config{Password: `p w+d&x=1%/"\<é`, ClientSecret: `s e+c&r=t%/"\>ü`}
	for _, auth := range []string{"form", "basic"} {
		t.Run(auth, func(t *testing.T) {
			s := newRig(t, cfg)
			s.Password, s.ClientSecret = `{env.ATTACK_PASSWORD}`, `{env.ATTACK_CLIENT_SECRET}`
			t.Setenv("ATTACK_PASSWORD", cfg.Password)
			t.Setenv("ATTACK_CLIENT_SECRET", cfg.ClientSecret)
			s.Extra = auth
			s.TLS += "\n\t\t\tclient_auth " + auth
			s.sim.SetFault(groupidsim.Fault{Kind: groupidsim.FaultEcho})
			s.load()
			if r := s.call("GET", usersPath, nil); r.status != http.StatusServiceUnavailable && r.status != http.StatusBadGateway {
				t.Fatalf("status %d during the echo fault", r.status)
			}
			texts := map[string]string{
				"status":    string(s.callURL("GET", admin+"/groupid/status", nil).body),
				"readiness": string(s.callURL("GET", ops+"/ready", nil).body),
				"metrics":   string(s.callURL("GET", admin+"/metrics", nil).body),
				"log":       readFile(t, s.logFile),
			}
			if !strings.Contains(texts["status"], "invalid_request") {
				t.Fatalf("the echoed error did not reach the status: %s", texts["status"])
			}
			for where, text := range texts {
				for _, secret := range []string{cfg.Password, cfg.ClientSecret} {
					for enc, form := range encodings(secret) {
						if strings.Contains(text, form) {
							t.Errorf("%s holds the %s form of a secret (redacted)", where, enc)
						}
					}
				}
				for _, basic := range []string{
					base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(groupidsim.DefaultClientID) + ":" + url.QueryEscape(cfg.ClientSecret))),
					base64.StdEncoding.EncodeToString([]byte(groupidsim.DefaultClientID + ":" + cfg.ClientSecret)),
				} {
					if strings.Contains(text, basic) {
						t.Errorf("%s holds the Basic credentials (redacted)", where)
					}
				}
			}
		})
	}
}

// encodings are the forms a secret can take in an echoed request.
func encodings(secret string) map[string]string {
	j, _ := json.Marshal(secret)
	return map[string]string{
		"raw":          secret,
		"form":         url.QueryEscape(secret),
		"percent":      url.PathEscape(secret),
		"percent-%20":  strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
		"JSON":         strings.Trim(string(j), `"`),
		"JSON-in-JSON": strings.Trim(fmt.Sprintf("%q", strings.Trim(string(j), `"`)), `"`),
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// MaxReplayMemoryForTest is the process-wide replay budget (64 MiB); the
// whole heap growth of the attack below must stay under it.
const MaxReplayMemoryForTest = 64 << 20

// TestAttackAnnouncedBodiesCannotExhaustMemory: one header-only request
// announcing a terabyte and 300 slow requests announcing 1 MiB each (one
// byte sent) leave Caddy alive; the heap grows by less than 64 MiB in all,
// and groupid_auth adds at most 16 MiB over the same requests proxied
// without it (bodies are kept for a
// replay as they arrive, in 16 KiB chunks, within a process-wide 64 MiB;
// keeping them by the announced length would take 300 MiB).
func TestAttackAnnouncedBodiesCannotExhaustMemory(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	// HTTP/1.1 to the upstream: over HTTP/2, Caddy's reverse_proxy reads
	// and closes a request body from two goroutines without a lock, which
	// the race detector reports when 300 uploads are cut off at once.
	// Both proxies: the one with the token and the one without (the baseline).
	cfg := strings.ReplaceAll(s.caddyfile(), "transport groupid {", "transport groupid {\n\t\t\t\tversions 1.1")
	cfg = strings.ReplaceAll(cfg, "transport http {", "transport http {\n\t\t\t\tversions 1.1")
	s.tester.InitServer(cfg, "caddyfile")
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("warm-up: %d", r.status)
	}
	heapUnderAttack(t, s, "/public/upload") // warms connection pools and buffers
	without := heapUnderAttack(t, s, "/public/upload")
	withToken := heapUnderAttack(t, s, usersPath)
	t.Logf("heap growth with 301 announced bodies in flight: %d KiB through groupid_auth, %d KiB without it", withToken>>10, without>>10)
	if extra := withToken - without; extra > 16<<20 || withToken > MaxReplayMemoryForTest {
		t.Fatalf("the heap grew %d MiB through groupid_auth, %d MiB more than without it", withToken>>20, extra>>20)
	}
	if r := s.call("GET", usersPath+"/"+groupidsim.SeedUserID, nil); r.status != 200 {
		t.Fatalf("a normal request after the attack: %d", r.status)
	}
}

// heapUnderAttack sends the terabyte request and the 300 slow ones to path
// and returns how much the heap grew while they were in flight.
func heapUnderAttack(t *testing.T, s *rig, path string) int64 {
	t.Helper()
	heap := func() int64 { // the live heap after a collection
		runtime.GC()
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		return int64(live[0].Value.Uint64())
	}
	idle := runtime.NumGoroutine()
	before := heap()
	var conns []net.Conn
	send := func(length int64, body string) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, length, body)
	}
	send(1<<40, "")
	for range 300 {
		send(1<<20, "{")
	}
	// Each request holds at least its connection's goroutine, more once it
	// is proxied; wait until all are in and every one is blocked waiting
	// for body bytes (the count holds still), then weigh the heap.
	last, changed := 0, time.Now()
	testenv.Eventually(t, 20*time.Second, func() bool {
		if n := runtime.NumGoroutine(); n != last {
			last, changed = n, time.Now()
		}
		return last >= idle+301 && time.Since(changed) >= 300*time.Millisecond // unchanged for 300 ms
	}, "301 requests in flight and waiting")
	grown := heap() - before
	for _, c := range conns {
		c.Close()
	}
	testenv.Eventually(t, 20*time.Second, func() bool { return runtime.NumGoroutine() < idle+50 }, "the attack's goroutines to end")
	return grown
}
