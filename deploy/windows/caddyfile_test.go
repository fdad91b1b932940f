// Package windows_test checks the Windows variant of the sidecar config:
// it is formatted, its defaults are the Windows paths and the TCP admin
// address the README documents, and it adapts and validates (placeholders
// and secret files resolved, modules provisioned, log file opened).
package windows_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-groupid/caddy-groupid"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunHermetic(m) }

// settings are the Caddyfile's adapt-time variables.
var settings = []string{
	"CADDY_ADMIN", "CADDY_LOG_FILE", "SIDECAR_PORT", "HEALTH_PORT", "GROUPID_ORIGIN",
	"GROUPID_IDENTITY_STORE_ID", "GROUPID_USERNAME", "GROUPID_CLIENT_ID",
	"GROUPID_PASSWORD_FILE", "GROUPID_CLIENT_SECRET_FILE",
}

func adapt(t *testing.T, src []byte) []byte {
	t.Helper()
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.String())
	}
	return out
}

// TestWindowsCaddyfile: `caddy fmt` leaves it unchanged; without settings
// it names the documented Windows locations; with its files pointed at a
// temporary directory it adapts and passes `caddy validate`.
func TestWindowsCaddyfile(t *testing.T) {
	src, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	if formatted := caddyfile.Format(src); !bytes.Equal(formatted, src) {
		t.Error("caddy fmt would change deploy/windows/Caddyfile")
	}
	for _, v := range settings {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	defaults := string(adapt(t, src))
	for _, want := range []string{
		`"admin":{"listen":"localhost:2019"`,
		`"password":"{file.C:\\ProgramData\\caddy-groupid\\secrets\\password}"`,
		`"client_secret":"{file.C:\\ProgramData\\caddy-groupid\\secrets\\client_secret}"`,
		`"filename":"C:\\ProgramData\\caddy-groupid\\logs\\caddy.log"`,
		`"listen":["127.0.0.1:8080"]`,
		`"listen":["127.0.0.1:8081"]`,
	} {
		if !strings.Contains(defaults, want) {
			t.Errorf("adapted defaults lack %s", want)
		}
	}
	if strings.Contains(defaults, "unix/") {
		t.Error("the Windows config uses a Unix socket")
	}

	dir := t.TempDir()
	for name, v := range map[string]string{"password": "pw", "client_secret": "cs"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logFile := filepath.Join(dir, "logs", "caddy.log")
	for k, v := range map[string]string{
		"CADDY_ADMIN": "localhost:0", "SIDECAR_PORT": strconv.Itoa(testenv.FreePort()), "HEALTH_PORT": strconv.Itoa(testenv.FreePort()),
		"GROUPID_ORIGIN":        "https://127.0.0.1:9",
		"GROUPID_PASSWORD_FILE": filepath.Join(dir, "password"), "GROUPID_CLIENT_SECRET_FILE": filepath.Join(dir, "client_secret"),
		"CADDY_LOG_FILE": logFile,
	} {
		t.Setenv(k, v)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(adapt(t, src), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy validate: %v", err)
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Errorf("validate did not open the log file: %v", err)
	}

	// A missing secret file fails the load and names the field.
	t.Setenv("GROUPID_PASSWORD_FILE", filepath.Join(dir, "absent"))
	var bad caddy.Config
	if err := json.Unmarshal(adapt(t, src), &bad); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&bad); err == nil || !strings.Contains(err.Error(), "password: evaluated placeholder {file.") {
		t.Fatalf("validate without the password file: %v", err)
	}
}
