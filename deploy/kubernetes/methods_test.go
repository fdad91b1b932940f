package kubernetes_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// allowedMethods are the methods GroupID's User and Group APIs use: the only
// ones the sidecar sends with the token, and its Allow header on a 405.
var allowedMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// TestOnlyAPIMethodsGetToken runs the ConfigMap's Caddyfile with the
// Deployment's environment in front of the GroupID simulator. On the User
// and Group paths, any method other than allowedMethods is answered 405
// with an Allow header and GroupID sees nothing of it; the allowed methods
// reach GroupID with the token.
func TestOnlyAPIMethodsGetToken(t *testing.T) {
	run := testenv.NewSim(t, groupidsim.Config{})
	sim, cfg := run.Sim, run.Sim.Config()

	_, side := loadDeployment(t)
	env := side.env()
	for k, v := range deploymentTestFiles(t) {
		env[k] = v
	}
	for name, v := range map[string]string{"password": cfg.Password, "client_secret": cfg.ClientSecret} {
		if err := os.WriteFile(filepath.Join(env["GROUPID_SECRETS_DIR"], name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env["GROUPID_CA_FILE"] = run.CAFile
	env["GROUPID_ORIGIN"] = run.URL
	env["GROUPID_USERNAME"], env["GROUPID_CLIENT_ID"] = cfg.Username, cfg.ClientID
	env["CADDY_ADMIN"] = "unix/" + filepath.Join(t.TempDir(), "admin.sock") + "|0600"
	env["SIDECAR_PORT"], env["HEALTH_PORT"] = freePort(t), freePort(t)
	if env["GROUPID_IDENTITY_STORE_ID"] != cfg.IdentityStoreID {
		t.Fatalf("deployment.yaml identity store %q, the simulator's is %q", env["GROUPID_IDENTITY_STORE_ID"], cfg.IdentityStoreID)
	}
	if err := caddy.Load(adapt(t, env), true); err != nil {
		t.Fatalf("loading the sidecar config: %v", err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	api := "http://127.0.0.1:" + env["SIDECAR_PORT"] + "/GroupIDDataService/api/IdentityStores/" + cfg.IdentityStoreID
	user := api + "/Users/" + groupidsim.SeedUserID
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	dataRequests := func() []groupidsim.Request {
		var out []groupidsim.Request
		for _, r := range sim.Requests() {
			if strings.HasPrefix(r.Path, cfg.DataPrefix+"/") {
				out = append(out, r)
			}
		}
		return out
	}

	allow := strings.Join(allowedMethods, ", ")
	for _, method := range []string{"OPTIONS", "HEAD", "TRACE", "CONNECT", "PROPFIND", "MKCOL", "PURGE", "get"} {
		for _, url := range []string{api + "/Users", user, api + "/Groups", api + "/Groups/StaticGroup"} {
			resp := do(method, url)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != allow {
				t.Errorf("%s %s: %d, Allow %q; want 405, Allow %q", method, url, resp.StatusCode, resp.Header.Get("Allow"), allow)
			}
		}
	}
	if got := dataRequests(); len(got) != 0 {
		t.Fatalf("GroupID saw %d requests refused with 405, the first %s %s", len(got), got[0].Method, got[0].Path)
	}

	// Outside the User and Group APIs every method stays 403.
	for _, method := range []string{"GET", "OPTIONS"} {
		if resp := do(method, api+"/Logs/Download"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s outside the APIs: %d, want 403", method, resp.StatusCode)
		}
	}

	if resp := do(http.MethodGet, user); resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d, want 200", user, resp.StatusCode)
	}
	for _, method := range allowedMethods {
		if resp := do(method, api+"/Users"); resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == allow {
			t.Errorf("%s: refused by the sidecar", method)
		}
	}
	got := dataRequests()
	var methods []string
	for _, r := range got {
		methods = append(methods, r.Method)
		if len(r.Authorization) != 1 || !strings.HasPrefix(r.Authorization[0], "Bearer ") {
			t.Errorf("%s %s reached GroupID with Authorization %q, want one bearer token", r.Method, r.Path, r.Authorization)
		}
		if r.Method != http.MethodGet && !bytes.Equal(r.Body, []byte(`{}`)) {
			t.Errorf("%s %s reached GroupID with body %q", r.Method, r.Path, r.Body)
		}
	}
	if want := append([]string{"GET"}, allowedMethods...); strings.Join(methods, " ") != strings.Join(want, " ") {
		t.Errorf("GroupID saw %v, want %v", methods, want)
	}
}
