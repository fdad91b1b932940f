package groupidauth

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the groupid app (JSON apps.groupid): it owns the credentials of
// its config, those defined once here by name and those given inline in
// groupid_auth handlers. Caddy provisions it for every config load and
// starts it only for the config that will run: the token sources start
// (and the first token request goes out) when it starts, never for
// `caddy validate` nor for a load that fails before it starts. When a newer
// config replaces it, the credentials it shares with that config keep
// their token; the others stop.
//
// It also checks, before the config starts, that groupid_auth handlers
// and groupid transports come together: the token is added by
// reverse_proxy's groupid transport, so a groupid_auth handler in a config
// where no reverse_proxy uses it would send every request without a token.
type App struct {
	// Credentials are named credentials that groupid_auth handlers use
	// with `credentials <name>...` (Caddyfile: the global option
	// `groupid { credential <name> { ... } }`). One named credential used
	// by many routes and sites is one token chain. Default: none.
	Credentials map[string]*Credential `json:"credentials,omitempty"`

	// Tracing turns on OpenTelemetry spans for the token requests of the
	// config's credentials (one span per request), exported as Caddy's
	// `tracing` handler exports, configured by the standard OTEL_*
	// environment variables (Caddyfile: the global option
	// `groupid { tracing }`). Default: off; an OTLP endpoint in the
	// environment alone does not turn it on. See the README's Tracing.
	Tracing bool `json:"tracing,omitempty"`

	// Test seams, set before Provision: the clock and jitter of the
	// credentials this app creates, the logger of its handlers, and the
	// events app it emits to.
	clock  tokencache.Clock
	jitter func() float64
	logs   *zap.Logger
	events emitter

	logger  *zap.Logger
	tracing appTracing // see tracing.go
	// queue emits the events of this config's credentials (events.go).
	queue *eventQueue

	mu         sync.Mutex
	creds      map[string]*appCredential // by name; guarded by mu
	handlers   []string                  // credential names handlers use; guarded by mu
	transports int                       // guarded by mu
	readyNames []string                  // names groupid_ready handlers check; guarded by mu
	running    bool                      // between Start and Stop; guarded by mu
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "groupid",
		New: func() caddy.Module { return new(App) },
	}
}

// appOf returns the groupid app of the config being loaded. Caddy loads it
// on first use (provisioned, with its named credentials), and starts it
// with the config.
func appOf(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("groupid")
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

// Provision prepares the named credentials (no network I/O, nothing
// started), registers the config's metrics and gets the config's events
// app, which the app emits its events to once it starts.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = a.loggerFor(ctx)
	a.creds = map[string]*appCredential{}
	if a.events == nil {
		ev, err := ctx.App("events")
		if err != nil {
			return fmt.Errorf("getting events app: %v", err)
		}
		a.events = ev.(*caddyevents.App)
	}
	a.queue = newEventQueue(ctx, a.events, a.logger)
	if err := registerMetrics(ctx.GetMetricsRegistry(), a); err != nil {
		return errors.New("registering metrics: " + err.Error())
	}
	names := make([]string, 0, len(a.Credentials))
	for name := range a.Credentials {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := a.provisionNamed(ctx, name); err != nil {
			return fmt.Errorf("credential %q: %w", name, err)
		}
	}
	return nil
}

func (a *App) provisionNamed(ctx caddy.Context, name string) error {
	if name == "" || len(name) > 128 || !printable(name) {
		return errors.New("name: must be 1 to 128 printable characters")
	}
	cr := a.Credentials[name]
	if cr == nil {
		return errors.New("no settings")
	}
	p, err := cr.prepare(ctx, name, a.logger)
	if err != nil {
		return err
	}
	_, err = a.register(p, true)
	return err
}

// loggerFor is ctx's logger, or the test seam's.
func (a *App) loggerFor(ctx caddy.Context) *zap.Logger {
	if a.logs != nil {
		return a.logs
	}
	return ctx.Logger()
}

// Start fails the config (caddy run, caddy reload) when groupid_auth has
// no groupid transport to send its requests, or the reverse, or when a
// groupid_ready handler names a credential the config does not have.
// Otherwise it makes this config's trust material and storage the ones its
// credentials use, and starts their token sources.
func (a *App) Start() error {
	if err := a.check(); err != nil {
		return err
	}
	if err := a.startTracing(); err != nil {
		return err
	}
	a.startCredentials()
	return nil
}

func (a *App) check() error {
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
		if _, ok := a.creds[name]; !ok {
			names := slices.Clone(a.handlers) // in config order, then the unused named ones
			for _, n := range a.namesLocked() {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			return fmt.Errorf("groupid_ready: no groupid_auth credential named %q in this config (names: %s)", name, strings.Join(names, ", "))
		}
	}
	return nil
}

// startCredentials starts every credential of the app with this config's
// use of it.
func (a *App) startCredentials() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue.start()
	for _, ac := range a.creds {
		ac.c.start(ac.use)
	}
	a.running = true
}

var errNoHandler = errors.New("a reverse_proxy uses `transport groupid`, but no groupid_auth handler is configured: " +
	"put groupid_auth (with the credential) before that reverse_proxy, or use `transport http`")

// Stop hands the credentials back to the config that runs on (or to none):
// a credential no other config uses stops when Cleanup releases it.
func (a *App) Stop() error {
	defer a.stopTracing() // after the credentials left this config
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.running {
		return nil
	}
	a.running = false
	for _, ac := range a.creds {
		ac.c.stop(ac.use)
	}
	a.queue.end()
	return nil
}

// Cleanup releases the app's credentials; the last config that uses one
// stops its token source. They are released in parallel, so that the
// revocations of retired credentials (revoke_on_stop) together take at
// most RevokeTimeout.
func (a *App) Cleanup() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]string, 0, len(a.creds))
	for name, ac := range a.creds {
		keys = append(keys, ac.c.key)
		delete(a.creds, name)
	}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Go(func() { errs[i] = releaseCredential(key) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *App) addHandler(names ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		if !slices.Contains(a.handlers, n) {
			a.handlers = append(a.handlers, n)
		}
	}
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

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
