// Package groupidauth is a Caddy HTTP handler that puts a Netwrix Directory
// Manager (GroupID) service-account bearer token on proxied requests, so
// that legacy applications can call GroupID's User and Group APIs with no
// authentication code of their own.
package groupidauth

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler obtains a token from GroupID's Security Service with the OAuth2
// password grant, keeps it fresh in the background, and binds the requests
// it handles to that credential before passing them on. The token itself
// is added by the reverse_proxy that sends them to GroupID, which must use
// `transport groupid` (http.reverse_proxy.transport.groupid): on the copy
// of the request it sends, replacing any Authorization header of the
// client's, and only for the User and Group API paths of identity_store_id
// under api_base. No other handler, matcher or error route sees the token.
// A config with this handler and no groupid transport does not start.
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
//
// Required: token_url, username, password, client_id, client_secret and
// identity_store_id.
type Handler struct {
	// Name labels this credential in metrics, logs, the admin status and
	// groupid_ready. Two credentials with different settings in one config
	// need different names. Never put a secret here. Default:
	// username@token-host/identity_store_id.
	Name string `json:"name,omitempty"`

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

	// RefreshBefore is how long before a token expires its background
	// refresh starts; a random extra of up to half of it spreads replicas
	// apart. It is capped at half the token's lifetime and must be under
	// 24 h. Default: a quarter of the lifetime (300 s for GroupID's 1200 s
	// tokens).
	RefreshBefore caddy.Duration `json:"refresh_before,omitempty"`

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

	// ReplayOn401 turns 401 healing on or off. When the upstream answers
	// 401 to a request that carried the token, the token is dropped, a
	// fresh one is fetched and the request is sent once more if its body
	// was kept. Default: true.
	ReplayOn401 *bool `json:"replay_on_401,omitempty"`

	// MaxReplayBody is the largest request body, in bytes, kept in memory
	// so that the request can be replayed after a 401. The body is kept as
	// it streams to the upstream, in 16 KiB chunks, so memory grows with
	// the bytes received, never with the announced Content-Length. A larger
	// body streams through unkept: its 401 goes to the client and the next
	// request uses the fresh token. So does a body that would take the
	// process past MaxReplayMemory (64 MiB for all requests at once). 0
	// keeps no body: a request with a body is never replayed (its 401 goes
	// to the client), one without a body still is. At most 16777216
	// (16 MiB). Default (unset): 1048576 (1 MiB).
	MaxReplayBody *int64 `json:"max_replay_body,omitempty"`

	// APIBase is the path of GroupID's Data Service API as the request
	// leaves reverse_proxy (after every rewrite). The token is sent only
	// with requests to <api_base>/IdentityStores/<identity_store_id>/Users
	// and .../Groups (and below them), compared without regard to case;
	// any other path gets 403 and is not forwarded. Change it when the
	// Data Service is installed under another IIS application name.
	// Default: /GroupIDDataService/api.
	APIBase string `json:"api_base,omitempty"`

	// Share, if set, shares this credential's token with the other
	// replicas that use the same storage and key: one token chain for the
	// cluster instead of one per replica, and a restarted replica starts
	// from the shared token. See ShareConfig. Default: off, each replica
	// gets its own token.
	Share *ShareConfig `json:"share,omitempty"`

	logger *zap.Logger
	grant  tokencache.Grant
	cred   *credential
	// app is the config's groupid app; tests that provision a handler
	// outside a Caddy config set it beforehand.
	app *App
	// binding binds the requests this handler passes to its credential
	// (see roundTrip).
	binding *binding
	// poolKey and config are set once the credential is acquired and
	// attached, so Cleanup releases only what Provision took.
	poolKey string
	config  configID
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

// DefaultAPIBase is the Data Service API path when APIBase is not set.
const DefaultAPIBase = "/GroupIDDataService/api"

// DefaultMaxReplayBody is the largest request body kept for a replay after a
// 401 when MaxReplayBody is not set: 1 MiB.
const DefaultMaxReplayBody = 1 << 20

// Provision expands placeholders, validates the configuration (once: there
// is no separate Validate step), and attaches the handler to the pooled
// credential for its settings, starting the background warm-up if this is
// the credential's first user. It does no network I/O.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = loggerFor(ctx)
	rawPassword, rawSecret := h.Password, h.ClientSecret
	if err := h.expandPlaceholders(); err != nil {
		return err
	}
	if err := h.validate(); err != nil {
		return err
	}
	h.applyDefaults()
	share, err := h.shareSpec(ctx)
	if err != nil {
		return err
	}
	tlsConfig, trust, err := h.loadTokenTLS(ctx)
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
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return errors.New("registering metrics: " + err.Error())
	}
	spec := credentialSpec{
		key: tokencache.HashFields(h.grant.Key(), h.Name,
			time.Duration(h.Timeout).String(), time.Duration(h.DialTimeout).String(), time.Duration(h.RefreshBefore).String(),
			share.poolKey()),
		info: credentialInfo{
			Name:            h.Name,
			TokenHost:       tokenHost(h.TokenURL),
			Username:        h.Username,
			IdentityStoreID: h.IdentityStoreID,
		},
		grant:       h.grant,
		timeout:     time.Duration(h.Timeout),
		dialTimeout: time.Duration(h.DialTimeout),
		refresh:     time.Duration(h.RefreshBefore),
		reread:      h.rereader(rawPassword, rawSecret),
		logger:      h.logger,
		share:       share,
	}
	cred, err := acquireCredential(spec)
	if err != nil {
		return err
	}
	h.cred, h.poolKey = cred, spec.key
	h.binding = &binding{
		cred:    cred,
		replay:  h.ReplayOn401 == nil || *h.ReplayOn401,
		maxBody: *h.MaxReplayBody,
		api:     newAPIScope(h.APIBase, h.IdentityStoreID),
	}
	transport := tokencache.NewHTTPClient(tlsConfig, time.Duration(h.Timeout), time.Duration(h.DialTimeout)).Transport
	var storage certmagic.Storage
	if share != nil {
		storage = share.storage
	}
	if err := cred.attach(ctx.GetMetricsRegistry(), transport, trust, storage); err != nil {
		return err
	}
	h.config = ctx.GetMetricsRegistry()
	if h.app == nil {
		if h.app, err = appOf(ctx); err != nil {
			return err
		}
	}
	h.app.addHandler(h.Name)
	return nil
}

// ServeHTTP binds the request to the handler's credential and calls the
// next handler; reverse_proxy's groupid transport puts the token on the
// request it sends to GroupID (see roundTrip). The request itself never
// carries the token. A request is refused before anything is forwarded
// when no valid token can be had. Paths are checked by the transport, on
// the URL it sends after every rewrite, not here on the client's.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if _, err := h.cred.src.Token(r.Context()); err != nil {
		err = h.cred.refusal(err)
		h.retryAfter(w, err)
		return err
	}
	// The binding lasts while the rest of the chain runs; error routes run
	// after this returns (also after a panic) and are not bound. A
	// groupid_auth further out in the chain is bound again (see passage).
	ctx := r.Context()
	p := &passage{b: h.binding}
	if outer, ok := caddyhttp.GetVar(ctx, bindingVar).(*passage); ok {
		p.outer, p.replayed = outer, outer.replayed
	} else {
		p.replayed = &p.own
	}
	caddyhttp.SetVar(ctx, bindingVar, p)
	defer p.done.Store(true)
	err := next.ServeHTTP(w, r)
	if err != nil {
		h.retryAfter(w, err)
	}
	return err
}

// retryAfter sets Retry-After on a 503 for lack of a token (refused here or
// by the transport): the seconds until the next token request, at least 1.
func (h *Handler) retryAfter(w http.ResponseWriter, err error) {
	var nt *tokencache.NoTokenError
	if !errors.As(err, &nt) || nt.Permanent() {
		return
	}
	retry := 1
	if !nt.RetryAt.IsZero() {
		secs := math.Ceil(nt.RetryAt.Sub(h.cred.clock.Now()).Seconds())
		if secs > 1 {
			retry = int(secs)
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
}

// Cleanup detaches the handler from its config and releases the pooled
// credential; the last user stops it. Caddy calls it even when Provision
// failed, so it releases only what Provision took.
func (h *Handler) Cleanup() error {
	if h.config != nil {
		h.cred.detach(h.config)
		h.config = nil
	}
	if h.poolKey == "" {
		return nil
	}
	err := releaseCredential(h.poolKey)
	h.poolKey = ""
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
