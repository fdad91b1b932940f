package testenv

import (
	"fmt"
	"strings"
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

// OfflineGlobals is the global options block of a Caddy under test: the
// admin API and the HTTP and HTTPS ports given, no certificates, no
// change to the trust store, no autosaved config, an immediate shutdown;
// each of extra is one more line in the block (a storage, a log).
func OfflineGlobals(admin, httpPort, httpsPort int, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin localhost:%d\n\thttp_port %d\n\thttps_port %d\n", admin, httpPort, httpsPort)
	b.WriteString("\tgrace_period 1ns\n\tskip_install_trust\n\tauto_https off\n\tpersist_config off\n")
	for _, line := range extra {
		b.WriteString("\t" + line + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}
