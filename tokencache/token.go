package tokencache

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaxTokenLifetime caps a token's lifetime (expires_in, or the JWT exp
// claim): a server that claims a token lives for years is treated as if it
// said one day, so a bad response cannot pin a token in the cache forever.
const MaxTokenLifetime = 24 * time.Hour

// maxTokenLen bounds access and refresh tokens (GroupID's JWTs are ~1-2 KiB).
const maxTokenLen = 16 << 10

// Token is an access token with its metadata. Its String and GoString
// methods redact the token so that printing one never leaks it.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	// GrantType is the grant that produced this token.
	GrantType string
	IssuedAt  time.Time
	Expiry    time.Time
	// Shared is set on a token adopted from shared storage (another
	// replica obtained it); ShareVersion is the version of the shared
	// entry it came from or was stored as, 0 if it was never shared.
	Shared       bool
	ShareVersion uint64
	// LifetimeFrom says where the lifetime came from (expires_in, the JWT
	// exp claim or the default); LifetimeNote explains one that is not a
	// plain expires_in (a fixed text, see tokenLifetime). Both are empty
	// on a token adopted from shared storage.
	LifetimeFrom LifetimeFrom
	LifetimeNote string

	header string   // "Bearer " + AccessToken, computed once
	values []string // {header}, for http.Header maps
}

// AuthorizationHeader is the value to send: "Bearer <access_token>".
func (t *Token) AuthorizationHeader() string { return t.header }

// AuthorizationValues is AuthorizationHeader as the value slice of an
// http.Header, made once per token: every request that carries the token
// shares it, so it must never be modified.
func (t *Token) AuthorizationValues() []string { return t.values }

// ValidAt reports whether the token is still usable at now.
func (t *Token) ValidAt(now time.Time) bool { return t != nil && now.Before(t.Expiry) }

// Lifetime is the span between issue and expiry.
func (t *Token) Lifetime() time.Duration { return t.Expiry.Sub(t.IssuedAt) }

func (t *Token) String() string {
	if t == nil {
		return "<nil token>"
	}
	return fmt.Sprintf("token(redacted, %s grant, expires %s)", t.GrantType, t.Expiry.Format(time.RFC3339))
}

// GoString keeps %#v from printing the token.
func (t *Token) GoString() string { return t.String() }

// tokenResponse is the RFC 6749 section 5.1 success body. expires_in is raw
// so that strings and absurd values are told apart from numbers.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	ExpiresIn    json.RawMessage `json:"expires_in"`
	RefreshToken string          `json:"refresh_token"`
	Scope        string          `json:"scope"`
}

// errorResponse is the RFC 6749 section 5.2 error body.
type errorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// parseToken turns a 200 body into a Token, or explains why it is unusable.
// The returned reason never quotes the body. defaultLife is the lifetime
// of a token whose lifetime the response does not tell (see tokenLifetime).
func parseToken(body []byte, grantType string, now time.Time, defaultLife time.Duration) (*Token, string) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, "response is not a JSON token object"
	}
	if tr.AccessToken == "" {
		return nil, "response has no access_token"
	}
	if len(tr.AccessToken) > maxTokenLen || !VisibleASCII(tr.AccessToken) {
		return nil, "access_token has characters not allowed in a header, or is too long"
	}
	if len(tr.RefreshToken) > maxTokenLen || (tr.RefreshToken != "" && !VisibleASCII(tr.RefreshToken)) {
		return nil, "refresh_token is malformed"
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, "token_type is not bearer"
	}
	life, from, note, reason := tokenLifetime(tr.ExpiresIn, tr.AccessToken, now, defaultLife)
	if reason != "" {
		return nil, reason
	}
	tok := newToken(tr.AccessToken, tr.RefreshToken, tr.TokenType, tr.Scope, grantType, now, life)
	tok.LifetimeFrom, tok.LifetimeNote = from, note
	return tok, ""
}

func newToken(access, refresh, typ, scope, grantType string, now time.Time, life time.Duration) *Token {
	header := "Bearer " + access
	return &Token{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    typ,
		Scope:        scope,
		GrantType:    grantType,
		IssuedAt:     now,
		Expiry:       now.Add(life),
		header:       header,
		values:       []string{header},
	}
}

// VisibleASCII reports whether s is visible ASCII only, so that it can go into
// an HTTP header without allowing header injection.
func VisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
