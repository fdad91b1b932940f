package groupidauth

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/adapt")

// TestAdaptGolden adapts every testdata/adapt/*.caddyfile (and the shipped
// Caddyfile.example) and compares the JSON with the .json file beside it.
func TestAdaptGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/adapt/*.caddyfile")
	inputs = append(inputs, "Caddyfile.example")
	for _, in := range inputs {
		golden := strings.TrimSuffix(in, ".caddyfile") + ".json"
		if in == "Caddyfile.example" {
			golden = "testdata/adapt/Caddyfile.example.json"
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": in})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("adapt warning: %s", w.String())
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestAdaptGolden -update)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// TestDirectiveOrder checks the registered order on adapted routes:
// forward_auth, then groupid_auth, then handle blocks with reverse_proxy.
func TestDirectiveOrder(t *testing.T) {
	src := []byte(`:8080 {
	handle /GroupIDDataService/* {
		reverse_proxy https://gid:4443
	}
	reverse_proxy /other/* localhost:9
	groupid_auth {
		token_url https://gid:4443/GroupIDSecurityService/connect/token
	}
	forward_auth localhost:9000 {
		uri /check
	}
}`)
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	fa := strings.Index(s, `"rewrite":{"method":"GET","uri":"/check"}`)
	ga := strings.Index(s, `"handler":"groupid_auth"`)
	sub := strings.Index(s, `"handler":"subroute"`)
	rp := strings.Index(s, `"dial":"localhost:9"`)
	if fa < 0 || ga < 0 || sub < 0 || rp < 0 {
		t.Fatalf("missing handlers in %s", s)
	}
	if !(fa < ga && ga < sub && ga < rp) {
		t.Errorf("order wrong: forward_auth@%d groupid_auth@%d handle@%d reverse_proxy@%d", fa, ga, sub, rp)
	}
}

// TestCaddyfileExample checks the shipped sidecar config the way a user
// would: `caddy fmt` leaves it unchanged and `caddy validate` accepts it
// (placeholders, secret files and CA file resolved, module provisioned).
func TestCaddyfileExample(t *testing.T) {
	src, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(src); !bytes.Equal(formatted, src) {
		t.Errorf("caddy fmt would change Caddyfile.example")
	}

	// Without CADDY_ADMIN the admin API is a Unix socket only its owner may
	// use: a TCP port would let any local process load a config that
	// reads the secret files.
	t.Setenv("CADDY_ADMIN", "")
	os.Unsetenv("CADDY_ADMIN")
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	var admin struct {
		Admin caddy.AdminConfig `json:"admin"`
	}
	if err := json.Unmarshal(out, &admin); err != nil {
		t.Fatal(err)
	}
	if admin.Admin.Listen != "unix//var/lib/caddy/admin.sock|0600" {
		t.Errorf("default admin address %q, want the Unix socket unix//var/lib/caddy/admin.sock|0600", admin.Admin.Listen)
	}

	dir, caFile := testenv.SecretFiles(t)
	env := map[string]string{
		"CADDY_ADMIN": "localhost:0", "SIDECAR_PORT": "0", "GROUPID_ORIGIN": "https://127.0.0.1:9",
		"GROUPID_CA_FILE": caFile, "GROUPID_SECRETS_DIR": dir,
		"GROUPID_USERNAME": "svc", "GROUPID_CLIENT_ID": "legacy",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	out, _, err = caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy validate: %v", err)
	}

	// Without the username variable the load fails and names the field.
	t.Setenv("GROUPID_USERNAME", "")
	out, _, _ = caddyconfig.GetAdapter("caddyfile").Adapt(src, nil)
	var bad caddy.Config
	if err := json.Unmarshal(out, &bad); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&bad); err == nil || !strings.Contains(err.Error(), "username: evaluated placeholder {env.GROUPID_USERNAME} is empty") {
		t.Fatalf("validate without username: %v", err)
	}
}

// TestReadmeNamedCredentialExample: the README's named-credential example
// is testdata/adapt/named.caddyfile, which TestAdaptGolden adapts.
func TestReadmeNamedCredentialExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("testdata/adapt/named.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```caddyfile\n"+string(example)+"```") {
		t.Fatal("README's named-credential example differs from testdata/adapt/named.caddyfile")
	}
}
