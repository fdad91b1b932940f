package groupidauth

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// A credential is one service account's pooled token source and everything
// known about it: its counters, its token log lines, its name, and the one
// snapshot that every face (the request path, groupid_ready, the admin API
// and the metrics) reads. It outlives config loads: handlers of successive
// configs with the same settings share one credential, so `caddy reload`
// keeps the token.
type credential struct {
	info credentialInfo
	// transports are the token endpoint transports (trust pool, client
	// certificate, server name) of the config loads that use the
	// credential; token requests use the running config's. Guarded by
	// loaded's mutex.
	transports perConfig[http.RoundTripper]
	// trust is the token endpoint TLS settings each config load gave the
	// credential; all handlers of a load must give the same. Guarded by
	// loaded's mutex.
	trust    perConfig[tlsSettings]
	src      *tokencache.Source
	clock    tokencache.Clock
	logger   atomic.Pointer[zap.Logger] // of the newest config that uses it
	counters counters
	// scopeWarned is when (Unix ns) a refusal for a path outside the
	// credential's APIs was last logged.
	scopeWarned atomic.Int64
	// share is the credential's shared storage entry, nil when not
	// shared; it uses the storage of the newest config that provisions it.
	share *storageShare
}

// credentialInfo is what may be shown about a credential: never a secret.
type credentialInfo struct {
	Name            string `json:"name"`
	TokenHost       string `json:"token_endpoint_host"`
	Username        string `json:"username"`
	IdentityStoreID string `json:"identity_store_id"`
}

// pool holds one credential per settings key across config loads.
var pool = caddy.NewUsagePool()

// tokenStore keeps tokens by grant hash for the whole process: a credential
// re-created for the same grant (for example with a new timeout) starts
// from the token its predecessor held.
var tokenStore = tokencache.NewStore()

// Seams for tests: the clock and jitter of new credentials, and the logger
// a handler uses.
var (
	newClock  = func() tokencache.Clock { return tokencache.SystemClock{} }
	newJitter = func() func() float64 { return nil } // nil: math/rand/v2
	loggerFor = func(ctx caddy.Context) *zap.Logger { return ctx.Logger() }
)

// credentialSpec is what a handler asks the pool for.
type credentialSpec struct {
	key         string // hash of every setting below but tls; never a secret
	info        credentialInfo
	grant       tokencache.Grant
	timeout     time.Duration
	dialTimeout time.Duration
	refresh     time.Duration
	reread      func() (tokencache.Grant, bool)
	logger      *zap.Logger
	share       *shareSpec // nil: not shared
}

// acquireCredential returns the pooled credential for spec, creating it if
// no config holds one. Every call must be paired with one
// releaseCredential(spec.key). The credential starts once attached.
func acquireCredential(spec credentialSpec) (*credential, error) {
	val, loaded, err := pool.LoadOrNew(spec.key, func() (caddy.Destructor, error) {
		c := &credential{info: spec.info, clock: newClock()}
		c.counters.init()
		c.logger.Store(spec.logger)
		var shared tokencache.Shared
		var lockTimeout, checkInterval time.Duration
		if spec.share != nil {
			sh, err := newStorageShare(spec.share.key, spec.grant)
			if err != nil {
				return nil, err
			}
			c.share, shared = sh, sh
			lockTimeout, checkInterval = spec.share.lockTimeout, spec.share.checkInterval
		}
		// Timeouts and the no-redirect policy are the credential's own;
		// the transport (TLS material) follows the running config.
		hc := tokencache.NewHTTPClient(nil, spec.timeout, spec.dialTimeout)
		hc.Transport = configTransport{c}
		c.src = tokencache.New(tokencache.Options{
			Grant:         spec.grant,
			Client:        &tokencache.Client{HTTP: hc},
			Store:         tokenStore,
			Clock:         c.clock,
			RefreshBefore: spec.refresh,
			Observer:      c.observe,
			Reread:        spec.reread,
			Rand:          newJitter(),

			Shared:             shared,
			ShareLockTimeout:   lockTimeout,
			ShareCheckInterval: checkInterval,
		})
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	c := val.(*credential)
	if loaded {
		c.logger.Store(spec.logger)
	}
	return c, nil
}

// releaseCredential drops one use; the last one stops the credential.
func releaseCredential(key string) error {
	_, err := pool.Delete(key)
	return err
}

// Destruct stops the token source when the last config using it is gone.
func (c *credential) Destruct() error {
	c.src.Close()
	return nil
}

// --- Registration: which credentials the running config uses -------------

// configID identifies one config load: its metrics registry, which Caddy
// creates afresh for every load and hands to every module of it (the
// context.Context itself differs per server, as the HTTP app wraps it).
type configID = *prometheus.Registry

// loaded records, per config load, the credentials its
// handlers use. Only the active config's credentials are visible to the
// status faces, so a load that fails (in Provision, Validate or while
// starting) changes nothing anyone sees, and a successful one takes over
// atomically when Caddy makes it the active config.
var loaded = struct {
	sync.Mutex
	byConfig map[configID]map[*credential]int
}{byConfig: map[configID]map[*credential]int{}}

// activeConfig identifies the running config.
func activeConfig() configID {
	if o := activeOverride.Load(); o != nil {
		return o
	}
	ctx := caddy.ActiveContext()
	return ctx.GetMetricsRegistry()
}

// activeOverride stands in for the running config in unit tests, which
// provision handlers without running a config.
var activeOverride atomic.Pointer[prometheus.Registry]

// attach records that config cfg uses c, with transport for its token
// requests while cfg runs, and starts c's token source if it has not yet
// started. Two different credentials may not share a name within one
// config: their status would be ambiguous.
func (c *credential) attach(cfg configID, transport http.RoundTripper, trust tlsSettings, storage certmagic.Storage) error {
	if err := c.register(cfg, transport, trust); err != nil {
		return err
	}
	if c.share != nil && storage != nil {
		c.share.use(cfg, storage)
	}
	c.src.Start()
	return nil
}

func (c *credential) register(cfg configID, transport http.RoundTripper, trust tlsSettings) error {
	loaded.Lock()
	defer loaded.Unlock()
	uses := loaded.byConfig[cfg]
	if uses == nil {
		uses = map[*credential]int{}
		loaded.byConfig[cfg] = uses
	}
	for other := range uses {
		if other != c && other.info.Name == c.info.Name {
			return fmt.Errorf("name: %q is already used by a groupid_auth handler with different settings in this config; give each credential its own name", c.info.Name)
		}
	}
	if uses[c] > 0 {
		// Another handler of this load uses the credential: its token
		// requests cannot honour two trust settings.
		if field := c.trust.byConfig[cfg].differs(trust); field != "" {
			return fmt.Errorf("%s: two groupid_auth handlers of credential %q in this config give the token endpoint different TLS settings; "+
				"give them the same settings, or different names (each name is a credential of its own)", field, c.info.Name)
		}
	}
	uses[c]++
	c.transports.set(cfg, transport)
	c.trust.set(cfg, trust)
	return nil
}

// detach undoes one attach.
func (c *credential) detach(cfg configID) {
	loaded.Lock()
	defer loaded.Unlock()
	uses := loaded.byConfig[cfg]
	if uses[c]--; uses[c] <= 0 {
		delete(uses, c)
		c.trust.drop(cfg)
		if t, ok := c.transports.drop(cfg).(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
		if c.share != nil {
			c.share.storages.drop(cfg)
		}
	}
	if len(uses) == 0 {
		delete(loaded.byConfig, cfg)
	}
}

// visibleCredentials returns the running config's credentials with the
// given name, or all of them (sorted by name) when name is empty.
func visibleCredentials(name string) []*credential {
	active := activeConfig()
	loaded.Lock()
	defer loaded.Unlock()
	var out []*credential
	for c := range loaded.byConfig[active] {
		if name == "" || c.info.Name == name {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.Name < out[j].info.Name })
	return out
}

// --- Token events: counted and logged ------------------------------------

// observe counts and logs one token request: debug for each, info when a
// token is first obtained or after a failure, error when the failure
// changes, warn when a refresh token is refused. Never a secret or a token.
func (c *credential) observe(ev tokencache.Event) {
	switch ev.Kind {
	case tokencache.EventAdopt, tokencache.EventShare, tokencache.EventShareError:
		c.observeShare(ev)
		return
	}
	c.counters.recordTokenRequest(ev, c.clock.Now())
	log := c.logger.Load()
	if log == nil {
		return
	}
	fields := []zap.Field{
		zap.String("credential", c.info.Name),
		zap.String("grant_type", ev.GrantType),
		zap.Duration("duration", ev.Duration),
	}
	if ev.Err != nil {
		fields = append(fields,
			zap.String("error_class", ev.Err.Class.String()),
			zap.String("oauth_error", ev.Err.Code),
			zap.Int("status", ev.Err.StatusCode),
			zap.String("error", ev.Err.Error()))
	}
	switch ev.Kind {
	case tokencache.EventToken:
		fields = append(fields, zap.Int("status", http.StatusOK), zap.Time("expires", ev.Expiry))
		switch {
		case ev.First:
			log.Info("obtained groupid token", fields...)
		case ev.Recovered:
			log.Info("groupid token recovered", fields...)
		default:
			log.Debug("refreshed groupid token", fields...)
		}
	case tokencache.EventFallback:
		log.Warn("refresh token refused; falling back to password grant", fields...)
	case tokencache.EventFailure:
		fields = append(fields, zap.Time("retry_at", ev.RetryAt))
		switch {
		case !ev.Changed:
			log.Debug("groupid token request failed again", fields...)
		case ev.Err.Permanent():
			log.Error("groupid rejected the configured credentials; check username, password, client_id, client_secret, identity_store_id, scope and token_url", fields...)
		default:
			log.Error("groupid token request failed", fields...)
		}
	}
}

// --- The snapshot every face reads ----------------------------------------

// state is a credential's condition, named the same in code, in the admin
// status and readiness JSON, and in the caddy_groupid_state metric.
type state string

const (
	stateStarting    state = "starting"    // no token yet, no failure yet
	stateValid       state = "valid"       // a token is served; the last token request succeeded
	stateDegraded    state = "degraded"    // a token is served, but refreshing it fails
	stateUnavailable state = "unavailable" // no token is served; GroupID is failing (503)
	stateRejected    state = "rejected"    // no token is served; GroupID rejects the credentials (502)
	stateRefreshing  state = "refreshing"  // no token is served; a token request is in flight
)

// states lists every state, in a fixed order (for the state metric).
var states = [...]state{stateStarting, stateValid, stateDegraded, stateUnavailable, stateRejected, stateRefreshing}

// serving reports whether requests get a token: the one definition of a
// valid token. A token dropped after a 401, or expired, is not served.
func (s state) serving() bool { return s == stateValid || s == stateDegraded }

// snapshot is everything known about a credential at one instant. It holds
// no secret and no token.
type snapshot struct {
	info  credentialInfo
	state state
	// serving is the token requests get, or nil (from the same atomic the
	// request path reads).
	serving *tokencache.Token
	// newest is the newest token obtained, served or not.
	newest      *tokencache.Token
	lastErr     *tokencache.Error
	nextAttempt time.Time
	now         time.Time
	counts      counterValues
	// shared is set when the credential shares its token; share holds
	// its counters then.
	shared bool
	share  tokencache.ShareCounters
}

// tokenSource says where the newest token came from: "shared" (adopted
// from storage, obtained by another replica), "own" (this replica's token
// request), or "" when there is none.
func (s snapshot) tokenSource() string {
	switch {
	case s.newest == nil:
		return ""
	case s.newest.Shared:
		return "shared"
	}
	return "own"
}

// snapshot says the credential's state now.
func (c *credential) snapshot() snapshot {
	st := c.src.State()
	snap := snapshot{
		info:        c.info,
		serving:     st.Serving,
		newest:      st.Newest,
		lastErr:     st.LastErr,
		nextAttempt: st.NextAttempt,
		now:         c.clock.Now(),
		counts:      c.counters.values(),
		shared:      c.share != nil,
		share:       c.src.ShareCounters(),
	}
	switch {
	case st.Serving != nil && st.LastErr == nil:
		snap.state = stateValid
	case st.Serving != nil:
		snap.state = stateDegraded
	case st.LastErr != nil && st.LastErr.Permanent():
		snap.state = stateRejected
	case st.LastErr != nil:
		snap.state = stateUnavailable
	case st.Attempting:
		snap.state = stateRefreshing
	default:
		snap.state = stateStarting
	}
	return snap
}

// expiresIn is the served token's remaining lifetime, 0 when none is served.
func (s snapshot) expiresIn() time.Duration {
	if s.serving == nil {
		return 0
	}
	return max(s.serving.Expiry.Sub(s.now), 0)
}
