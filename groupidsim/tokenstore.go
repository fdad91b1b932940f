package groupidsim

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// accessRecord is what the simulator knows about an issued access token.
type accessRecord struct {
	family  uint64
	store   string // the identity store the family's password grant named
	expires time.Time
	revoked bool
}

// refreshRecord is what the simulator knows about an issued refresh token.
type refreshRecord struct {
	family  uint64
	scope   []string
	expires time.Time // absolute, shared by the whole family
	used    bool
	revoked bool
}

// tokenStore holds issued tokens. A family is every token descended from one
// password grant. It is guarded by Server.mu.
type tokenStore struct {
	access       map[string]*accessRecord
	refresh      map[string]*refreshRecord
	issued       []string
	issuedRT     []string
	lastFamily   uint64
	familyStore  map[uint64]string
	reuseCounter int
}

func newTokenStore() tokenStore {
	return tokenStore{access: map[string]*accessRecord{}, refresh: map[string]*refreshRecord{}, familyStore: map[uint64]string{}}
}

// newOpaqueToken returns 32 random bytes as unpadded base64url (43 chars).
func newOpaqueToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// grantResult is a successful issuance.
type grantResult struct {
	access, refresh string
	scope           []string
}

// issueLocked creates a token pair in family (0 starts a new family). A refresh
// token is created only when scope includes offline_access.
// Callers hold s.mu.
func (s *Server) issueLocked(family uint64, scope []string, refreshExpiry time.Time) grantResult {
	now := s.now()
	t := &s.tokens
	if family == 0 {
		t.lastFamily++
		family = t.lastFamily
		refreshExpiry = now.Add(s.cfg.RefreshTokenLifetime)
	}
	res := grantResult{access: s.newAccessToken(now, scope), scope: scope}
	t.access[res.access] = &accessRecord{family: family, store: t.familyStore[family], expires: now.Add(s.cfg.TokenLifetime)}
	t.issued = append(t.issued, res.access)
	if contains(scope, "offline_access") {
		res.refresh = newOpaqueToken()
		t.refresh[res.refresh] = &refreshRecord{family: family, scope: scope, expires: refreshExpiry}
		t.issuedRT = append(t.issuedRT, res.refresh)
	}
	return res
}

// issueForPassword starts a new family, for identity store store.
func (s *Server) issueForPassword(scope []string, store string) grantResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens.familyStore[s.tokens.lastFamily+1] = store
	s.counters.PasswordGrantsByStore[store]++
	return s.issueLocked(0, scope, time.Time{})
}

// tokenStoreOf is the identity store the access token was issued for, or
// "" when it is unknown.
func (s *Server) tokenStoreOf(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.tokens.access[token]; rec != nil {
		return rec.store
	}
	return ""
}

// redeemRefresh consumes a refresh token and issues its successors. The
// returned string describes why the token was refused when ok is false.
func (s *Server) redeemRefresh(token string) (res grantResult, why string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens.refresh[token]
	switch {
	case rec == nil:
		return res, "unknown refresh token", false
	case rec.used:
		s.tokens.reuseCounter++
		if s.cfg.ReuseRevokesFamily {
			s.revokeFamilyLocked(rec.family)
		}
		return res, "refresh token already used", false
	case rec.revoked:
		return res, "refresh token revoked", false
	case !s.now().Before(rec.expires):
		return res, "refresh token expired", false
	}
	rec.used = true
	return s.issueLocked(rec.family, rec.scope, rec.expires), "", true
}

func (s *Server) revokeFamilyLocked(family uint64) {
	for _, a := range s.tokens.access {
		if a.family == family {
			a.revoked = true
		}
	}
	for _, r := range s.tokens.refresh {
		if r.family == family {
			r.revoked = true
		}
	}
}

// access token check results.
const (
	accessValid = iota
	accessExpired
	accessInvalid
)

func (s *Server) checkAccess(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens.access[token]
	switch {
	case rec == nil || rec.revoked:
		return accessInvalid
	case !s.now().Before(rec.expires):
		return accessExpired
	}
	return accessValid
}

// RevokeAllTokens makes every access and refresh token issued so far invalid
// at once, as a signing key rotation on the real server would. Tokens issued
// afterwards are valid.
func (s *Server) RevokeAllTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.tokens.access {
		a.revoked = true
	}
	for _, r := range s.tokens.refresh {
		r.revoked = true
	}
}

// InvalidateRefreshTokens makes every refresh token issued so far invalid;
// access tokens keep working until they expire.
func (s *Server) InvalidateRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.tokens.refresh {
		r.revoked = true
	}
}

// IssuedTokens returns every access token ever issued, oldest first.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens.issued...)
}

// IssuedRefreshTokens returns every refresh token ever issued, oldest first.
func (s *Server) IssuedRefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens.issuedRT...)
}

// UsedRefreshTokenReuse returns how many times a refresh token that had
// already been redeemed was presented again.
func (s *Server) UsedRefreshTokenReuse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens.reuseCounter
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
