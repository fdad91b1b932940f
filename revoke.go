package groupidauth

import (
	"context"
	"errors"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// Retiring a credential (revoke_on_stop): when the last config that uses a
// credential stops, the pool destructs it (see releaseCredential), and a
// credential with revoke_on_stop revokes the refresh token it held at
// GroupID's revocation endpoint, so that the chain does not stay alive in
// GroupID for up to 30 days. A reload that keeps the credential never
// destructs it, so it revokes nothing. A shared credential never revokes:
// its chain is the cluster's (the load refuses revoke_on_stop with share,
// and retire checks again).
//
// A credential re-created with the same grant (a reload that changed, say,
// its timeout) is seeded with the old one's access token but starts its
// own chain with a password grant (see tokencache.New): it never uses the
// old refresh token, so revoking the old chain takes nothing from it; the
// access token it was seeded with stays valid, as GroupID's access tokens
// are JWTs that revoking a refresh token does not touch.

// RevokeTimeout bounds the revocation of a retired credential's refresh
// token, from dialling to the answer: the stop (or the reload that retires
// the credential) waits at most this long, or the credential's timeout if
// that is shorter. The credentials of one config are retired in parallel.
const RevokeTimeout = 5 * time.Second

// revokeSpec is how a credential with revoke_on_stop revokes: nil when
// revoke_on_stop is off.
type revokeSpec struct {
	url     string
	timeout time.Duration
}

// validateRevocation checks revoke_on_stop and revocation_url (after
// placeholders). Errors name the field.
func (c *Credential) validateRevocation() error {
	if c.RevocationURL != "" {
		if !c.RevokeOnStop {
			return errors.New("revocation_url: only used with revoke_on_stop; set revoke_on_stop or remove revocation_url")
		}
		u, err := url.Parse(c.RevocationURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return errors.New("revocation_url: must be an absolute http:// or https:// URL")
		case u.User != nil:
			return errors.New("revocation_url: must not carry user information")
		case u.Scheme == "http" && !c.AllowHTTP:
			return errors.New("revocation_url: http:// would send the client secret in clear text; use https:// (or set allow_http for a loopback test)")
		}
	}
	if c.RevokeOnStop && c.Share != nil {
		return errors.New("revoke_on_stop: cannot be combined with share: the token chain is shared with the other replicas, " +
			"and revoking it when one replica stops would cut off the others; remove revoke_on_stop")
	}
	return nil
}

// revocationURL is revocation_url, or the one derived from token_url.
func (c *Credential) revocationURL() string {
	if c.RevocationURL != "" {
		return c.RevocationURL
	}
	return tokencache.RevocationURL(c.TokenURL)
}

// revokeKey is the part of the pool key that revoke_on_stop decides: a
// reload that turns it on or off, or changes the URL, makes a new
// credential (seeded with the old one's token), and the old one is
// retired with the settings it had.
func (c *Credential) revokeKey() string {
	if !c.RevokeOnStop {
		return ""
	}
	return "revoke_on_stop\x00" + c.revocationURL()
}

// revokeSpec is the credential's revocation, nil when revoke_on_stop is
// off. timeout is the credential's token request timeout.
func (c *Credential) revokeSpec(timeout time.Duration) *revokeSpec {
	if !c.RevokeOnStop {
		return nil
	}
	return &revokeSpec{url: c.revocationURL(), timeout: min(RevokeTimeout, timeout)}
}

// retire stops the token source and, with revoke_on_stop, revokes the
// refresh token it held: at most once (Destruct runs once), within
// c.revoke.timeout, with the last running config's transport (TLS
// material) and the grant's client authentication. A failure is logged,
// never returned: it must not fail the stop.
func (c *credential) retire() {
	grant, rt := c.src.CloseAndTakeRefreshToken()
	if c.revoke == nil {
		return
	}
	u := c.lastUse()
	log := c.logger
	if u != nil && u.logger != nil {
		log = u.logger
	}
	log = log.With(zap.String("credential", c.info.Name))
	switch {
	case c.share != nil:
		log.Info("refresh token not revoked: the token chain is shared with other replicas")
		return
	case rt == "" || u == nil:
		log.Debug("no refresh token to revoke")
		return
	}
	host := tokenHost(c.revoke.url)
	hc := tokencache.NewHTTPClient(nil, c.revoke.timeout, 0) // no redirects
	hc.Transport = u.transport
	ctx, cancel := context.WithTimeout(context.Background(), c.revoke.timeout)
	defer cancel()
	start := time.Now()
	err := (&tokencache.Client{HTTP: hc}).Revoke(ctx, grant, c.revoke.url, rt)
	took := zap.Duration("took", time.Since(start))
	if err != nil {
		// The error is scrubbed of the secrets and the token (Revoke).
		log.Warn("refresh token not revoked; it is left to expire in GroupID",
			zap.String("revocation_host", host), took, zap.Error(err))
		return
	}
	log.Info("refresh token revoked", zap.String("revocation_host", host), took)
}
