package groupidsim

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// newAccessToken returns a new access token: opaque random bytes, or with
// Config.JWTAccessTokens a JWT shaped as IdentityServer issues them (a
// JWS compact serialization whose payload has exp, nbf, iat, iss,
// client_id, sub and scope). Its signature is random bytes: the simulator
// knows its tokens by value and verifies nothing.
func (s *Server) newAccessToken(now time.Time, scope []string) string {
	if !s.cfg.JWTAccessTokens {
		return newOpaqueToken()
	}
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": "groupidsim"})
	payload, _ := json.Marshal(map[string]any{
		"iss":       s.cfg.SecurityPrefix,
		"nbf":       now.Unix(),
		"iat":       now.Unix(),
		"exp":       now.Add(s.cfg.TokenLifetime).Unix(),
		"client_id": s.cfg.ClientID,
		"sub":       s.cfg.Username,
		"scope":     scope,
		"jti":       newOpaqueToken(), // makes every token unique
	})
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + newOpaqueToken()
}
