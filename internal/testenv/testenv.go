// Package testenv holds set-up shared by the test packages: a hermetic
// home for an in-process Caddy, the files that Caddyfile.example reads
// (secrets and a CA certificate), free ports, the GroupID simulator with
// its CA file (NewSim), Caddy as a child process (StartCaddy), and one
// Eventually for every test that waits for a condition. Package live
// holds the parts the load benchmark shares, without package testing.
package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// RunHermetic runs the tests of m with Caddy's autosave, storage and the
// XDG directories in a temporary directory, and exits with their status.
// Call it from TestMain. caddy.ConfigAutosavePath and caddy.DefaultStorage
// are computed at package init, so setting the environment is not enough.
func RunHermetic(m *testing.M) {
	dir, err := os.MkdirTemp("", "groupid-test-")
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

// SecretFiles writes the files Caddyfile.example reads, password and
// client_secret (with dummy values) and a CA certificate, to a temporary
// directory, and returns the directory and the CA file's path.
func SecretFiles(t testing.TB) (dir, caFile string) {
	t.Helper()
	dir = t.TempDir()
	ca, err := groupidsim.GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := ca.WriteCertFile(caFile); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"password": "pw", "client_secret": "cs"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, caFile
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago
// (live.FreePort), for a test's listeners: test packages run in parallel,
// and two runs of the suite on one machine must not collide on fixed ports.
func FreePort() int { return live.FreePort() }

// UniqueTokenURL returns tokenURL with a query of its own (the simulator
// ignores it). The sidecar keeps tokens process-wide by grant, token URL
// included, so that a reload keeps them; a simulator started on a port an
// earlier test's simulator had would otherwise find its sidecar seeded
// with a token it never issued.
func UniqueTokenURL(tokenURL string) string {
	return tokenURL + "?site=" + strconv.FormatUint(sites.Add(1), 10)
}

var sites atomic.Uint64
