package groupidauth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddyserver/caddy/v2"
)

func TestProvisionExpandsPlaceholders(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client_secret")
	if err := os.WriteFile(secretFile, []byte(groupidsim.DefaultClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GID_TEST_PASSWORD", groupidsim.DefaultPassword)
	h := simHandler(tokenURL)
	h.Password = "{env.GID_TEST_PASSWORD}"
	h.ClientSecret = "{file." + secretFile + "}"
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	if h.Password != groupidsim.DefaultPassword || h.ClientSecret != groupidsim.DefaultClientSecret {
		t.Error("placeholders not expanded (or trailing newline kept)")
	}
	if _, err := h.cred().src.Token(context.Background()); err != nil {
		t.Fatalf("token with expanded secrets: %v", err)
	}
}

func TestProvisionErrorsNameTheFieldNotTheValue(t *testing.T) {
	t.Setenv("GID_EMPTY", "")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() *Handler { return simHandler("https://gid.example:4443/GroupIDSecurityService/connect/token") }
	cases := []struct {
		name   string
		mutate func(*Handler)
		want   string
	}{
		{"missing token_url", func(h *Handler) { h.TokenURL = "" }, "token_url: required"},
		{"missing username", func(h *Handler) { h.Username = "" }, "username: required"},
		{"missing password", func(h *Handler) { h.Password = "" }, "password: required"},
		{"missing client_id", func(h *Handler) { h.ClientID = "" }, "client_id: required"},
		{"missing client_secret", func(h *Handler) { h.ClientSecret = "" }, "client_secret: required"},
		{"missing identity_store_id", func(h *Handler) { h.IdentityStoreID = "" }, "identity_store_id: required"},
		{"identity_store_id not a segment", func(h *Handler) { h.IdentityStoreID = "2/../3" }, "identity_store_id: must be one path segment"},
		{"identity_store_id a dot segment", func(h *Handler) { h.IdentityStoreID = ".." }, "identity_store_id: must be one path segment"},
		{"relative api_base", func(h *Handler) { h.APIBase = "GroupIDDataService/api" }, "api_base: must be an absolute path"},
		{"api_base with dot segment", func(h *Handler) { h.APIBase = "/GroupIDDataService/../api" }, "api_base: must be an absolute path"},
		{"api_base with encoding", func(h *Handler) { h.APIBase = "/Group%49DDataService/api" }, "api_base: must be an absolute path"},
		{"relative token_url", func(h *Handler) { h.TokenURL = "/connect/token" }, "token_url: must be an absolute"},
		{"ftp token_url", func(h *Handler) { h.TokenURL = "ftp://gid/connect/token" }, "token_url: must be an absolute"},
		{"token_url with user info", func(h *Handler) { h.TokenURL = "https://u:hunter2@gid/t" }, "token_url: must not carry user information"},
		{"empty env placeholder", func(h *Handler) { h.Password = "{env.GID_EMPTY}" }, "password: evaluated placeholder {env.GID_EMPTY} is empty"},
		{"unreadable file placeholder", func(h *Handler) { h.ClientSecret = "{file./nonexistent/secret}" }, "client_secret: evaluated placeholder {file./nonexistent/secret} is empty"},
		{"negative refresh_before", func(h *Handler) { h.RefreshBefore = caddy.Duration(-time.Second) }, "refresh_before: must not be negative"},
		{"negative timeout", func(h *Handler) { h.Timeout = caddy.Duration(-time.Second) }, "timeout: must not be negative"},
		{"huge timeout", func(h *Handler) { h.Timeout = caddy.Duration(time.Hour) }, "timeout: must be at most 5m"},
		{"dial above timeout", func(h *Handler) {
			h.Timeout, h.DialTimeout = caddy.Duration(time.Second), caddy.Duration(2*time.Second)
		}, "dial_timeout: must not exceed timeout"},
		{"negative dial_timeout", func(h *Handler) { h.DialTimeout = caddy.Duration(-time.Second) }, "dial_timeout: must not be negative"},
		{"refresh_before of days", func(h *Handler) { h.RefreshBefore = caddy.Duration(48 * time.Hour) }, "refresh_before: must be shorter than a day"},
		{"bad client_auth", func(h *Handler) { h.ClientAuth = "jwt" }, "client_auth: must be form or basic"},
		{"cert without key", func(h *Handler) { h.TLSClientCert = "/c.pem" }, "tls_client_cert and tls_client_key: give both or neither"},
		{"ca file and pool", func(h *Handler) { h.CACertFile, h.TrustPoolRaw = "/ca.pem", []byte(`{"provider":"file"}`) }, "ca_cert_file and tls_trust_pool: use one"},
		{"TLS settings on http", func(h *Handler) { h.TokenURL, h.TLSServerName = "http://gid/t", "gid" }, "token_url: TLS settings given for an http:// URL"},
		{"name with control", func(h *Handler) { h.Name = "a\nb" }, "name: must be at most 128 printable characters"},
		{"missing ca_cert_file", func(h *Handler) { h.CACertFile = "/nonexistent/ca.pem" }, "ca_cert_file:"},
		{"ca_cert_file without PEM", func(h *Handler) { h.CACertFile = notPEM }, "ca_cert_file: no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.mutate(h)
			err := provision(t, h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			for _, secret := range []string{groupidsim.DefaultPassword, groupidsim.DefaultClientSecret, "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Error("error contains a secret value")
				}
			}
			if h.app.creds[h.Name] != nil || len(h.app.creds) != 0 {
				t.Error("failed Provision acquired a token source")
			}
		})
	}
}
