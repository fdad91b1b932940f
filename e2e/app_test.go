package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// namedConfig is a config whose credentials are defined once, in the
// global groupid block, and used by name. stores maps credential names to
// identity stores; sites is the rest of the Caddyfile, where PROXY stands
// for a reverse_proxy to the simulator with the groupid transport.
func (s *rig) namedConfig(stores map[string]string, timeout, sites string) string {
	c := s.sim.Config()
	var creds strings.Builder
	for name, store := range stores {
		fmt.Fprintf(&creds, `		credential %s {
			token_url %s
			username %s
			password %s
			client_id %s
			client_secret %s
			identity_store_id %s
			ca_cert_file %s
			timeout %s
		}
`, name, s.tokenURL, c.Username, s.Password, c.ClientID, s.ClientSecret, store, s.caFile, timeout)
	}
	proxy := fmt.Sprintf("reverse_proxy %s {\n\t\t\ttransport groupid {\n\t\t\t\ttls_trust_pool file %s\n\t\t\t}\n\t\t}", s.run.URL, s.caFile)
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	grace_period 1ns
	skip_install_trust
	auto_https off
	persist_config off
	groupid {
%s	}
}
`, adminPort, httpPort, httpsPort, creds.String()) + strings.ReplaceAll(sites, "PROXY", proxy)
}

// get sends a GET to url and returns the reply; it fails the test unless
// the client got GroupID's answer with status want.
func (s *rig) getFrom(url string, want int) reply {
	s.t.Helper()
	r := s.callURL("GET", url, nil)
	if r.status != want {
		s.t.Fatalf("GET %s: %d %s, want %d", url, r.status, r.body, want)
	}
	return r
}

// TestNamedCredentialOneChainForSitesAndRoutes: one credential defined in
// the global groupid block, used by two sites and three routes, is one
// token chain; a reload that changes only routes makes no token request,
// and one that changes the credential's timeout keeps the token.
func TestNamedCredentialOneChainForSitesAndRoutes(t *testing.T) {
	s := newRig(t, groupidsim.Config{})
	sites := func(extra string) string {
		return fmt.Sprintf(`
http://localhost:%[1]d {
	handle /GroupIDDataService/api/IdentityStores/2/Users* {
		groupid_auth svc
		PROXY
	}
	handle /GroupIDDataService/api/IdentityStores/2/Groups* {
		groupid_auth {
			credentials svc
		}
		PROXY
	}
	%[2]s
}

http://127.0.0.1:%[1]d {
	route /GroupIDDataService/* {
		groupid_auth svc
		PROXY
	}
}
`, httpPort, extra)
	}
	user := "/GroupIDDataService/api/IdentityStores/2/Users/" + groupidsim.SeedUserID
	group := "/GroupIDDataService/api/IdentityStores/2/Groups/" + groupidsim.SeedGroupID
	siteB := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	calls := func() (tokens map[string]bool) {
		tokens = map[string]bool{}
		for _, c := range []struct{ url, path, want string }{
			{base + user, user, groupidsim.SeedUserID},
			{base + group, group, groupidsim.SeedGroupID},
			{siteB + user, user, groupidsim.SeedUserID},
		} {
			r := s.getFrom(c.url, http.StatusOK)
			if !strings.Contains(string(r.body), c.want) {
				t.Fatalf("GET %s: body %q is not GroupID's answer", c.url, r.body)
			}
			tokens[strings.Join(s.lastRequest("GET", c.path).Authorization, ",")] = true
		}
		return tokens
	}

	s.tester.InitServer(s.namedConfig(map[string]string{"svc": "2"}, "10s", sites("")), "caddyfile")
	first := calls()
	if n := s.sim.Counters().TokensTotal(); n != 1 || len(first) != 1 {
		t.Fatalf("two sites and three routes of one credential: %d token requests, %d tokens used; want 1 and 1", n, len(first))
	}
	for _, st := range []struct{ what, timeout, extra string }{
		{"routes changed", "10s", "handle /extra {\n\t\trespond \"extra\" 200\n\t}"},
		{"the credential's timeout changed", "7s", "handle /extra {\n\t\trespond \"extra\" 200\n\t}"},
	} {
		s.tester.InitServer(s.namedConfig(map[string]string{"svc": "2"}, st.timeout, sites(st.extra)), "caddyfile")
		again := calls()
		if n := s.sim.Counters().TokensTotal(); n != 1 {
			t.Fatalf("reload with %s: %d token requests in all, want 1 (the token kept)", st.what, n)
		}
		for tok := range again {
			if !first[tok] {
				t.Fatalf("reload with %s: GroupID saw another token", st.what)
			}
		}
	}
	if r := s.getFrom(base+"/extra", http.StatusOK); string(r.body) != "extra" {
		t.Fatalf("the reloaded routes are not in force: %q", r.body)
	}
	st := s.callURL("GET", admin+"/groupid/status", nil)
	if strings.Count(string(st.body), `"name":"svc"`) != 1 {
		t.Fatalf("admin status: %s; want the one credential svc", st.body)
	}
}

// TestOneHandlerThreeStores: a handler given three named credentials,
// one per identity store, sends each request with the token of the store
// its path names: three token chains, no token ever used on another
// store, and a store without a credential gets 403 and reaches nothing.
func TestOneHandlerThreeStores(t *testing.T) {
	s := newRig(t, groupidsim.Config{ExtraIdentityStores: []string{"3", "4", "5"}})
	sites := fmt.Sprintf(`
http://localhost:%d {
	handle /GroupIDDataService/* {
		groupid_auth store2 store3 store4
		PROXY
	}
}
`, httpPort)
	s.tester.InitServer(s.namedConfig(map[string]string{"store2": "2", "store3": "3", "store4": "4"}, "10s", sites), "caddyfile")
	seen := map[string]string{}
	for range 2 {
		for _, store := range []string{"2", "3", "4"} {
			path := "/GroupIDDataService/api/IdentityStores/" + store + "/Users/" + groupidsim.SeedUserID
			r := s.getFrom(base+path, http.StatusOK)
			if !strings.Contains(string(r.body), groupidsim.SeedUserID) {
				t.Fatalf("store %s: body %q is not GroupID's answer", store, r.body)
			}
			tok := strings.Join(s.lastRequest("GET", path).Authorization, ",")
			if prev, ok := seen[store]; ok && prev != tok {
				t.Fatalf("store %s: a second token chain", store)
			}
			seen[store] = tok
		}
	}
	if seen["2"] == seen["3"] || seen["3"] == seen["4"] || seen["2"] == seen["4"] {
		t.Fatal("two stores got the same token")
	}
	before := len(s.sim.Requests())
	for _, path := range []string{
		"/GroupIDDataService/api/IdentityStores/5/Users/" + groupidsim.SeedUserID, // served by GroupID, no credential here
		"/GroupIDDataService/api/IdentityStores/9/Groups/x",
		"/GroupIDDataService/api/Logs/Download",
	} {
		s.getFrom(base+path, http.StatusForbidden)
	}
	c := s.sim.Counters()
	if len(s.sim.Requests()) != before {
		t.Fatal("a request for a store without a credential reached GroupID")
	}
	if n := c.WrongStoreTotal(); n != 0 {
		t.Fatalf("GroupID saw %d tokens used on another store than theirs", n)
	}
	for _, store := range []string{"2", "3", "4"} {
		if c.PasswordGrantsByStore[store] != 1 {
			t.Fatalf("password grants by store %v; want one chain per store", c.PasswordGrantsByStore)
		}
	}
	if c.TokensTotal() != 3 {
		t.Fatalf("%d token requests, want 3", c.TokensTotal())
	}
}
