package groupidauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the groupid app of a config (JSON apps.groupid; it needs no
// settings and is loaded by the first groupid_auth handler or groupid
// transport). It checks, before the config starts, that groupid_auth
// handlers and groupid transports come together: the token is added by
// reverse_proxy's groupid transport, so a groupid_auth handler in a config
// where no reverse_proxy uses it would send every request without a token.
type App struct {
	mu         sync.Mutex
	handlers   []string // credential names of the groupid_auth handlers; guarded by mu
	transports int      // guarded by mu
	readyNames []string // names groupid_ready handlers check; guarded by mu
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "groupid",
		New: func() caddy.Module { return new(App) },
	}
}

// appOf returns the groupid app of the config being loaded. Caddy loads it
// on first use, and starts it with the config.
func appOf(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("groupid")
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

func (a *App) addHandler(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers = append(a.handlers, name)
}

func (a *App) addReadyName(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.readyNames = append(a.readyNames, name)
}

func (a *App) addTransport() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.transports++
}

// Start fails the config (caddy run, caddy reload) when groupid_auth has
// no groupid transport to send its requests, or the reverse, or when a
// groupid_ready handler names a credential the config does not have.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case len(a.handlers) > 0 && a.transports == 0:
		return fmt.Errorf("groupid_auth (credential %s) is configured, but no reverse_proxy uses `transport groupid`, "+
			"which is what puts the token on requests to GroupID: in the reverse_proxy that sends them to GroupID, "+
			"write `transport groupid { ... }` instead of `transport http { ... }` (same options), or add `transport groupid`",
			strings.Join(a.handlers, ", "))
	case len(a.handlers) == 0 && a.transports > 0:
		return errNoHandler
	}
	for _, name := range a.readyNames {
		if !slices.Contains(a.handlers, name) {
			return fmt.Errorf("groupid_ready: no groupid_auth credential named %q in this config (names: %s)", name, strings.Join(a.handlers, ", "))
		}
	}
	return nil
}

var errNoHandler = errors.New("a reverse_proxy uses `transport groupid`, but no groupid_auth handler is configured: " +
	"put groupid_auth (with the credential) before that reverse_proxy, or use `transport http`")

// Stop does nothing: credentials are released by their handlers' Cleanup.
func (a *App) Stop() error { return nil }

// Interface guards
var _ caddy.App = (*App)(nil)
