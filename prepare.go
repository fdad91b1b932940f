package groupidauth

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// prepared is a credential's settings made ready for the pool: what the
// pool keys it by and builds it from, and what this config gives it while
// the config runs.
type prepared struct {
	spec  credentialSpec
	use   *credUse
	trust tlsSettings
}

// prepare expands placeholders, validates, applies defaults and reads the
// trust material and share storage of a credential named name (empty: the
// default name, username@token-host/identity_store_id). It does no network
// I/O and starts nothing.
func (c *Credential) prepare(ctx caddy.Context, name string, logger *zap.Logger) (*prepared, error) {
	rawPassword, rawSecret := c.Password, c.ClientSecret
	if err := c.expand(); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if name == "" {
		name = defaultName(c.Username, c.TokenURL, c.IdentityStoreID)
	}
	share, err := c.shareSpec(ctx)
	if err != nil {
		return nil, err
	}
	tlsConfig, trust, err := c.loadTokenTLS(ctx)
	if err != nil {
		return nil, err
	}
	if c.TLSInsecureSkipVerify {
		logger.Warn("tls_insecure_skip_verify is on: the token endpoint's certificate is not checked, so the service account password goes to whoever answers",
			zap.String("credential", name))
	}
	grant := tokencache.Grant{
		TokenURL:        c.TokenURL,
		Username:        c.Username,
		Password:        c.Password,
		ClientID:        c.ClientID,
		ClientSecret:    c.ClientSecret,
		IdentityStoreID: c.IdentityStoreID,
		Scope:           c.Scope,
		BasicAuth:       c.ClientAuth == "basic",
		FormParams:      c.grantFormParams(),
	}
	timeout, dial, refresh := time.Duration(c.Timeout), time.Duration(c.DialTimeout), time.Duration(c.RefreshBefore)
	life := c.defaultLifetime()
	p := &prepared{
		spec: credentialSpec{
			key: tokencache.HashFields(grant.Key(), name,
				timeout.String(), dial.String(), refresh.String(), share.poolKey(), life.String(), c.revokeKey()),
			info: credentialInfo{
				Name:            name,
				TokenHost:       tokenHost(c.TokenURL),
				Username:        c.Username,
				IdentityStoreID: c.IdentityStoreID,
			},
			grant:       grant,
			timeout:     timeout,
			dialTimeout: dial,
			refresh:     refresh,
			defaultLife: life,
			reread:      rereader(grant, rawPassword, rawSecret),
			logger:      logger,
			share:       share,
			revoke:      c.revokeSpec(timeout),
		},
		use: &credUse{
			transport: tokencache.NewHTTPClient(tlsConfig, timeout, dial).Transport,
			logger:    logger,
		},
		trust: trust,
	}
	if share != nil {
		p.use.storage = share.storage
	}
	return p, nil
}
