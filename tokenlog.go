package groupidauth

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// This file turns a credential's token events into counters and log lines
// (and hands them to events.go, which makes Caddy events of them).

// observe counts and logs one token request: debug for each, info when a
// token is first obtained or after a failure, error when the failure
// changes, warn when a refresh token is refused. Never a secret or a token.
func (c *credential) observe(ev tokencache.Event) {
	defer c.reportEvent(ev) // after the log line, as the waiters are woken after it
	switch ev.Kind {
	case tokencache.EventAdopt, tokencache.EventShare, tokencache.EventShareError:
		c.observeShare(ev)
		return
	}
	c.counters.recordTokenRequest(ev, c.clock.Now())
	log := c.log()
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
		c.logLifetime(log, ev, fields)
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

// observeShare logs what sharing did: a token adopted from storage (info
// for the first one or after failures, else debug), and each change of the
// storage's condition (warn when it fails, info when it is usable again);
// repeated failures are debug. Never a token, a key or a secret.
func (c *credential) observeShare(ev tokencache.Event) {
	log := c.log()
	if log == nil {
		return
	}
	fields := []zap.Field{zap.String("credential", c.info.Name)}
	switch ev.Kind {
	case tokencache.EventAdopt:
		fields = append(fields, zap.Time("expires", ev.Expiry), zap.String("token_source", "shared"))
		if ev.First || ev.Recovered {
			log.Info("using groupid token shared by another replica", fields...)
		} else {
			log.Debug("adopted shared groupid token", fields...)
		}
	case tokencache.EventShare:
		fields = append(fields, zap.String("share_state", string(ev.ShareState)))
		switch ev.ShareState {
		case tokencache.ShareOK:
			log.Info("shared token storage usable again", fields...)
		case tokencache.ShareLockTimeout:
			log.Warn("share lock not had within lock_timeout; this replica requests its own token", fields...)
		}
	case tokencache.EventShareError:
		fields = append(fields, zap.String("share_state", string(ev.ShareState)), zap.String("error", ev.Reason))
		if ev.Changed {
			log.Warn("shared token storage failed; this replica requests its own tokens until it is back", fields...)
		} else {
			log.Debug("shared token storage failed again", fields...)
		}
	}
}

// logLifetime logs, once per change, that a token's lifetime did not come
// from a plain expires_in (the JWT exp claim, the default lifetime, or a
// value capped at 24 h: see tokencache.tokenLifetime), and when it does
// again. Refresh goroutine only.
func (c *credential) logLifetime(log *zap.Logger, ev tokencache.Event, fields []zap.Field) {
	if ev.LifetimeNote == c.lifetimeNote {
		return
	}
	c.lifetimeNote = ev.LifetimeNote
	fields = append(fields, zap.String("lifetime_from", string(ev.LifetimeFrom)))
	if ev.LifetimeNote == "" {
		log.Info("groupid token lifetime from expires_in again", fields...)
		return
	}
	log.Warn("groupid token lifetime: "+ev.LifetimeNote, fields...)
}
