package groupidauth

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
)

// Credential is one GroupID service account and how to get its tokens:
// the settings of a groupid_auth handler given inline, or of a named
// credential of the groupid app (apps.groupid.credentials) that handlers
// use by name. Every string field accepts Caddy placeholders that are known
// at load time, such as {env.GROUPID_PASSWORD} and
// {file./run/secrets/groupid-password}; a placeholder that is unknown or
// empty fails the config load.
//
// Required: token_url, username, password, client_id, client_secret and
// identity_store_id.
type Credential struct {
	// TokenURL is the Security Service's token endpoint, for example
	// https://groupid.example.com/GroupIDSecurityService/connect/token.
	// Required. Must be https:// unless allow_http is set.
	TokenURL string `json:"token_url,omitempty"`

	// Username is the service account the sidecar acts as. Required.
	Username string `json:"username,omitempty"`

	// Password is the service account's password. Required. It is a
	// secret: give it as a placeholder such as {file./run/secrets/password}.
	Password string `json:"password,omitempty"`

	// ClientID is the OAuth client ID registered in GroupID (its
	// SVC.Client table). Required.
	ClientID string `json:"client_id,omitempty"`

	// ClientSecret is the OAuth client's secret. Required. It is a secret:
	// give it as a placeholder.
	ClientSecret string `json:"client_secret,omitempty"`

	// IdentityStoreID is the numeric ID of the identity store that holds
	// the service account (GroupID's non-standard identity_store_id form
	// field). Required.
	IdentityStoreID string `json:"identity_store_id,omitempty"`

	// Scope is the space-separated list of scopes to request. offline_access
	// is added (for refresh tokens) unless GroupID refuses it. Default:
	// none is sent, and GroupID grants the client's allowed scopes.
	Scope string `json:"scope,omitempty"`

	// FormParams are extra form fields (name to value) sent with every
	// token request, password and refresh_token grant alike, such as
	// resource or audience for a token endpoint behind another proxy.
	// Values accept placeholders. They never replace a field the grant
	// sends: grant_type, username, password, client_id, client_secret,
	// refresh_token, identity_store_id and scope (in any case) fail the
	// config load. They are part of the credential's identity (a change
	// gets a new token), and every value is treated as a secret: never
	// logged, redacted from errors. Default: none.
	FormParams map[string]string `json:"form_params,omitempty"`

	// RefreshBefore is how long before a token expires its background
	// refresh starts; a random extra of up to half of it spreads replicas
	// apart. It is capped at half the token's lifetime and must be under
	// 24 h. Default: a quarter of the lifetime (300 s for GroupID's 1200 s
	// tokens).
	RefreshBefore caddy.Duration `json:"refresh_before,omitempty"`

	// DefaultTokenLifetime is the lifetime assumed for a token whose
	// response has no numeric expires_in and whose access token has no
	// readable JWT exp claim (the lifetime comes from expires_in, else from
	// exp less a clock skew allowance of up to 30 s, else from this). From
	// 5 s to 24 h. Default: 1200 s, GroupID's documented token lifetime.
	DefaultTokenLifetime caddy.Duration `json:"default_token_lifetime,omitempty"`

	// Timeout bounds each token request from dialling to the last byte of
	// the answer. At most 5 minutes. Default: 10 s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// DialTimeout bounds the TCP connection to the token endpoint and,
	// separately, its TLS handshake. At most timeout. Default: 5 s, or
	// timeout if that is shorter.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// CACertFile is a PEM file of CA certificates trusted for the token
	// endpoint's certificate, for a GroupID site with a self-signed or
	// internal-CA certificate. Cannot be combined with tls_trust_pool.
	// Default: the system trust store.
	CACertFile string `json:"ca_cert_file,omitempty"`

	// TrustPoolRaw is a Caddy CA pool source (module namespace
	// tls.ca_pool.source, such as file, inline or pki_root) trusted for
	// the token endpoint, as in reverse_proxy's tls_trust_pool. Cannot be
	// combined with ca_cert_file. Default: the system trust store.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`

	// TLSClientCert is a PEM file with the client certificate to present
	// to a token endpoint that requires mutual TLS. Needs tls_client_key.
	// Default: no client certificate.
	TLSClientCert string `json:"tls_client_cert,omitempty"`

	// TLSClientKey is the PEM file with the private key of tls_client_cert.
	// Needs tls_client_cert. Default: none.
	TLSClientKey string `json:"tls_client_key,omitempty"`

	// TLSServerName is the name checked in the token endpoint's certificate
	// and sent as SNI. Default: the host of token_url.
	TLSServerName string `json:"tls_server_name,omitempty"`

	// TLSInsecureSkipVerify turns off the token endpoint's certificate
	// check, so the password goes to whoever answers; a warning is logged
	// at every load. Default: false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`

	// AllowHTTP permits an http:// token_url, which sends the password in
	// clear text. Meant for loopback tests. Default: false.
	AllowHTTP bool `json:"allow_http,omitempty"`

	// ClientAuth is how client_id and client_secret are sent: "form" (as
	// form fields, as GroupID documents) or "basic" (an HTTP Basic header,
	// RFC 6749 section 2.3.1). Default: form.
	ClientAuth string `json:"client_auth,omitempty"`

	// Share, if set, shares this credential's token with the other
	// replicas that use the same storage and key: one token chain for the
	// cluster instead of one per replica, and a restarted replica starts
	// from the shared token. See ShareConfig. Default: off, each replica
	// gets its own token.
	Share *ShareConfig `json:"share,omitempty"`

	// RevokeOnStop revokes the credential's refresh token at GroupID's
	// revocation endpoint (RFC 7009) when the credential is retired: when
	// the last config that uses it stops (a config without it is loaded,
	// or Caddy stops), never on a reload that keeps it. The request is
	// bounded by RevokeTimeout (5 s, or timeout if shorter); a failure is
	// logged and does not fail the stop. Cannot be combined with share
	// (the chain is the cluster's). See the README's Retiring a
	// credential. Default: false, the refresh token is left to expire.
	RevokeOnStop bool `json:"revoke_on_stop,omitempty"`

	// RevocationURL is the revocation endpoint used by revoke_on_stop.
	// Must be https:// unless allow_http is set; sent with the token
	// endpoint's TLS settings and client authentication. Default:
	// token_url with its last segment replaced, .../connect/revocation.
	RevocationURL string `json:"revocation_url,omitempty"`
}

// given names (by JSON name) the settings that are set: none for a
// handler that uses named credentials.
func (c *Credential) given() []string {
	raw, err := json.Marshal(c)
	if err != nil {
		return []string{"(unreadable)"}
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	return names
}
