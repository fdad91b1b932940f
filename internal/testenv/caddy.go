package testenv

import (
	"testing"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv/live"
)

// StartCaddy starts Caddy as a child process (live.StartCaddy) and kills
// it when the test ends, if it still runs.
func StartCaddy(t testing.TB, c live.CaddyConfig) *live.Caddy {
	t.Helper()
	p, err := live.StartCaddy(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}
