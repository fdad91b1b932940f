package groupidauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Transport is reverse_proxy's http transport (every option of
// `transport http` is accepted, with the same meaning and defaults) that
// puts the groupid token on the requests that passed a groupid_auth
// handler, inside the round trip: the token is set on the copy of the
// request that is sent to GroupID and on nothing else, and after a 401 that
// copy is sent once more with a fresh token, without running Caddy's
// routes again. See roundTrip.
//
// Requests that did not pass groupid_auth (active health checks, other
// routes) are sent as the http transport sends them, without a token.
// A bound request whose path, as it leaves reverse_proxy, is not one of its
// credential's User and Group API paths gets 403 and is not sent; one
// with dot segments or encoded separators gets 400.
type Transport struct {
	// HTTPTransport holds every option of `transport http` (JSON: its
	// fields, inline), with the same meanings and defaults; it makes the
	// round trips.
	*reverseproxy.HTTPTransport
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.groupid",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision sets up the wrapped http transport and tells the config's
// groupid app that a groupid transport is present.
func (t *Transport) Provision(ctx caddy.Context) error {
	if t.HTTPTransport == nil {
		t.HTTPTransport = new(reverseproxy.HTTPTransport)
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	app, err := appOf(ctx)
	if err != nil {
		return err
	}
	app.addTransport()
	return nil
}

// RoundTrip sends req with the token if it passed groupid_auth.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return roundTrip(req, t.HTTPTransport.RoundTrip)
}

// UnmarshalCaddyfile parses `transport groupid { ... }` exactly as
// `transport http { ... }`.
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if t.HTTPTransport == nil {
		t.HTTPTransport = new(reverseproxy.HTTPTransport)
	}
	return t.HTTPTransport.UnmarshalCaddyfile(d)
}

// Cleanup releases the wrapped transport's connections.
func (t *Transport) Cleanup() error {
	if t.HTTPTransport == nil {
		return nil
	}
	return t.HTTPTransport.Cleanup()
}

// Interface guards
var (
	_ caddy.Provisioner                      = (*Transport)(nil)
	_ caddy.CleanerUpper                     = (*Transport)(nil)
	_ http.RoundTripper                      = (*Transport)(nil)
	_ caddyfile.Unmarshaler                  = (*Transport)(nil)
	_ reverseproxy.TLSTransport              = (*Transport)(nil)
	_ reverseproxy.H2CTransport              = (*Transport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport = (*Transport)(nil)
)
