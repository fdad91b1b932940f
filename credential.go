package groupidauth

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// A credential is one service account's pooled token source and everything
// known about it: its counters, its name, and the one snapshot that every
// face (the request path, groupid_ready, the admin API and the metrics)
// reads. It outlives config loads: the groupid apps of successive configs
// with the same settings share one credential, so `caddy reload` keeps the
// token. What differs per config (the token endpoint's TLS transport, the
// share storage, the logger) is the running config's: see credUse.
type credential struct {
	info  credentialInfo
	key   string // the pool key: a hash of every setting, never a secret
	src   *tokencache.Source
	clock tokencache.Clock
	// logger is the logger of the config that created the credential,
	// used until a config using it starts.
	logger   *zap.Logger
	counters counters
	// share is the credential's shared storage entry, nil when not
	// shared; it uses the running config's storage.
	share *storageShare
	// revoke is how the refresh token is revoked when the credential is
	// retired; nil: it is not (see revoke.go).
	revoke *revokeSpec

	mu sync.Mutex
	// uses are the started configs' uses of the credential, oldest first:
	// the last is the running config's. Guarded by mu.
	uses []*credUse
	// stopped is the use that stopped last: its transport sends the
	// revocation once no config uses the credential. Guarded by mu.
	stopped *credUse

	// evMu orders the credential's events (see report); taken before mu.
	evMu sync.Mutex
	// reported is the state last reported in an event. Guarded by evMu.
	reported tokencache.Condition
	// lifetimeNote is the LifetimeNote of the last token obtained, so a
	// change is logged once. Used by observe only (the refresh goroutine).
	lifetimeNote string
}

// credUse is what one config gives a credential while it runs.
type credUse struct {
	// transport sends token requests with the config's trust material
	// (CA file, trust pool, client certificate, server name).
	transport http.RoundTripper
	// storage is the share storage, nil when not shared.
	storage certmagic.Storage
	logger  *zap.Logger
	// tracing traces token requests; nil when the config does not.
	tracing *tokenTracing
	// events is the config's groupid app's event queue (nil: none).
	events *eventQueue
}

// credentialInfo is what may be shown about a credential: never a secret.
type credentialInfo struct {
	Name            string `json:"name"`
	TokenHost       string `json:"token_endpoint_host"`
	Username        string `json:"username"`
	IdentityStoreID string `json:"identity_store_id"`
}

// pool holds one credential per settings key across config loads: the one
// process-wide record, as reverse_proxy keeps its hosts.
var pool = caddy.NewUsagePool()

// credentialSpec is what the groupid app asks the pool for.
type credentialSpec struct {
	key         string // hash of every setting below but tls; never a secret
	info        credentialInfo
	grant       tokencache.Grant
	timeout     time.Duration
	dialTimeout time.Duration
	refresh     time.Duration
	// defaultLife is the lifetime of a token whose lifetime the response
	// does not tell (default_token_lifetime).
	defaultLife time.Duration
	reread      func() (tokencache.Grant, bool)
	logger      *zap.Logger
	share       *shareSpec  // nil: not shared
	revoke      *revokeSpec // nil: no revoke_on_stop
	// clock and jitter are the app's (tests inject them); nil: the
	// system clock and math/rand/v2.
	clock  tokencache.Clock
	jitter func() float64
}

// acquireCredential returns the pooled credential for spec, creating it if
// no config holds one. Every call must be paired with one
// releaseCredential(spec.key). A new credential starts from the token of a
// live credential of the same grant (a reload that changed, say, its
// timeout), and makes no token request until a config using it starts.
func acquireCredential(spec credentialSpec) (*credential, error) {
	seed := seedToken(spec.grant.Key())
	val, _, err := pool.LoadOrNew(spec.key, func() (caddy.Destructor, error) {
		return newCredential(spec, seed)
	})
	if err != nil {
		return nil, err
	}
	return val.(*credential), nil
}

// seedToken returns the newest valid token of a pooled credential whose
// grant has key grantKey, or nil.
func seedToken(grantKey string) *tokencache.Token {
	var best *tokencache.Token
	pool.Range(func(_, v any) bool {
		c := v.(*credential)
		if c.src.Key() != grantKey {
			return true
		}
		if t := c.src.Serving(); t != nil && (best == nil || t.Expiry.After(best.Expiry)) {
			best = t
		}
		return true
	})
	return best
}

func newCredential(spec credentialSpec, seed *tokencache.Token) (*credential, error) {
	clk := spec.clock
	if clk == nil {
		clk = tokencache.SystemClock{}
	}
	c := &credential{info: spec.info, key: spec.key, clock: clk, logger: spec.logger, revoke: spec.revoke}
	c.counters.init()
	var shared tokencache.Shared
	var lockTimeout, checkInterval time.Duration
	if spec.share != nil {
		sh, err := newStorageShare(spec.share.key, spec.grant, c.storage)
		if err != nil {
			return nil, err
		}
		c.share, shared = sh, sh
		lockTimeout, checkInterval = spec.share.lockTimeout, spec.share.checkInterval
	}
	store := tokencache.NewStore()
	if seed != nil {
		store.Put(spec.grant.Key(), seed, clk.Now())
	}
	// Timeouts and the no-redirect policy are the credential's own; the
	// transport (TLS material) is the running config's.
	hc := tokencache.NewHTTPClient(nil, spec.timeout, spec.dialTimeout)
	hc.Transport = useTransport{c}
	c.src = tokencache.New(tokencache.Options{
		Grant:         spec.grant,
		Client:        &tokencache.Client{HTTP: hc, DefaultLifetime: spec.defaultLife},
		Store:         store,
		Clock:         clk,
		RefreshBefore: spec.refresh,
		Observer:      c.observe,
		Trace:         c.traceRequest,
		Reread:        spec.reread,
		Rand:          spec.jitter,

		Shared:             shared,
		ShareLockTimeout:   lockTimeout,
		ShareCheckInterval: checkInterval,
	})
	c.reported = c.src.State().Condition
	return c, nil
}

// releaseCredential drops one use; the last one stops the credential.
func releaseCredential(key string) error {
	_, err := pool.Delete(key)
	return err
}

// Destruct stops the token source when the last config using it is gone
// and, with revoke_on_stop, revokes its refresh token (see retire).
func (c *credential) Destruct() error {
	c.retire()
	return nil
}

// start records that a config using c runs (its use is now the running
// one) and starts the token source if it has not started yet.
func (c *credential) start(u *credUse) {
	c.attach(u)
	c.src.Start()
}

// attach makes u the running use.
func (c *credential) attach(u *credUse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uses = append(c.uses, u)
}

// stop undoes start: the config stopped (replaced by a newer one, or a
// load that failed after its groupid app started).
func (c *credential) stop(u *credUse) {
	c.mu.Lock()
	c.uses = slices.DeleteFunc(c.uses, func(x *credUse) bool { return x == u })
	c.stopped = u
	c.mu.Unlock()
	if t, ok := u.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// current is the running config's use, or nil before any started.
func (c *credential) current() *credUse {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.uses) == 0 {
		return nil
	}
	return c.uses[len(c.uses)-1]
}

// lastUse is the running config's use or, when none runs, the one that
// stopped last; nil if none ever started.
func (c *credential) lastUse() *credUse {
	if u := c.current(); u != nil {
		return u
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// log is the running config's logger.
func (c *credential) log() *zap.Logger {
	if u := c.current(); u != nil && u.logger != nil {
		return u.logger
	}
	return c.logger
}

// storage is the running config's share storage.
func (c *credential) storage() certmagic.Storage {
	if u := c.current(); u != nil {
		return u.storage
	}
	return nil
}

// --- The snapshot every face reads ----------------------------------------

// snapshot is everything known about a credential at one instant. It holds
// no secret and no token.
type snapshot struct {
	info  credentialInfo
	state tokencache.Condition
	// serving is the token requests get, or nil (from the same atomic the
	// request path reads).
	serving *tokencache.Token
	// newest is the newest token obtained, served or not.
	newest      *tokencache.Token
	lastErr     *tokencache.Error
	nextAttempt time.Time
	now         time.Time
	counts      counterValues
	// drops counts the tokens dropped after the upstream answered 401.
	drops uint64
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
		drops:       st.Drops,
		shared:      c.share != nil,
		share:       c.src.ShareCounters(),
	}
	snap.state = st.Condition
	return snap
}

// expiresIn is the served token's remaining lifetime, 0 when none is served.
func (s snapshot) expiresIn() time.Duration {
	if s.serving == nil {
		return 0
	}
	return max(s.serving.Expiry.Sub(s.now), 0)
}
