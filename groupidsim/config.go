package groupidsim

import (
	"net/http"
	"time"
)

// Defaults used by New for Config fields left at their zero value.
const (
	DefaultUsername             = "svc-groupid"
	DefaultPassword             = "sim-Passw0rd!"
	DefaultClientID             = "caddy-groupid"
	DefaultClientSecret         = "sim-client-secret"
	DefaultIdentityStoreID      = "2"
	DefaultTokenLifetime        = 1200 * time.Second
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultSecurityPrefix       = "/GroupIDSecurityService"
	DefaultDataPrefix           = "/GroupIDDataService"
	DefaultTokenType            = "Bearer"
	DefaultRefreshErrorCode     = "invalid_grant"
)

// DefaultScopes is the scope list granted when Config.AllowedScopes is empty.
// It matches what a GroupID 11 installation reports.
var DefaultScopes = []string{"directorymanager.api", "groupid_identity", "offline_access", "openid", "profile"}

// Config describes one simulated GroupID installation. Zero fields take the
// defaults listed next to them.
type Config struct {
	// Username and Password are the one service account that may use the
	// password grant. Other users in the directory are plain objects.
	Username, Password string
	// ClientID and ClientSecret identify the single registered OAuth client.
	ClientID, ClientSecret string
	// IdentityStoreID is the store the password grant must name in
	// identity_store_id and the {is} path segment the Data API accepts.
	IdentityStoreID string
	// ExtraIdentityStores are further stores the service account may get
	// tokens for, as a GroupID with several identity stores. A token is for
	// the store its password grant named: the Data API answers 401 to it on
	// another store's path (and counts it in Counters.WrongStoreTokens).
	ExtraIdentityStores []string
	// TokenLifetime is how long an access token is accepted; default 1200s.
	TokenLifetime time.Duration
	// RefreshTokenLifetime is the absolute lifetime of a refresh token family,
	// counted from the password grant that started it; default 30 days.
	RefreshTokenLifetime time.Duration
	// AllowedScopes are the scopes the client may ask for; default DefaultScopes.
	AllowedScopes []string
	// SecurityPrefix and DataPrefix are the IIS application paths of the
	// Security and Data services.
	SecurityPrefix, DataPrefix string
	// TokenType is the token_type reported in token responses; default "Bearer".
	TokenType string
	// ExpiresInSkew is subtracted from expires_in in token responses (some
	// servers report 1199 for a 1200s token). The real lifetime is unchanged.
	ExpiresInSkew int
	// JWTAccessTokens issues access tokens as JWTs with an exp claim, as
	// IdentityServer does, instead of opaque random strings.
	JWTAccessTokens bool
	// OmitExpiresIn leaves expires_in out of token responses (as some
	// servers and proxies in front of them do); the real lifetime is
	// unchanged (with JWTAccessTokens, the exp claim tells it).
	OmitExpiresIn bool
	// WrongPasswordStatus is the HTTP status of a password grant rejected for
	// bad credentials: default 400 (IdentityServer); 401 emulates other servers.
	WrongPasswordStatus int
	// RefreshErrorCode is the OAuth error for an unknown, used, revoked or
	// expired refresh token; default "invalid_grant".
	RefreshErrorCode string
	// ReuseRevokesFamily makes the presentation of an already used refresh
	// token revoke every access and refresh token of its family.
	ReuseRevokesFamily bool
	// Now is the clock used for issuing and all expiry checks; default time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of c with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	setString := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	setString(&c.Username, DefaultUsername)
	setString(&c.Password, DefaultPassword)
	setString(&c.ClientID, DefaultClientID)
	setString(&c.ClientSecret, DefaultClientSecret)
	setString(&c.IdentityStoreID, DefaultIdentityStoreID)
	setString(&c.SecurityPrefix, DefaultSecurityPrefix)
	setString(&c.DataPrefix, DefaultDataPrefix)
	setString(&c.TokenType, DefaultTokenType)
	setString(&c.RefreshErrorCode, DefaultRefreshErrorCode)
	c.SecurityPrefix = cleanPrefix(c.SecurityPrefix)
	c.DataPrefix = cleanPrefix(c.DataPrefix)
	if c.TokenLifetime <= 0 {
		c.TokenLifetime = DefaultTokenLifetime
	}
	if c.RefreshTokenLifetime <= 0 {
		c.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if len(c.AllowedScopes) == 0 {
		c.AllowedScopes = DefaultScopes
	}
	c.AllowedScopes = append([]string(nil), c.AllowedScopes...)
	if c.WrongPasswordStatus == 0 {
		c.WrongPasswordStatus = http.StatusBadRequest
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// cleanPrefix makes p start with one slash and end without one; a prefix of
// only slashes becomes "" (the site root).
func cleanPrefix(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p != "" && p[0] != '/' {
		p = "/" + p
	}
	return p
}

// Config returns the effective configuration, defaults applied.
func (s *Server) Config() Config {
	c := s.cfg
	c.AllowedScopes = append([]string(nil), c.AllowedScopes...)
	return c
}
