// Package e2e runs a real Caddy in-process (caddytest) with groupid_auth in
// front of the GroupID simulator and checks what reaches the simulator.
package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
)

// TestMain keeps Caddy's autosave and storage out of the user's home.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "groupid-e2e-")
	if err != nil {
		panic(err)
	}
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "HOME"} {
		os.Setenv(v, filepath.Join(dir, v))
	}
	caddy.ConfigAutosavePath = filepath.Join(dir, "autosave.json")
	caddy.DefaultStorage = &certmagic.FileStorage{Path: filepath.Join(dir, "storage")}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
