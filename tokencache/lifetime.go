package tokencache

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"
)

// How long a token is taken to live, in this order:
//
//  1. expires_in, when the response has it as a JSON number. A number
//     under 1 s is the server saying the token is spent: a transient
//     failure, as before. Above MaxTokenLifetime it is capped (noted).
//  2. Otherwise (no expires_in, null, or not a number), the access token's
//     JWT exp claim, read without verifying the signature and used for
//     nothing but the schedule: exp less the time of the request, less a
//     skew allowance (JWTExpSkew, at most a tenth of the time left) for
//     the two clocks. An exp in the past is a transient failure (the
//     token, or a clock, is wrong); one further than MaxTokenLifetime is
//     capped (noted).
//  3. Otherwise (the access token is no JWT, or has no numeric exp), the
//     configured default lifetime (Client.DefaultLifetime, default
//     DefaultTokenLifetime, at most MaxTokenLifetime).
//
// Whatever the source, a token with less than MinRefreshInterval left when
// its answer arrives is a transient failure (unusableOnArrival).

// DefaultTokenLifetime is the lifetime assumed for a token whose response
// has no expires_in and whose access token has no readable exp claim: the
// 1200 s GroupID documents.
const DefaultTokenLifetime = 1200 * time.Second

// JWTExpSkew is taken off the time a JWT's exp claim leaves, for the clocks
// of this host and the token issuer, which may differ. It is at most a
// tenth of the time left, so a short-lived token keeps most of its life.
const JWTExpSkew = 30 * time.Second

// LifetimeFrom says where a token's lifetime came from.
type LifetimeFrom string

const (
	// LifetimeExpiresIn: the response's expires_in.
	LifetimeExpiresIn LifetimeFrom = "expires_in"
	// LifetimeJWTExp: the access token's JWT exp claim, less the skew.
	LifetimeJWTExp LifetimeFrom = "jwt_exp"
	// LifetimeDefault: the configured default lifetime.
	LifetimeDefault LifetimeFrom = "default"
)

// The notes of a lifetime that is not a plain expires_in. They are fixed
// texts (no number, no token), so that a caller can log each change once.
const (
	noteExpiresInCapped = "expires_in is over 24h; capped at 24h"
	noteFromExp         = "the response has no numeric expires_in; lifetime from the access token's exp claim, less the clock skew allowance"
	noteExpCapped       = "the response has no numeric expires_in and the access token's exp claim is over 24h away; capped at 24h"
	noteDefault         = "the response has no numeric expires_in and the access token has no readable exp claim; the default token lifetime is used"
)

// tokenLifetime decides a token's lifetime from the response's raw
// expires_in and the access token, for a request made at now (see the
// order above). It returns where the lifetime came from and a note when
// it is not a plain expires_in, or the reason the response is unusable.
func tokenLifetime(rawExpiresIn json.RawMessage, access string, now time.Time, defaultLife time.Duration) (life time.Duration, from LifetimeFrom, note, reason string) {
	if secs, ok := jsonNumber(rawExpiresIn); ok {
		switch {
		case secs < 1:
			return 0, "", "", "expires_in is not positive"
		case secs > MaxTokenLifetime.Seconds():
			return MaxTokenLifetime, LifetimeExpiresIn, noteExpiresInCapped, ""
		}
		return time.Duration(secs * float64(time.Second)), LifetimeExpiresIn, "", ""
	}
	if exp, ok := jwtExp(access); ok {
		left := exp - float64(now.UnixNano())/1e9
		switch {
		case left <= 0:
			return 0, "", "", "the response has no numeric expires_in and the access token's exp claim is in the past (check the clocks of this host and of the token issuer)"
		case left > MaxTokenLifetime.Seconds()+JWTExpSkew.Seconds():
			return MaxTokenLifetime, LifetimeJWTExp, noteExpCapped, ""
		}
		d := time.Duration(left * float64(time.Second))
		return d - min(JWTExpSkew, d/10), LifetimeJWTExp, noteFromExp, ""
	}
	if defaultLife <= 0 {
		defaultLife = DefaultTokenLifetime
	}
	return min(defaultLife, MaxTokenLifetime), LifetimeDefault, noteDefault, ""
}

// jsonNumber reads raw as a finite JSON number; false for anything else
// (absent, null, a string, an object).
func jsonNumber(raw json.RawMessage) (float64, bool) {
	var v float64
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// jwtExp reads the exp claim (seconds since the epoch) of a JWS compact
// serialization: three base64url segments, the second a JSON object. The
// signature is not checked: the value only schedules the refresh, and the
// token is only ever sent back to the server that issued it.
func jwtExp(token string) (float64, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[1] == "" {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, false
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return 0, false
	}
	return jsonNumber(claims.Exp)
}
