// Package tokencache obtains, caches and refreshes OAuth2 access tokens from
// a Netwrix Directory Manager (GroupID) Security Service token endpoint.
//
// It has no Caddy imports so that it can be tested on its own with a fake
// clock. The pieces are:
//
//   - Grant: every parameter of the password grant, and a keyed hash of them
//     that identifies a credential without exposing any secret.
//   - Client: one token request (password or refresh_token grant) and the
//     parsing of RFC 6749 success and error responses into *Error values that
//     never carry a secret.
//   - Store: a go-cache backed table of tokens keyed by grant hash, shared by
//     every Source of a process so that a re-created Source finds the token
//     its predecessor fetched.
//   - Source: one credential's token. Readers take the current token from an
//     atomic pointer (no lock, no I/O); a single background goroutine does
//     every token request, so requests for one credential are never
//     concurrent, refreshes run ahead of expiry, and failures back off.
//     Its State says its Condition (starting, valid, degraded, unavailable,
//     rejected, refreshing), computed beside the token.
package tokencache
