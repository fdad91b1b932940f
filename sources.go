package groupidauth

import (
	"crypto/tls"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// sources holds one token source per credential and transport settings.
// It outlives config loads, so that `caddy reload` with unchanged
// credentials keeps the token and makes no token request.
var sources = caddy.NewUsagePool()

// tokenStore keeps tokens by grant hash for the whole process: a source
// re-created for the same credential (for example with a new CA file)
// starts from the token its predecessor held.
var tokenStore = tokencache.NewStore()

// Seams for tests: the clock and jitter of new sources, and the logger a
// handler uses.
var (
	newClock  = func() tokencache.Clock { return tokencache.SystemClock{} }
	newJitter = func() func() float64 { return nil } // nil: math/rand/v2
	loggerFor = func(ctx caddy.Context) *zap.Logger { return ctx.Logger() }
)

// sharedSource is a pooled token source plus the logger of the newest
// config that uses it.
type sharedSource struct {
	src    *tokencache.Source
	clock  tokencache.Clock
	logger atomic.Pointer[zap.Logger]
	info   credentialInfo
	stats  sourceStats
}

// Destruct stops the source when its last user is cleaned up.
func (s *sharedSource) Destruct() error {
	s.src.Close()
	unregisterCredential(s)
	forgetMetrics(s)
	return nil
}

// acquireSource attaches h to the pooled source for its settings, creating
// and starting it if none exists.
func (h *Handler) acquireSource(tlsID string, tlsConfig *tls.Config, reread func() (tokencache.Grant, bool)) error {
	key := tokencache.HashFields(h.grant.Key(), h.Name, tlsID,
		time.Duration(h.Timeout).String(), time.Duration(h.DialTimeout).String(), time.Duration(h.RefreshBefore).String())
	val, loaded, err := sources.LoadOrNew(key, func() (caddy.Destructor, error) {
		s := &sharedSource{clock: newClock(), info: h.info()}
		s.stats.init()
		s.logger.Store(h.logger)
		s.src = tokencache.New(tokencache.Options{
			Grant:         h.grant,
			Client:        &tokencache.Client{HTTP: tokencache.NewHTTPClient(tlsConfig, time.Duration(h.Timeout), time.Duration(h.DialTimeout))},
			Store:         tokenStore,
			Clock:         s.clock,
			RefreshBefore: time.Duration(h.RefreshBefore),
			Observer:      s.observe,
			Reread:        reread,
			Rand:          newJitter(),
		})
		return s, nil
	})
	if err != nil {
		return err
	}
	h.poolKey = key
	h.shared = val.(*sharedSource)
	if loaded {
		h.shared.logger.Store(h.logger)
	} else {
		h.shared.src.Start()
	}
	registerCredential(h.shared)
	return nil
}

// observe logs token requests: debug for each, info when a token is first
// obtained or after a failure, error when the failure changes, warn when a
// refresh token is refused. Never a secret or a token.
func (s *sharedSource) observe(ev tokencache.Event) {
	s.stats.record(s.info.Name, ev, s.clock.Now())
	log := s.logger.Load()
	if log == nil {
		return
	}
	fields := []zap.Field{
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
		if ev.Changed {
			msg := "groupid token request failed"
			if ev.Err.Permanent() {
				msg = "groupid rejected the configured credentials; check username, password, client_id, client_secret, identity_store_id, scope and token_url"
			}
			log.Error(msg, fields...)
		} else {
			log.Debug("groupid token request failed again", fields...)
		}
	}
}
