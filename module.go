// Package groupidauth is a Caddy HTTP handler that puts a Netwrix Directory
// Manager (GroupID) service-account bearer token on proxied requests, so
// that legacy applications can call GroupID's User and Group APIs with no
// authentication code of their own.
package groupidauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler obtains a token from GroupID's Security Service with the OAuth2
// password grant, keeps it fresh in the background, and replaces the
// Authorization header of every request it handles with
// "Bearer <token>" before passing the request on (normally to
// reverse_proxy). Any Authorization header sent by the client is dropped.
//
// When no valid token can be had, the request is not passed on. The handler
// returns an HTTP error instead, which handle_errors can shape:
//
//   - 503 Service Unavailable, with Retry-After in seconds, when GroupID's
//     token endpoint is unreachable or failing (connection errors,
//     timeouts, 5xx, 429, or a response that is not a token);
//   - 502 Bad Gateway when GroupID rejects the configured credentials
//     (wrong password, unknown client, bad scope, wrong token URL). The
//     error log names the OAuth error code; an operator has to act.
//
// Every string field accepts Caddy placeholders that are known at load time,
// such as {env.GROUPID_PASSWORD} and {file./run/secrets/groupid-password};
// a placeholder that is unknown or empty fails the config load.
type Handler struct {
	// Name labels this credential in metrics, logs, the admin status and
	// readiness checks. Default: username@token-host/identity_store_id.
	// Never put a secret here.
	Name string `json:"name,omitempty"`
	// TokenURL is the Security Service token endpoint, e.g.
	// https://groupid.example.com:4443/GroupIDSecurityService/connect/token.
	// Required; http:// and https:// are accepted.
	TokenURL string `json:"token_url,omitempty"`
	// Username is the service account the sidecar acts as. Required.
	Username string `json:"username,omitempty"`
	// Password of the service account. Required. Secret: use a placeholder.
	Password string `json:"password,omitempty"`
	// ClientID is the client ID from GroupID's SVC.Client table. Required.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the client's secret. Required. Secret: use a placeholder.
	ClientSecret string `json:"client_secret,omitempty"`
	// IdentityStoreID is the numeric ID of the identity store holding the
	// service account (GroupID's non-standard identity_store_id). Required.
	IdentityStoreID string `json:"identity_store_id,omitempty"`
	// Scope is a space-separated scope list to request. Default: none is
	// sent, and GroupID grants the client's allowed scopes, including
	// offline_access, which brings refresh tokens.
	Scope string `json:"scope,omitempty"`
	// RefreshBefore is how long before a token expires the background
	// refresh starts. Default: a quarter of the token's lifetime (300 s for
	// GroupID's 1200 s tokens). Capped at half the lifetime. A random extra
	// of up to half this margin spreads replicas apart.
	RefreshBefore caddy.Duration `json:"refresh_before,omitempty"`
	// Timeout bounds each token request, connection included. Default 10 s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// CACertFile is a PEM file of CA certificates trusted for the token
	// endpoint's TLS certificate, for GroupID sites with self-signed or
	// internal-CA certificates. Default: the system trust store.
	CACertFile string `json:"ca_cert_file,omitempty"`
	// TrustPoolRaw is a Caddy CA pool source module (namespace
	// tls.ca_pool.source, e.g. "file", "inline", "pki_root") trusted for
	// the token endpoint, as reverse_proxy's tls_trust_pool. Cannot be
	// combined with ca_cert_file.
	TrustPoolRaw json.RawMessage `json:"tls_trust_pool,omitempty" caddy:"namespace=tls.ca_pool.source inline_key=provider"`
	// TLSClientCert and TLSClientKey are PEM files of a client certificate
	// and its key, for a token endpoint that requires mutual TLS. Both or
	// neither. Default: no client certificate.
	TLSClientCert string `json:"tls_client_cert,omitempty"`
	TLSClientKey  string `json:"tls_client_key,omitempty"`
	// TLSServerName overrides the name checked in the token endpoint's
	// certificate (and sent as SNI). Default: the token_url host.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// TLSInsecureSkipVerify turns off certificate checks for the token
	// endpoint. It sends the password to whoever answers; a warning is
	// logged at every load. Default: false.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
	// AllowHTTP permits an http:// token_url, which sends the password in
	// clear text. Meant for loopback tests. Default: false.
	AllowHTTP bool `json:"allow_http,omitempty"`
	// ClientAuth is how the client ID and secret are sent: "form" (form
	// fields, as GroupID documents) or "basic" (HTTP Basic, RFC 6749 2.3.1).
	// Default: form.
	ClientAuth string `json:"client_auth,omitempty"`
	// DialTimeout bounds the TCP connection to the token endpoint.
	// Default 5 s (and never more than timeout).
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
	// ReplayOn401 controls 401 healing. When the upstream answers 401 to a
	// request that carried our token (revoked early, e.g. after a signing
	// key rotation), the token is dropped, a fresh one is fetched, and the
	// request is sent once more if its body was buffered. Default: true.
	ReplayOn401 *bool `json:"replay_on_401,omitempty"`
	// MaxReplayBody is the largest request body, in bytes, that is buffered
	// so the request can be replayed after a 401. Larger bodies stream
	// through unbuffered; their 401 goes to the client and the next request
	// uses the fresh token. Default: 1048576 (1 MiB).
	MaxReplayBody int64 `json:"max_replay_body,omitempty"`

	logger *zap.Logger
	grant  tokencache.Grant
	shared *sharedSource
	replay bool
	// poolKey is set once the shared source is acquired, so Cleanup
	// releases only what Provision took.
	poolKey string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groupid_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// DefaultTimeout bounds a token request when Timeout is not set.
const DefaultTimeout = 10 * time.Second

// DefaultDialTimeout bounds the TCP connection when DialTimeout is not set.
const DefaultDialTimeout = 5 * time.Second

// Provision expands placeholders, validates the configuration and attaches
// the handler to the shared token source for its credential, starting the
// background warm-up if this is the first user. It does no network I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = loggerFor(ctx)
	rawPassword, rawSecret := h.Password, h.ClientSecret
	if err := h.expandPlaceholders(); err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(DefaultTimeout)
	}
	if h.Name == "" {
		h.Name = defaultName(h.Username, h.TokenURL, h.IdentityStoreID)
	}
	if h.MaxReplayBody == 0 {
		h.MaxReplayBody = DefaultMaxReplayBody
	}
	h.replay = h.ReplayOn401 == nil || *h.ReplayOn401
	if h.DialTimeout == 0 {
		h.DialTimeout = caddy.Duration(min(DefaultDialTimeout, time.Duration(h.Timeout)))
	}
	tlsConfig, tlsID, err := h.loadTokenTLS(ctx)
	if err != nil {
		return err
	}
	if h.TLSInsecureSkipVerify {
		h.logger.Warn("tls_insecure_skip_verify is on: the token endpoint's certificate is not checked, so the service account password goes to whoever answers")
	}
	h.grant = tokencache.Grant{
		TokenURL:        h.TokenURL,
		Username:        h.Username,
		Password:        h.Password,
		ClientID:        h.ClientID,
		ClientSecret:    h.ClientSecret,
		IdentityStoreID: h.IdentityStoreID,
		Scope:           h.Scope,
		BasicAuth:       h.ClientAuth == "basic",
	}
	if err := initMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return h.acquireSource(tlsID, tlsConfig, h.rereader(rawPassword, rawSecret))
}

// rereader returns the hook that reads file-based secrets again after the
// password grant is rejected (Kubernetes updates Secret volumes in place),
// or nil when neither secret comes from a {file.*} placeholder.
func (h *Handler) rereader(rawPassword, rawSecret string) func() (tokencache.Grant, bool) {
	if !strings.Contains(rawPassword, "{file.") && !strings.Contains(rawSecret, "{file.") {
		return nil
	}
	var mu sync.Mutex
	current := h.grant
	return func() (tokencache.Grant, bool) {
		mu.Lock()
		defer mu.Unlock()
		repl := caddy.NewReplacer()
		pw, err1 := repl.ReplaceOrErr(rawPassword, true, true)
		cs, err2 := repl.ReplaceOrErr(rawSecret, true, true)
		if err1 != nil || err2 != nil || (pw == current.Password && cs == current.ClientSecret) {
			return current, false
		}
		current.Password, current.ClientSecret = pw, cs
		return current, true
	}
}

// expandPlaceholders replaces {env.*}, {file.*} and other global
// placeholders in every string field. Errors name the field and the
// placeholder, never the value.
func (h *Handler) expandPlaceholders() error {
	repl := caddy.NewReplacer()
	for _, f := range h.stringFields() {
		v, err := repl.ReplaceOrErr(*f.ptr, true, true)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.ptr = v
	}
	return nil
}

type stringField struct {
	name string
	ptr  *string
}

func (h *Handler) stringFields() []stringField {
	return []stringField{
		{"name", &h.Name},
		{"token_url", &h.TokenURL},
		{"username", &h.Username},
		{"password", &h.Password},
		{"client_id", &h.ClientID},
		{"client_secret", &h.ClientSecret},
		{"identity_store_id", &h.IdentityStoreID},
		{"scope", &h.Scope},
		{"ca_cert_file", &h.CACertFile},
		{"tls_client_cert", &h.TLSClientCert},
		{"tls_client_key", &h.TLSClientKey},
		{"tls_server_name", &h.TLSServerName},
		{"client_auth", &h.ClientAuth},
	}
}

// Validate checks the configuration. Errors name the field and never
// repeat its value.
func (h *Handler) Validate() error {
	for _, f := range h.stringFields() {
		switch f.name {
		case "name", "scope", "ca_cert_file", "tls_client_cert", "tls_client_key", "tls_server_name", "client_auth":
			continue
		}
		if *f.ptr == "" {
			return fmt.Errorf("%s: required", f.name)
		}
	}
	u, err := url.Parse(h.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("token_url: must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("token_url: must not carry user information")
	}
	if u.Scheme == "http" && !h.AllowHTTP {
		return errors.New("token_url: http:// would send the password in clear text; use https:// (or set allow_http for a loopback test)")
	}
	if u.Scheme == "http" && (h.CACertFile != "" || h.TrustPoolRaw != nil || h.TLSClientCert != "" || h.TLSServerName != "" || h.TLSInsecureSkipVerify) {
		return errors.New("token_url: TLS settings given for an http:// URL")
	}
	switch h.ClientAuth {
	case "", "form", "basic":
	default:
		return errors.New("client_auth: must be form or basic")
	}
	if (h.TLSClientCert == "") != (h.TLSClientKey == "") {
		return errors.New("tls_client_cert and tls_client_key: give both or neither")
	}
	if h.CACertFile != "" && h.TrustPoolRaw != nil {
		return errors.New("ca_cert_file and tls_trust_pool: use one")
	}
	if h.DialTimeout < 0 {
		return errors.New("dial_timeout: must not be negative")
	}
	if time.Duration(h.RefreshBefore) >= tokencache.MaxTokenLifetime {
		return errors.New("refresh_before: must be shorter than a day (tokens live 20 minutes)")
	}
	if time.Duration(h.Timeout) > 5*time.Minute {
		return errors.New("timeout: must be at most 5m")
	}
	if h.Timeout > 0 && h.DialTimeout > h.Timeout {
		return errors.New("dial_timeout: must not exceed timeout")
	}
	if len(h.Name) > 128 || !printable(h.Name) {
		return errors.New("name: must be at most 128 printable characters")
	}
	if h.RefreshBefore < 0 {
		return errors.New("refresh_before: must not be negative")
	}
	if h.Timeout < 0 {
		return errors.New("timeout: must not be negative")
	}
	if h.MaxReplayBody < 0 {
		return errors.New("max_replay_body: must not be negative")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// info is what status pages may show about the credential.
func (h *Handler) info() credentialInfo {
	return credentialInfo{
		Name:            h.Name,
		TokenHost:       tokenHost(h.TokenURL),
		Username:        h.Username,
		IdentityStoreID: h.IdentityStoreID,
	}
}

// ServeHTTP sets the bearer token and calls the next handler, or refuses
// the request when no valid token can be had.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if unsafePath(r.URL.Path) {
		return caddyhttp.Error(http.StatusBadRequest, errors.New("path has dot segments or backslashes; not forwarding with the groupid token"))
	}
	tok, err := h.shared.src.Token(r.Context())
	if err != nil {
		return h.refuse(w, err)
	}
	r.Header["Authorization"] = []string{tok.AuthorizationHeader()}
	h.shared.stats.injected.Add()
	if !h.replay {
		return next.ServeHTTP(w, r)
	}
	return h.serveWithReplay(w, r, next, tok)
}

// unsafePath reports whether p has a "." or ".." segment or a backslash.
// Caddy's path matchers test the cleaned path but reverse_proxy forwards
// the raw one, and IIS treats a backslash as a slash, so such a path could
// steer the token to a URL the matcher never allowed.
func unsafePath(p string) bool {
	if strings.IndexByte(p, '\\') >= 0 {
		return true
	}
	// Only a "/." can start a dot segment; most paths have none.
	for i := strings.Index(p, "/."); i >= 0; {
		j := i + 2
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
		next := strings.Index(p[i+2:], "/.")
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

// refuse turns a token failure into the documented HTTP error.
func (h *Handler) refuse(w http.ResponseWriter, err error) error {
	var nt *tokencache.NoTokenError
	if errors.As(err, &nt) && nt.Permanent() {
		h.shared.stats.rejected.Add(1)
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	h.shared.stats.unavailable.Add(1)
	retry := 1
	if nt != nil && !nt.RetryAt.IsZero() {
		secs := math.Ceil(nt.RetryAt.Sub(h.shared.clock.Now()).Seconds())
		if secs > 1 {
			retry = int(secs)
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	return caddyhttp.Error(http.StatusServiceUnavailable, err)
}

// Cleanup releases the shared token source; the last user stops it.
func (h *Handler) Cleanup() error {
	if h.poolKey == "" {
		return nil
	}
	_, err := sources.Delete(h.poolKey)
	h.poolKey = ""
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
