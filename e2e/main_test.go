// Package e2e runs a real Caddy in-process (caddytest) with groupid_auth in
// front of the GroupID simulator and checks what reaches the simulator.
package e2e

import (
	"testing"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunHermetic(m) }
