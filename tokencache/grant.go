package tokencache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Grant holds every parameter of a GroupID password grant. Password and
// ClientSecret are secrets: they are sent to the token endpoint and nowhere
// else.
type Grant struct {
	TokenURL        string
	Username        string
	Password        string
	ClientID        string
	ClientSecret    string
	IdentityStoreID string
	// Scope is sent only when non-empty; GroupID then grants the client's
	// allowed scopes, which include offline_access (refresh tokens).
	Scope string
	// BasicAuth sends the client ID and secret with HTTP Basic instead of
	// form fields.
	BasicAuth bool
	// FormParams are extra form fields sent with both grants; they never
	// replace a field the grant sends (see GrantFormFields), are part of
	// the credential's identity (Key), and their values are secrets.
	FormParams []FormParam
}

// keySalt makes Key a keyed hash: even a low-entropy password cannot be
// recovered from a key by guessing, because the salt never leaves the process.
var keySalt = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("tokencache: no randomness for key salt: " + err.Error())
	}
	return b
}()

// Key identifies the credential: an HMAC-SHA256 over every grant field,
// form params included (length-prefixed, so fields cannot run into each
// other), hex encoded.
// It is stable within a process, which is what reload survival needs.
func (g Grant) Key() string {
	auth := "form"
	if g.BasicAuth {
		auth = "basic"
	}
	fields := []string{g.TokenURL, g.Username, g.Password, g.ClientID, g.ClientSecret, g.IdentityStoreID, g.Scope, auth}
	return hashFields(append(fields, formParamFields(g.FormParams)...)...)
}

// hashFields returns the keyed hash of the fields in order.
func hashFields(fields ...string) string {
	m := hmac.New(sha256.New, keySalt)
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// HashFields exposes the keyed hash for callers that need to key other state
// on the same secrets (for example, transport settings next to a grant).
func HashFields(fields ...string) string { return hashFields(fields...) }

// secrets lists the values that must never appear in an error or a log:
// the password, the client secret and every form param's value.
func (g Grant) secrets() []string {
	out := []string{g.Password, g.ClientSecret}
	for _, p := range g.FormParams {
		out = append(out, p.Value)
	}
	return out
}
