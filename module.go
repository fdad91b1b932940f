// Package groupidauth is a Caddy HTTP handler that puts a Netwrix Directory
// Manager (GroupID) service-account bearer token on proxied requests, so
// that legacy applications can call GroupID's User and Group APIs with no
// authentication code of their own.
package groupidauth

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
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
// Required, unless Credentials names credentials of the groupid app:
// token_url, username, password, client_id, client_secret and
// identity_store_id.
type Handler struct {
	// Name labels this credential in metrics, logs, the admin status and
	// groupid_ready. Two credentials with different settings in one config
	// need different names. Never put a secret here. Not with Credentials
	// (a named credential's name is its name). Default:
	// username@token-host/identity_store_id.
	Name string `json:"name,omitempty"`

	// Credential holds the token settings, given inline: token_url,
	// username, password, client_id, client_secret, identity_store_id
	// and the optional ones (JSON: its fields sit directly in the handler).
	// Leave them all out when Credentials names credentials of the groupid
	// app instead.
	Credential

	// Credentials names credentials defined once in the groupid app
	// (Caddyfile global option `groupid { credential <name> {...} }`, JSON
	// apps.groupid.credentials) instead of inline settings. With one name,
	// every request the handler passes uses that credential. With several
	// (one per identity store), each request uses the credential whose
	// identity_store_id is the {is} segment of the
	// .../IdentityStores/{is}/... path it is sent to; a request for any
	// other store gets 403 and is not forwarded. Default: none (inline).
	Credentials []string `json:"credentials,omitempty"`

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

	logger *zap.Logger
	// app is the config's groupid app; tests that provision a handler
	// outside a Caddy config set it beforehand.
	app *App
	// binding binds the requests this handler passes to its credentials
	// (see roundTrip).
	binding *binding
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
// is no separate Validate step), and registers the handler's credential
// (inline) or looks up its named credentials in the config's groupid app.
// It does no network I/O and starts nothing: the app starts the token
// sources when the config starts.
func (h *Handler) Provision(ctx caddy.Context) error {
	var err error
	if h.app == nil {
		if h.app, err = appOf(ctx); err != nil {
			return err
		}
	}
	h.logger = h.app.loggerFor(ctx)
	if err := expandPlaceholders([]stringField{{"name", &h.Name}, {"api_base", &h.APIBase}}); err != nil {
		return err
	}
	if err := h.validate(); err != nil {
		return err
	}
	h.applyDefaults()
	creds, err := h.credentials(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(creds))
	for i, c := range creds {
		names[i] = c.info.Name
	}
	if len(h.Credentials) == 0 {
		h.Name = names[0] // the default name, if none was given
	}
	h.app.addHandler(names...)
	h.binding = newBinding(creds, h.APIBase, h.ReplayOn401 == nil || *h.ReplayOn401, *h.MaxReplayBody, h.logger)
	return nil
}

// credentials returns the handler's credentials: its inline one, or the
// named ones it uses (each for a different identity store).
func (h *Handler) credentials(ctx caddy.Context) ([]*credential, error) {
	if len(h.Credentials) == 0 {
		p, err := h.Credential.prepare(ctx, h.Name, h.logger)
		if err != nil {
			return nil, err
		}
		c, err := h.app.register(p, false)
		if err != nil {
			return nil, err
		}
		return []*credential{c}, nil
	}
	if given := h.Credential.given(); len(given) > 0 || h.Name != "" {
		if h.Name != "" {
			given = append(given, "name")
		}
		return nil, fmt.Errorf("credentials: a handler that uses named credentials takes no credential settings of its own (given: %s); put them in the named credential",
			strings.Join(given, ", "))
	}
	var creds []*credential
	stores := map[string]string{}
	for _, name := range h.Credentials {
		c, err := h.app.named(name)
		if err != nil {
			return nil, err
		}
		store := strings.ToLower(c.info.IdentityStoreID)
		if other, dup := stores[store]; dup {
			return nil, fmt.Errorf("credentials: %q and %q are both for identity store %s; a handler takes one credential per store", other, name, c.info.IdentityStoreID)
		}
		stores[store] = name
		creds = append(creds, c)
	}
	return creds, nil
}

// ServeHTTP binds the request to the handler's credentials and calls the
// next handler; reverse_proxy's groupid transport puts the token on the
// request it sends to GroupID (see roundTrip). The request itself never
// carries the token. A request is refused before anything is forwarded
// when no valid token can be had for the credential its path names. Paths
// are checked by the transport, on the URL it sends after every rewrite,
// not here on the client's.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if c := h.binding.front(r.URL.Path); c != nil {
		if _, err := c.src.Token(r.Context()); err != nil {
			traceCredential(r, c)
			err = c.refusal(err)
			h.retryAfter(w, err)
			return err
		}
	}
	// The binding lasts while the rest of the chain runs; error routes run
	// after this returns (also after a panic) and are not bound. A
	// groupid_auth further out in the chain is bound again (see passage).
	p := &passage{b: h.binding}
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any) // caddyhttp.GetVar and SetVar, with one lookup
	if outer, ok := vars[bindingVar].(*passage); ok {
		p.outer, p.req = outer, outer.req
	} else {
		p.req = &p.own
		// The first groupid_auth of the request provides its placeholders.
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		p.req.provide(repl)
	}
	if vars != nil {
		vars[bindingVar] = p
	}
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
		secs := math.Ceil(nt.RetryAt.Sub(h.binding.clock.Now()).Seconds())
		if secs > 1 {
			retry = int(secs)
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
