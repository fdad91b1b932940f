package shapes

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"golang.org/x/crypto/bcrypt"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-groupid/caddy-groupid"
	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

const (
	apiBase   = "/GroupIDDataService/api/IdentityStores/2"
	usersPath = apiBase + "/Users"
	tokenPath = "/GroupIDSecurityService/connect/token"
	// basicUser and basicPass are what the client sends to basic_auth.
	basicUser, basicPass = "legacy-app", "legacy-app-pass"
)

// snippets are the parts every shape shares. Secrets come from files
// ({file.*}), so no config text, and no config dump on failure, holds one.
const snippets = `{{define "global"}}{
	admin localhost:{{.Admin}}
	grace_period 1ns
	skip_install_trust
	auto_https off
	persist_config off
}{{end}}
{{- define "auth"}}groupid_auth {
		token_url {{.TokenURL}}
		username {{.Username}}
		password {file.{{.PasswordFile}}}
		client_id {{.ClientID}}
		client_secret {file.{{.SecretFile}}}
		identity_store_id 2
		ca_cert_file {{.CA}}
	}{{end}}
{{- define "transport"}}transport groupid {
			tls_trust_pool file {{.CA}}
		}{{end}}
{{- define "api"}}@api path ` + usersPath + ` ` + usersPath + `/* ` + apiBase + `/Groups ` + apiBase + `/Groups/*{{end}}`

var base = template.Must(template.New("").Option("missingkey=error").Parse(snippets))

// rig is one shape's world: a fresh GroupID simulator over HTTPS (its own
// credential and counters), its CA and secret files, recording backends
// for every non-GroupID place a shape may use, free ports, and a client.
type rig struct {
	t      *testing.T
	sim    *groupidsim.Server
	run    *groupidsim.Running
	dir    string
	caFile string
	client *http.Client
	// vars fill the shape's Caddyfile template.
	vars map[string]string
	// Recording backends; none of them may ever see a token.
	legacy, errorPages, authService, second *recorder
	backends                                []*recorder
	// front, if set, stands between Caddy and the simulator (see errors_test.go).
	front *front
}

func newRig(t *testing.T) *rig {
	t.Helper()
	gid := testenv.NewSim(t, groupidsim.Config{})
	sim, run := gid.Sim, gid.Running
	r := &rig{t: t, sim: sim, run: run, dir: t.TempDir(), caFile: gid.CAFile}
	cfg := sim.Config()
	// The file names are the ones Caddyfile.example reads from GROUPID_SECRETS_DIR.
	for name, v := range map[string]string{"password": cfg.Password, "client_secret": cfg.ClientSecret} {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	static := filepath.Join(r.dir, "www")
	if err := os.MkdirAll(filepath.Join(static, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(static, "static", "hello.txt"), []byte("hello from file_server\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new connection per request: a reload closes idle connections, and
	// a request sent on one just closed fails with EOF.
	r.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil, DisableCompression: true, DisableKeepAlives: true}}
	t.Cleanup(r.client.CloseIdleConnections)
	r.legacy = r.newRecorder("legacy app", http.StatusOK, "legacy app page", nil)
	r.errorPages = r.newRecorder("error pages", http.StatusBadGateway, "error page", nil)
	r.authService = r.newRecorder("forward_auth service", http.StatusOK, "", http.Header{"X-Auth-User": {"alice"}})
	r.second = r.newRecorder("second upstream", http.StatusOK, "second upstream page", nil)
	r.vars = map[string]string{
		"Admin": fmt.Sprint(adminPort), "Port": port(t), "Port2": port(t),
		"Origin": run.URL, "TokenURL": testenv.UniqueTokenURL(run.TokenURL()), "CA": r.caFile,
		"Username": cfg.Username, "ClientID": cfg.ClientID,
		"PasswordFile": filepath.Join(r.dir, "password"), "SecretFile": filepath.Join(r.dir, "client_secret"),
		"Legacy": r.legacy.url, "ErrorPages": r.errorPages.url, "AuthService": r.authService.url,
		"Second": r.second.url, "Static": static, "Dead": deadUpstream(t),
	}
	hash, err := basicHash()
	if err != nil {
		t.Fatal(err)
	}
	r.vars["BasicHash"] = hash
	return r
}

// port returns a free port as text.
func port(t *testing.T) string {
	t.Helper()
	return fmt.Sprint(testenv.FreePort())
}

// deadUpstream returns an https address on a closed port.
func deadUpstream(t *testing.T) string { return "https://127.0.0.1:" + port(t) }

// site returns the base URL of the listener on the port held by var name.
func (r *rig) site(name string) string { return "http://127.0.0.1:" + r.vars[name] }

// render fills a shape's Caddyfile template.
func (r *rig) render(t *testing.T, src string) string {
	t.Helper()
	tpl, err := template.Must(base.Clone()).Parse(src)
	if err != nil {
		t.Fatalf("shape template: %v", err)
	}
	var b strings.Builder
	if err := tpl.Execute(&b, r.vars); err != nil {
		t.Fatalf("shape template: %v", err)
	}
	return b.String()
}

// load makes caddyfile the running config of the in-process Caddy and
// fails t unless Caddy runs it.
func load(t *testing.T, caddyfile string) {
	t.Helper()
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort, LoadRequestTimeout: 20 * time.Second})
	tester.InitServer(caddyfile, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
}

// waitForToken waits until the credential's warm-up got its first token.
func (r *rig) waitForToken() {
	r.t.Helper()
	// The simulator lists a token before it counts its request: wait for both.
	testenv.Eventually(r.t, 10*time.Second, func() bool {
		return len(r.sim.IssuedTokens()) > 0 && r.sim.Counters().TokensTotal() > 0
	}, "the first token")
	if n := r.sim.Counters().TokensTotal(); n != 1 {
		r.t.Errorf("token requests after the config load: %d, want 1", n)
	}
}

// basicHash is the bcrypt hash of basicPass for basic_auth, at the lowest
// cost (Caddy's default cost makes every request slow under -race).
var basicHash = sync.OnceValues(func() (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(basicPass), bcrypt.MinCost)
	return string(h), err
})

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request the way a legacy app would and reads the answer,
// gunzipping a gzip-encoded body.
func (r *rig) do(t *testing.T, method, url string, body []byte, header http.Header) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = append([]string(nil), v...)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var in io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: gzip: %v", method, url, err)
		}
		in = zr
	}
	b, err := io.ReadAll(in)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// redact replaces every issued token and both secrets in s, for failure
// messages.
func (r *rig) redact(s string) string {
	for _, tok := range r.sim.IssuedTokens() {
		s = strings.ReplaceAll(s, tok, "(token)")
	}
	for _, tok := range r.sim.IssuedRefreshTokens() {
		s = strings.ReplaceAll(s, tok, "(token)")
	}
	c := r.sim.Config()
	s = strings.ReplaceAll(s, c.Password, "(secret)")
	s = strings.ReplaceAll(s, c.ClientSecret, "(secret)")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// leaked reports whether s holds any token the simulator issued (access
// or refresh).
func (r *rig) leaked(s string) bool {
	for _, tok := range append(r.sim.IssuedTokens(), r.sim.IssuedRefreshTokens()...) {
		if strings.Contains(s, tok) {
			return true
		}
	}
	return false
}

// recorder is a plain HTTP backend that records every request it gets.
type recorder struct {
	name string
	url  string
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

func (r *rig) newRecorder(name string, status int, body string, respHeader http.Header) *recorder {
	rec := &recorder{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{req.Method, req.RequestURI, req.Header.Clone(), b})
		rec.mu.Unlock()
		for k, v := range respHeader {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	r.t.Cleanup(srv.Close)
	rec.url = srv.URL
	r.backends = append(r.backends, rec)
	return rec
}

func (rec *recorder) requests() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.seen...)
}

// assertNoTokenAtBackends fails t if any recording backend ever received
// an issued token, in any header value, its URL or its body.
func (r *rig) assertNoTokenAtBackends(t *testing.T) {
	for _, rec := range r.backends {
		for i, req := range rec.requests() {
			for k, vs := range req.header {
				for _, v := range vs {
					if r.leaked(v) {
						t.Errorf("%s: request %d (%s %s) carried a GroupID token (token) in header %s", rec.name, i, req.method, r.redact(req.uri), k)
					}
				}
			}
			if r.leaked(req.uri) || r.leaked(string(req.body)) {
				t.Errorf("%s: request %d (%s) carried a GroupID token (token) in its URL or body", rec.name, i, req.method)
			}
		}
	}
}
