package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// adaptedHTTP is the part of an adapted config the probe checks read.
type adaptedHTTP struct {
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
				Routes []route  `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
	} `json:"apps"`
}

type route struct {
	Group    string                       `json:"group"`
	Match    []map[string]json.RawMessage `json:"match"`
	Handle   []map[string]json.RawMessage `json:"handle"`
	Terminal bool                         `json:"terminal"`
}

// TestProbeRoutesInConfig adapts the Caddyfile with the Deployment's
// environment and checks that a server listens on the probes' port on
// all interfaces, that /ready reaches groupid_ready and /live a 200
// response, and that the token-bearing listener stays on loopback.
func TestProbeRoutesInConfig(t *testing.T) {
	_, side := loadDeployment(t)
	var cfg adaptedHTTP
	if err := json.Unmarshal(adapt(t, side.env()), &cfg); err != nil {
		t.Fatal(err)
	}
	port := probePort(side, side.ReadinessProbe)
	var health, sidecar []route
	for name, srv := range cfg.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil {
				t.Fatalf("server %s listen %q: %v", name, l, err)
			}
			switch strconv.Itoa(int(na.StartPort)) {
			case port:
				if na.Host != "" && na.Host != "0.0.0.0" && na.Host != "::" {
					t.Errorf("probe server %s listens on %s: the kubelet cannot reach it", name, l)
				}
				health = srv.Routes
			case side.env()["SIDECAR_PORT"]:
				if na.Host != "127.0.0.1" {
					t.Errorf("sidecar server %s listens on %s, want loopback only", name, l)
				}
				sidecar = srv.Routes
			}
		}
	}
	if health == nil || sidecar == nil {
		t.Fatalf("no server on the probe port %s and the sidecar port", port)
	}
	if h := leafHandler(t, health, side.ReadinessProbe.HTTPGet.Path); string(h["handler"]) != `"groupid_ready"` {
		t.Errorf("readiness path reaches %s, want groupid_ready", h["handler"])
	}
	if h := leafHandler(t, health, side.LivenessProbe.HTTPGet.Path); string(h["handler"]) != `"static_response"` || string(h["status_code"]) != "200" {
		t.Errorf("liveness path reaches %s status %s, want static_response 200", h["handler"], h["status_code"])
	}
}

// leafHandler returns the first handler other than a subroute that a GET
// of path reaches, following route groups and terminal routes. Matcher
// sets with matchers other than path never match here.
func leafHandler(t *testing.T, routes []route, path string) map[string]json.RawMessage {
	t.Helper()
	done := map[string]bool{}
	for _, r := range routes {
		if (r.Group != "" && done[r.Group]) || !matches(t, r.Match, path) {
			continue
		}
		done[r.Group] = true
		for _, h := range r.Handle {
			if string(h["handler"]) != `"subroute"` {
				return h
			}
			var sub []route
			if err := json.Unmarshal(h["routes"], &sub); err != nil {
				t.Fatal(err)
			}
			if leaf := leafHandler(t, sub, path); leaf != nil {
				return leaf
			}
		}
		if r.Terminal {
			return nil
		}
	}
	return nil
}

func matches(t *testing.T, sets []map[string]json.RawMessage, path string) bool {
	if len(sets) == 0 {
		return true
	}
	for _, set := range sets {
		ok := true
		for name, raw := range set {
			var m caddyhttp.MatchPath
			if name != "path" || json.Unmarshal(raw, &m) != nil || m.Provision(caddy.Context{}) != nil {
				ok = false
				break
			}
			req := httptest.NewRequest(http.MethodGet, path, nil)
			caddyhttp.NewTestReplacer(req)
			if hit, err := m.MatchWithError(req); err != nil || !hit {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestProbesAnswer runs the ConfigMap's Caddyfile with the Deployment's
// environment (ports moved to free ones, GroupID unreachable) and asks the
// probe paths: /live is 200 and /ready 503 while no token can be had.
func TestProbesAnswer(t *testing.T) {
	_, side := loadDeployment(t)
	env := side.env()
	for k, v := range deploymentTestFiles(t) {
		env[k] = v
	}
	env["GROUPID_ORIGIN"] = "https://127.0.0.1:1"
	env["CADDY_ADMIN"] = "unix/" + filepath.Join(t.TempDir(), "admin.sock")
	env["SIDECAR_PORT"], env["HEALTH_PORT"] = freePort(t), freePort(t)
	if err := caddy.Load(adapt(t, env), true); err != nil {
		t.Fatalf("loading the sidecar config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	client := &http.Client{Timeout: 5 * time.Second}
	for path, want := range map[string]int{
		side.LivenessProbe.HTTPGet.Path:  http.StatusOK,
		side.ReadinessProbe.HTTPGet.Path: http.StatusServiceUnavailable,
	} {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%s%s", env["HEALTH_PORT"], path))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testenv.FreePort())
}
