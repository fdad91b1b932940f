package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-groupid/caddy-groupid"
	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// Ports of this package's Caddy, free when the package starts: two runs
// of the suite on one machine do not collide.
var (
	adminPort = testenv.FreePort()
	httpPort  = testenv.FreePort()
	httpsPort = testenv.FreePort()
	opsPort   = testenv.FreePort()
)

var (
	base  = fmt.Sprintf("http://localhost:%d", httpPort)
	ops   = fmt.Sprintf("http://localhost:%d", opsPort)
	admin = fmt.Sprintf("http://localhost:%d", adminPort)
)

const (
	usersPath = "/GroupIDDataService/api/IdentityStores/2/Users"
	groupPath = "/GroupIDDataService/api/IdentityStores/2/Groups"
	logsPath  = "/GroupIDDataService/api/Logs/Download"
)

// rig is one simulator plus the Caddy config in front of it.
type rig struct {
	t       *testing.T
	sim     *groupidsim.Server
	run     *groupidsim.Running
	caFile  string
	logFile string
	// tokenURL is the simulator's token URL, made unique for the rig
	// once (testenv.UniqueTokenURL), so every reload keeps the grant.
	tokenURL string
	tester   *caddytest.Tester
	client   *http.Client
	// Password and ClientSecret are put into the config; they default to
	// the simulator's.
	Password, ClientSecret string
	// Extra is appended to the site block (e.g. to force a real reload).
	Extra string
	// Timeout is the token request timeout; changing it gives the
	// credential a new token source (seeded from the token store).
	Timeout string
	// TLS is the token endpoint's trust setting; default ca_cert_file with
	// the simulator's CA.
	TLS string
}

func newRig(t *testing.T, cfg groupidsim.Config) *rig {
	t.Helper()
	gid := testenv.NewSim(t, cfg)
	sim, run := gid.Sim, gid.Running
	s := &rig{
		t: t, sim: sim, run: run,
		caFile:       gid.CAFile,
		tokenURL:     testenv.UniqueTokenURL(run.TokenURL()),
		logFile:      filepath.Join(t.TempDir(), "caddy.log"),
		Password:     sim.Config().Password,
		ClientSecret: sim.Config().ClientSecret,
		Timeout:      "10s",
		TLS:          "ca_cert_file " + gid.CAFile,
		tester:       caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort, LoadRequestTimeout: 20 * time.Second}),
		// A new connection per request: a reload closes idle connections,
		// and a request sent on one just closed fails with EOF.
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

// caddyfile is the sidecar config used by the tests: the token goes on
// User, Group and log-download paths; /public/ is proxied without it;
// everything else is refused.
func (s *rig) caddyfile() string {
	c := s.sim.Config()
	r := strings.NewReplacer(
		"ADMIN", fmt.Sprint(adminPort), "HTTPPORT", fmt.Sprint(httpPort), "HTTPSPORT", fmt.Sprint(httpsPort),
		"LOGFILE", s.logFile, "CAFILE", s.caFile, "ORIGIN", s.run.URL, "TOKENURL", s.tokenURL,
		"USERNAME", c.Username, "PASSWORD", s.Password, "CLIENTID", c.ClientID, "CLIENTSECRET", s.ClientSecret,
		"EXTRA", s.Extra, "TIMEOUT", s.Timeout, "OPSPORT", fmt.Sprint(opsPort), "TOKENTLS", s.TLS,
	)
	return r.Replace(`{
	admin localhost:ADMIN
	http_port HTTPPORT
	https_port HTTPSPORT
	grace_period 1ns
	skip_install_trust
	auto_https off
	persist_config off
	log {
		output file LOGFILE
		level DEBUG
	}
}

http://localhost:HTTPPORT {
	log {
		output file LOGFILE
	}
	@groupid path ` + usersPath + ` ` + usersPath + `/* ` + groupPath + ` ` + groupPath + `/* ` + logsPath + `
	handle @groupid {
		groupid_auth {
			token_url TOKENURL
			username USERNAME
			password PASSWORD
			client_id CLIENTID
			client_secret CLIENTSECRET
			identity_store_id 2
			TOKENTLS
			timeout TIMEOUT
		}
		reverse_proxy ORIGIN {
			transport groupid {
				tls_trust_pool file CAFILE
			}
		}
	}
	handle /public/* {
		reverse_proxy ORIGIN {
			transport http {
				tls_trust_pool file CAFILE
			}
		}
	}
	handle {
		respond "refused EXTRA" 403
	}
}

http://localhost:OPSPORT {
	handle /ready {
		groupid_ready
	}
	handle /live {
		respond "alive" 200
	}
	handle /metrics {
		metrics
	}
}
`)
}

// load (re)loads the config into the in-process Caddy.
func (s *rig) load() {
	s.t.Helper()
	s.tester.InitServer(s.caddyfile(), "caddyfile")
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the sidecar the way a legacy app would.
func (s *rig) call(method, path string, body []byte, header ...string) reply {
	s.t.Helper()
	return s.callURL(method, base+path, body, header...)
}

// callURL sends a request to any URL (sidecar, ops site or admin API).
func (s *rig) callURL(method, url string, body []byte, header ...string) reply {
	s.t.Helper()
	r, err := s.tryURL(method, url, body, header...)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// callAfterFailedLoad is callURL right after Caddy refused a config: a
// connection that Caddy's stopped server took from the shared listener in
// the moment it stopped is closed unanswered (EOF). That is Caddy's
// listener handoff, not the sidecar's state, so such a connection error is
// tried again, at most twice, and logged; any HTTP answer counts.
func (s *rig) callAfterFailedLoad(method, url string) reply {
	s.t.Helper()
	for try := 1; ; try++ {
		r, err := s.tryURL(method, url, nil)
		if err == nil {
			return r
		}
		if try == 3 || !errors.Is(err, io.EOF) {
			s.t.Fatalf("%s %s: %v", method, url, err)
		}
		s.t.Logf("%s %s: %v (Caddy's stopped server closed the connection); trying again", method, url, err)
	}
}

// tryURL is callURL returning the transport error instead of failing.
func (s *rig) tryURL(method, url string, body []byte, header ...string) (reply, error) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, b}, nil
}

// lastRequest returns the newest request the simulator saw for method+path.
func (s *rig) lastRequest(method, path string) groupidsim.Request {
	s.t.Helper()
	reqs := s.sim.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && reqs[i].Path == path {
			return reqs[i]
		}
	}
	s.t.Fatalf("simulator never saw %s %s", method, path)
	return groupidsim.Request{}
}

// bearer is the header value of the simulator's only issued token.
func (s *rig) bearerOf(i int) string {
	toks := s.sim.IssuedTokens()
	if i >= len(toks) {
		s.t.Fatalf("only %d tokens issued", len(toks))
	}
	return "Bearer " + toks[i]
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
