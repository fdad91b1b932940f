package main

import (
	"fmt"
	"strings"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// The simulator's service account, used by config A through environment
// placeholders the way a deployment reads its secrets.
const (
	simPassword     = groupidsim.DefaultPassword
	simClientSecret = groupidsim.DefaultClientSecret
	// staticToken is what config B puts on every request (and wrk sends in
	// config C).
	staticToken = "bench-static-token-0123456789abcdef0123456789abcdef"
	// apiPath is the path every configuration requests.
	apiPath = "/GroupIDDataService/api/IdentityStores/2/Users/3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f02"
	// postPath is where the POST phase creates users. Config A has no
	// matcher, so groupid_auth puts the token on this path as on any other.
	postPath = "/GroupIDDataService/api/IdentityStores/2/Users"
)

// globalOptions is the global block shared by every configuration.
func globalOptions(admin int) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	persist_config off
	auto_https off
	grace_period 1s
}
`, admin)
}

// transportBlock is the reverse_proxy transport shared by A and B: Caddy's
// default of 32 idle connections per host churns connections under 64
// client connections, so both keep 256.
const transportBlock = `		transport http {
			keepalive_idle_conns_per_host 256
		}
`

// transportBlockA is transportBlock for A: the groupid transport is the
// http transport with the same options, plus the token in the round trip.
var transportBlockA = strings.Replace(transportBlock, "transport http", "transport groupid", 1)

// configA is the sidecar: groupid_auth in front of reverse_proxy. The token
// endpoint is the simulator over HTTPS, trusted through ca_cert_file.
func configA(admin, port int, tokenURL, caFile, upstream, extra string) string {
	var lines string
	for _, l := range strings.Split(extra, ";") {
		if l = strings.TrimSpace(l); l != "" {
			lines += "\t\t" + l + "\n"
		}
	}
	return globalOptions(admin) + sidecarSite(port, tokenURL, caFile, lines, upstream, transportBlockA)
}

// sidecarSite is the site block of a groupid_auth sidecar: extra holds
// more groupid_auth lines, transport the reverse_proxy's transport block.
func sidecarSite(port int, tokenURL, caFile, extra, upstream, transport string) string {
	return fmt.Sprintf(`
http://:%d {
	bind 127.0.0.1
	groupid_auth {
		token_url %s
		username %s
		password {env.BENCH_GID_PASSWORD}
		client_id %s
		client_secret {env.BENCH_GID_CLIENT_SECRET}
		identity_store_id 2
		ca_cert_file %s
%s	}
	reverse_proxy %s {
%s	}
}
`, port, tokenURL, groupidsim.DefaultUsername, groupidsim.DefaultClientID, caFile, extra, upstream, transport)
}

// configB is the limit: the same proxy with a static header_up.
func configB(admin, port int, upstream string) string {
	var b strings.Builder
	b.WriteString(globalOptions(admin))
	fmt.Fprintf(&b, `
http://:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		header_up Authorization "Bearer %s"
%s	}
}
`, port, upstream, staticToken, transportBlock)
	return b.String()
}
