package groupidauth

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileFullBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`groupid_auth {
		token_url https://gid:4443/GroupIDSecurityService/connect/token
		username svc
		password {env.PW}
		client_id legacy
		client_secret {file./run/secret}
		identity_store_id 2
		scope directorymanager.api offline_access
		refresh_before 2m
		timeout 5s
		ca_cert_file /etc/gid-ca.pem
		replay_on_401 off
		max_replay_body 64KiB
		name billing-app
		dial_timeout 2s
		tls_client_cert /etc/c.pem
		tls_client_key /etc/k.pem
		tls_server_name gid.internal
		tls_insecure_skip_verify
		allow_http
		client_auth basic
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Credential{
		TokenURL: "https://gid:4443/GroupIDSecurityService/connect/token", Username: "svc",
		Password: "{env.PW}", ClientID: "legacy", ClientSecret: "{file./run/secret}",
		IdentityStoreID: "2", Scope: "directorymanager.api offline_access",
		RefreshBefore: caddy.Duration(2 * time.Minute), Timeout: caddy.Duration(5 * time.Second),
		CACertFile: "/etc/gid-ca.pem",
	}
	if h.TokenURL != want.TokenURL || h.Username != want.Username || h.Password != want.Password ||
		h.ClientID != want.ClientID || h.ClientSecret != want.ClientSecret || h.IdentityStoreID != want.IdentityStoreID ||
		h.Scope != want.Scope || h.RefreshBefore != want.RefreshBefore || h.Timeout != want.Timeout || h.CACertFile != want.CACertFile ||
		h.ReplayOn401 == nil || *h.ReplayOn401 || *h.MaxReplayBody != 64<<10 || h.Name != "billing-app" ||
		h.DialTimeout != caddy.Duration(2*time.Second) || h.TLSClientCert != "/etc/c.pem" || h.TLSClientKey != "/etc/k.pem" ||
		h.TLSServerName != "gid.internal" || !h.TLSInsecureSkipVerify || !h.AllowHTTP || h.ClientAuth != "basic" {
		t.Errorf("parsed %+v", h)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"credentials on the directive and in the block", "groupid_auth svc {\n credentials other\n}", "credentials given more than once"},
		{"credentials without a name", "groupid_auth {\n credential\n}", "wrong argument count"},
		{"unknown subdirective", `groupid_auth { user svc }`, "unknown subdirective user"},
		{"repeated subdirective", "groupid_auth {\n username a\n username b\n}", "username given more than once"},
		{"bad duration", `groupid_auth { refresh_before soon }`, "refresh_before: invalid duration"},
		{"bad timeout", `groupid_auth { timeout 5 }`, "timeout: invalid duration"},
		{"bad replay switch", `groupid_auth { replay_on_401 maybe }`, "replay_on_401: want on or off"},
		{"bad replay size", `groupid_auth { max_replay_body lots }`, "max_replay_body: invalid size"},
	}
	twoValues := map[string]string{"replay_on_401": "on off", "max_replay_body": "1KiB 2KiB", "refresh_before": "1s 2s", "timeout": "1s 2s", "dial_timeout": "1s 2s",
		"tls_trust_pool": "-", "tls_insecure_skip_verify": "yes", "allow_http": "yes"}
	for _, f := range []string{"token_url", "username", "password", "client_id", "client_secret", "identity_store_id", "ca_cert_file", "refresh_before", "timeout", "scope", "replay_on_401", "max_replay_body",
		"name", "dial_timeout", "tls_trust_pool", "tls_client_cert", "tls_client_key", "tls_server_name", "client_auth"} {
		cases = append(cases,
			struct{ name, input, want string }{f + " without value", "groupid_auth {\n " + f + "\n}", "wrong argument count"})
		if twoValues[f] == "" {
			twoValues[f] = "a b"
		}
		if f != "scope" && f != "tls_trust_pool" {
			cases = append(cases,
				struct{ name, input, want string }{f + " with two values", "groupid_auth {\n " + f + " " + twoValues[f] + "\n}", "wrong argument count"})
		}
	}
	for _, f := range []string{"tls_insecure_skip_verify", "allow_http"} {
		cases = append(cases, struct{ name, input, want string }{f + " with a value", "groupid_auth {\n " + f + " yes\n}", "wrong argument count"})
	}
	cases = append(cases,
		struct{ name, input, want string }{"unknown trust pool module", "groupid_auth {\n tls_trust_pool nosuch\n}", "tls.ca_pool.source.nosuch"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileNeverEchoesSecretValues(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid_auth {\n password hunter2 again\n}"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

func TestUnmarshalCaddyfileTrustPool(t *testing.T) {
	var h Handler
	d := caddyfile.NewTestDispenser("groupid_auth {\n tls_trust_pool file /etc/groupid/ca.pem\n}")
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if got := string(h.TrustPoolRaw); got != `{"pem_files":["/etc/groupid/ca.pem"],"provider":"file"}` {
		t.Fatalf("trust pool JSON %s", got)
	}
}
