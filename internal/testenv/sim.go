package testenv

import (
	"path/filepath"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// NewSim starts a GroupID simulator over HTTPS on a free loopback port
// (live.StartSim), its CA in groupid-ca.pem of a temporary directory, and
// closes it when the test ends.
func NewSim(t testing.TB, cfg groupidsim.Config) *live.Sim {
	t.Helper()
	s, err := live.StartSim(cfg, filepath.Join(t.TempDir(), "groupid-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
