package groupidauth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/tokencache/clock"
)

// rig is a handler in front of the simulator, both on one fake clock. The
// next handler serves the request with the simulator in-process, so every
// forwarded request has its token checked by the simulator at fake time.
type rig struct {
	t    *testing.T
	clk  *clock.Fake
	sim  *groupidsim.Server
	h    *Handler
	logs *observer.ObservedLogs
	// logger writes to logs.
	logger *zap.Logger
	start  time.Time
}

var rigEpoch = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// newRig gives the handler's groupid app the rig's seams (fake clock,
// jitter 0.5, observed logger) as options: rig tests may run in parallel.
func newRig(t *testing.T, cfg groupidsim.Config, mod func(*rig)) *rig {
	t.Helper()
	clk := clock.NewFake(rigEpoch)
	cfg.Now = clk.Now
	sim, tokenURL := simSite(t, cfg)
	core, logs := observer.New(zap.DebugLevel)
	h := simHandler(tokenURL)
	r := &rig{t: t, clk: clk, sim: sim, h: h, logs: logs, start: rigEpoch, logger: zap.New(core)}
	h.app = r.newApp()
	if mod != nil {
		mod(r)
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	return r
}

// newApp is a groupid app with the rig's seams, for the rig's config and
// for the configs a test loads after it (reloads).
func (r *rig) newApp() *App {
	return &App{clock: r.clk, jitter: func() float64 { return 0.5 }, logs: r.logger}
}

// settle waits until the refresh goroutine is idle on its timer.
func (r *rig) settle() {
	r.clk.BlockUntil(1)
	for r.h.cred().src.State().Attempting {
		r.clk.BlockUntil(1)
	}
}

// advance moves fake time forward in steps, letting the source act on each.
func (r *rig) advance(d, step time.Duration) {
	for d > 0 {
		s := min(step, d)
		r.clk.Advance(s)
		r.settle()
		d -= s
	}
}

// elapsed is fake time since the rig started.
func (r *rig) elapsed() time.Duration { return r.clk.Now().Sub(r.start) }

// simNext stands in for reverse_proxy with the groupid transport in front
// of the simulator (served in-process).
type simNext struct{ sim *groupidsim.Server }

func (n simNext) ServeHTTP(w http.ResponseWriter, req *http.Request) error {
	return proxyTo(w, req, handlerSender(n.sim.Handler()))
}

// upstream is a caddyhttp.Handler used as the upstream behind proxyTo.
type upstream struct{ h caddyhttp.Handler }

func (u upstream) ServeHTTP(w http.ResponseWriter, req *http.Request) error {
	return proxyTo(w, req, handlerSender(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = u.h.ServeHTTP(w, r)
	})))
}

// proxyTo does what reverse_proxy does around the groupid transport: it
// sends a copy of r through roundTrip and copies the answer to w.
func proxyTo(w http.ResponseWriter, r *http.Request, send sender) error {
	out := r.Clone(r.Context())
	if out.ContentLength == 0 {
		out.Body = nil
	}
	resp, err := roundTrip(out, send)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	return err
}

// handlerSender serves each round trip with h in-process.
func handlerSender(h interface {
	ServeHTTP(http.ResponseWriter, *http.Request)
}) sender {
	return func(req *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		if req.Body == nil { // a server's request always has a body
			req = req.WithContext(req.Context())
			req.Body = http.NoBody
		}
		h.ServeHTTP(rec, req)
		return rec.Result(), nil
	}
}

// do sends one request through the handler and returns the status the
// client would see, and the Retry-After header.
func (r *rig) do(method, path string, body []byte) (int, string) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body == nil {
		req = httptest.NewRequest(method, path, nil)
	}
	w, err := serve(r.h, req, simNext{r.sim})
	if err != nil {
		st := statusOf(err)
		if st == 0 {
			r.t.Fatalf("%s %s: %v", method, path, err)
		}
		return st, w.Header().Get("Retry-After")
	}
	return w.Code, w.Header().Get("Retry-After")
}

// status serves req and returns the status the client would see; it is
// safe to call from many goroutines.
func (r *rig) status(req *http.Request) int {
	w, err := serve(r.h, req, simNext{r.sim})
	if err != nil {
		return statusOf(err)
	}
	return w.Code
}

// statusesOf runs n requests concurrently and returns their statuses.
func (r *rig) statusesOf(n int, newReq func() *http.Request) []int {
	out := make(chan int, n)
	concurrently(n, func() { out <- r.status(newReq()) })
	close(out)
	var sts []int
	for st := range out {
		sts = append(sts, st)
	}
	return sts
}

// getUser is the typical legacy call.
func (r *rig) getUser() (int, string) {
	return r.do("GET", "/GroupIDDataService/api/IdentityStores/2/Users/"+groupidsim.SeedUserID, nil)
}

// tokenRequests is the number of token requests the simulator has seen.
func (r *rig) tokenRequests() int { return r.sim.Counters().TokensTotal() }

// concurrently runs f n times in parallel and waits.
func concurrently(n int, f func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}

// simSite runs a simulator over plain HTTP for handler tests.
func simSite(t testing.TB, cfg groupidsim.Config) (*groupidsim.Server, string) {
	t.Helper()
	sim := groupidsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	// A token URL of its own: a port reused from an earlier test must not
	// seed this test's handlers from the process-wide token store.
	return sim, testenv.UniqueTokenURL(sim.TokenURL(srv.URL))
}

func simHandler(tokenURL string) *Handler {
	return &Handler{Credential: simCredential(tokenURL)}
}

func simCredential(tokenURL string) Credential {
	return Credential{
		TokenURL:        tokenURL,
		Username:        groupidsim.DefaultUsername,
		Password:        groupidsim.DefaultPassword,
		ClientID:        groupidsim.DefaultClientID,
		ClientSecret:    groupidsim.DefaultClientSecret,
		IdentityStoreID: groupidsim.DefaultIdentityStoreID,
		AllowHTTP:       true, // the simulator runs over plain HTTP in these tests
	}
}

// cred is the handler's first (for most tests, only) credential.
func (h *Handler) cred() *credential { return h.binding.stores[0].cred }

// provision provisions h in a fresh Caddy context and cleans up after the test.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	return provisionB(t, h)
}

// provisionB is provision for tests and benchmarks alike: h in a config of
// its own (its app, h.app if set, else a plain one), started as Caddy
// starts a config that loaded, and stopped and cleaned up after the test.
func provisionB(t testing.TB, h *Handler) error {
	t.Helper()
	cfg, err := provisionOnly(t, h)
	if err == nil {
		cfg.start()
	}
	return err
}

// provisionOnly provisions h in a config of its own that is not started:
// a load that failed after provisioning, or `caddy validate`.
func provisionOnly(t testing.TB, h *Handler) (*testConfig, error) {
	t.Helper()
	if h.app == nil {
		h.app = new(App) // no Caddy config here to load the groupid app from
	}
	cfg := startConfig(t, h.app)
	return cfg, h.Provision(cfg.ctx)
}

// testConfig is a config load in a unit test: a Caddy context and its
// groupid app.
type testConfig struct {
	t       testing.TB
	ctx     caddy.Context
	app     *App
	started bool
}

// startConfig provisions app in a fresh context; the test's cleanup stops
// the app (if started), cleans it up and cancels the context, as Caddy
// does with a config that is replaced.
func startConfig(t testing.TB, app *App) *testConfig {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if app.events == nil {
		app.events = new(eventRecorder) // no Caddy config here to load the events app from
	}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := &testConfig{t: t, ctx: ctx, app: app}
	t.Cleanup(func() { cfg.end(); cancel() })
	return cfg
}

// start starts the config's credentials (App.Start without its pairing
// checks: unit tests have no transports).
func (c *testConfig) start() {
	if err := c.app.startTracing(); err != nil {
		c.t.Fatal(err)
	}
	c.app.startCredentials()
	c.started = true
}

// end stops the config and releases its credentials.
func (c *testConfig) end() {
	if c.started {
		_ = c.app.Stop()
		c.started = false
	}
	_ = c.app.Cleanup()
}

// oneConfig returns a function that provisions a handler made by base and
// changed by mod into one config load (one context and one groupid app),
// which is started by start and ended after the test.
func oneConfig(t *testing.T, base func() *Handler) (add func(mod func(*Handler)) (*Handler, error), cfg *testConfig) {
	t.Helper()
	cfg = startConfig(t, new(App))
	return func(mod func(*Handler)) (*Handler, error) {
		h := base()
		h.app = cfg.app
		mod(h)
		return h, h.Provision(cfg.ctx)
	}, cfg
}

// recordNext is a next handler that records the Authorization values it saw.
type recordNext struct{ seen [][]string }

func serve(h *Handler, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, error) {
	return serveWith(h, httptest.NewRecorder(), r, next)
}

// serveWith is serve with a given recorder (e.g. with headers already set).
// next is the upstream: h's next handler is reverse_proxy with the groupid
// transport in front of it (proxyTo), as in a real config.
func serveWith(h *Handler, w *httptest.ResponseRecorder, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, error) {
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	// In a Caddy server that does not log credentials (the default), as
	// in production: the first send may write into proxyTo's clone.
	ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, new(caddyhttp.Server))
	r = r.WithContext(ctx)
	if _, ok := next.(simNext); !ok {
		next = upstream{next} // next is the upstream behind reverse_proxy
	}
	return w, h.ServeHTTP(w, r, next)
}

// statusOf returns the HTTP status of a caddyhttp.HandlerError, or 0.
func statusOf(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// retire ends the config of h, as Caddy ends a config a reload replaced:
// its app stops and releases its credentials.
func retire(h *Handler) error {
	return errors.Join(h.app.Stop(), h.app.Cleanup())
}

// newTestContext is a fresh Caddy context.
func newTestContext() (caddy.Context, context.CancelFunc) {
	return caddy.NewContext(caddy.Context{Context: context.Background()})
}

// simSecrets is every secret the simulator knows of: the password and
// client secret, extra ones (a changed password), and every access and
// refresh token it issued.
func simSecrets(sim *groupidsim.Server, extra ...string) []string {
	out := append([]string{groupidsim.DefaultPassword, groupidsim.DefaultClientSecret}, extra...)
	out = append(out, sim.IssuedTokens()...)
	return append(out, sim.IssuedRefreshTokens()...)
}
