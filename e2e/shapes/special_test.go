package shapes

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestShape01CaddyfileExample runs the standard scenarios through the
// repository's Caddyfile.example exactly as shipped, its environment
// pointing at the simulator (admin API, sidecar and health listeners on
// free ports; secrets read from files), with the same assertions as
// TestShapes. Its refusals (403 for other paths, 405 for other methods)
// and its health listener answer without reaching GroupID.
func TestShape01CaddyfileExample(t *testing.T) {
	r := newRig(t)
	src, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.sim.Config()
	for k, v := range map[string]string{
		"CADDY_ADMIN":  fmt.Sprintf("localhost:%d", adminPort),
		"SIDECAR_PORT": r.vars["Port"], "SIDECAR_BIND": "127.0.0.1",
		"HEALTH_PORT": r.vars["Port2"], "HEALTH_BIND": "127.0.0.1",
		"GROUPID_ORIGIN": r.run.URL, "GROUPID_IDENTITY_STORE_ID": "2",
		"GROUPID_CA_FILE": r.caFile, "GROUPID_SECRETS_DIR": r.dir,
		"GROUPID_USERNAME": cfg.Username, "GROUPID_CLIENT_ID": cfg.ClientID,
	} {
		t.Setenv(k, v)
	}
	load(t, string(src))
	r.waitForToken()
	r.runAll(t, &shape{side: []sideCall{
		{path: "/GroupIDDataService/api/Logs/Download", status: http.StatusForbidden, contains: "Not available"},
		{method: http.MethodOptions, path: usersPath, status: http.StatusMethodNotAllowed, contains: "Method not allowed"},
		{site: "Port2", path: "/live", status: http.StatusOK, contains: "alive"},
		{site: "Port2", path: "/ready", status: http.StatusOK, contains: `"ready":true`},
	}}, "Port")
}

// TestShape15TwoSites: two sites on two ports with identical groupid_auth
// settings both work and share one credential: the two first GETs carry
// the same token, and the config load plus two 401s (one per site) cost
// exactly three token requests.
func TestShape15TwoSites(t *testing.T) {
	r := newRig(t)
	site := `
http://:PORT {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`
	s := &shape{side: []sideCall{refused, {site: "Port2", path: "/other", status: http.StatusForbidden, contains: "refused"}}}
	load(t, r.render(t, `{{template "global" .}}`+strings.Replace(site, "PORT", "{{.Port}}", 1)+strings.Replace(site, "PORT", "{{.Port2}}", 1)))
	r.waitForToken()
	sc := standardScenarios()
	for _, step := range []struct {
		sc   scenario
		site string
	}{{sc[0], "Port"}, {sc[0], "Port2"}, {sc[1], "Port"}, {sc[2], "Port2"}} {
		t.Run(step.sc.name+" on "+step.site, func(t *testing.T) { r.runScenario(t, s, step.sc, r.site(step.site)) })
		if step.site == "Port2" && !step.sc.revoke {
			var auths []string
			for _, q := range r.sim.Requests() {
				if q.Path != tokenPath {
					auths = append(auths, strings.Join(q.Authorization, ","))
				}
			}
			if len(auths) != 2 || auths[0] != auths[1] {
				t.Errorf("the two sites' first GETs did not carry one same token (%d API requests)", len(auths))
			}
		}
	}
	if n := r.sim.Counters().TokensTotal(); n != 3 {
		t.Errorf("token requests %d, want 3 (one credential: the first token and one per 401)", n)
	}
}

// TestShape17OldShapeRefused: with shape 02 running, loading (POST of the
// adapted JSON to the admin /load endpoint) the old documented shape,
// groupid_auth with a reverse_proxy on `transport http`, fails with an
// error naming `transport groupid`; so does a `transport groupid` with no
// groupid_auth. Both configs adapt fine: the refusal comes at load. The
// running config keeps serving with its token (no token request for the
// failed loads) and heals a 401 as before.
func TestShape17OldShapeRefused(t *testing.T) {
	r := newRig(t)
	good := shapeNamed(t, "02 ")
	load(t, r.render(t, good.caddyfile))
	r.waitForToken()
	t.Run("get before", func(t *testing.T) { r.runScenario(t, good, standardScenarios()[0], r.site("Port")) })

	tokens := r.sim.Counters().TokensTotal()
	for _, bad := range []struct {
		name, caddyfile, want string
	}{
		{"groupid_auth with transport http", `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			transport http {
				tls_trust_pool file {{.CA}}
			}
		}
	}
	handle {
		respond "refused" 403
	}
}`, "transport groupid"},
		{"transport groupid without groupid_auth", `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	reverse_proxy {{.Origin}} {
		{{template "transport" .}}
	}
}`, "groupid_auth"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			status, msg := r.postJSONLoad(t, r.render(t, bad.caddyfile))
			if status/100 == 2 || !strings.Contains(msg, bad.want) {
				t.Errorf("load answered %d %q; want a refusal naming %q", status, r.redact(msg), bad.want)
			} else {
				t.Logf("refused as expected: %d %s", status, r.redact(msg))
			}
		})
	}
	if n := r.sim.Counters().TokensTotal() - tokens; n != 0 {
		t.Errorf("the failed loads made %d token requests, want 0", n)
	}
	cfg := r.do(t, http.MethodGet, fmt.Sprintf("http://localhost:%d/config/", adminPort), nil, nil)
	if !strings.Contains(string(cfg.body), `"protocol":"groupid"`) || strings.Contains(string(cfg.body), `"protocol":"http"`) {
		t.Errorf("the running config is no longer shape 02")
	}
	for _, sc := range standardScenarios()[:2] {
		t.Run(sc.name+" after the refused loads", func(t *testing.T) { r.runScenario(t, good, sc, r.site("Port")) })
	}
}

// postJSONLoad adapts a Caddyfile (which must adapt) and POSTs the JSON to
// the admin /load endpoint; it returns the status and the answer's text.
func (r *rig) postJSONLoad(t *testing.T, caddyfile string) (int, string) {
	t.Helper()
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(string(adapted)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	return resp.StatusCode, string(b)
}
