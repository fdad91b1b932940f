package groupidsim

import (
	"io"
	"mime"
	"net/http"
	"strings"
)

// The revocation endpoint, POST {SecurityPrefix}/connect/revocation (RFC
// 7009), as IdentityServer serves it: the client authenticates as at the
// token endpoint (form fields or HTTP Basic; a failure is 400
// invalid_client), the form carries token and an optional token_type_hint
// (access_token or refresh_token; another value is 400
// unsupported_token_type), and an unknown, expired or already revoked
// token is answered 200, as RFC 7009 section 2.2 asks.
//
// A live refresh token (used or not) is revoked with its whole family:
// every refresh token descended from the same password grant, so that no
// successor can be redeemed. Access tokens are not touched: GroupID's
// access tokens are JWTs, which IdentityServer cannot recall, so they
// stay valid until they expire. An access token presented here is
// answered 200 and stays valid for the same reason.

// revocationState is the revocation endpoint's own state. Guarded by
// Server.mu.
type revocationState struct {
	fault   Fault
	revoked []string // refresh tokens revoked here, oldest first
}

// RevocationURL returns the revocation endpoint address for a site
// reachable at base (scheme://host:port, no trailing slash).
func (s *Server) RevocationURL(base string) string {
	return strings.TrimRight(base, "/") + s.cfg.SecurityPrefix + "/connect/revocation"
}

// SetRevocationFault makes the revocation endpoint fail as f describes
// (FaultSlow: it hangs for f.Delay, or until the client gives up, and then
// answers normally; Fault5xx: it answers f.Status; FaultDown: it drops the
// connection). The token endpoint's fault (SetFault) does not apply here.
func (s *Server) SetRevocationFault(f Fault) {
	s.mu.Lock()
	s.revocation.fault = f
	s.mu.Unlock()
}

// RevokedRefreshTokens returns the refresh tokens revoked at the
// revocation endpoint (each a live token when it was presented), oldest
// first.
func (s *Server) RevokedRefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revocation.revoked...)
}

// serveRevocation implements POST {SecurityPrefix}/connect/revocation. Each
// request is counted in Counters.Revocations by outcome.
func (s *Server) serveRevocation(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s.revocationFault(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	fail := func(status int, code string) {
		s.countRevocation(code)
		writeJSON(w, status, tokenError{Error: code})
	}
	if r.Method != http.MethodPost {
		s.countRevocation("method_not_allowed")
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	form := foldForm(body)
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" || form == nil {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	if !s.clientOK(r, form) {
		fail(http.StatusBadRequest, "invalid_client")
		return
	}
	token := form["token"]
	switch hint := form["token_type_hint"]; {
	case token == "":
		fail(http.StatusBadRequest, "invalid_request")
		return
	case hint != "" && hint != "access_token" && hint != "refresh_token":
		fail(http.StatusBadRequest, "unsupported_token_type")
		return
	}
	s.countRevocation(s.revoke(token))
	w.WriteHeader(http.StatusOK)
}

// revoke revokes token if it is a live refresh token (with its family)
// and says what it was: "revoked", "access_token" (left valid) or
// "unknown" (unknown, expired or already revoked).
func (s *Server) revoke(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens.access[token]; ok {
		return "access_token"
	}
	rec := s.tokens.refresh[token]
	if rec == nil || rec.revoked || !s.now().Before(rec.expires) {
		return "unknown"
	}
	for _, r := range s.tokens.refresh {
		if r.family == rec.family {
			r.revoked = true
		}
	}
	s.revocation.revoked = append(s.revocation.revoked, token)
	return "revoked"
}

// revocationFault carries out the revocation endpoint's fault, counted as
// outcome "fault"; it reports whether the request has been dealt with.
func (s *Server) revocationFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.revocation.fault
	s.mu.Unlock()
	switch f.Kind {
	case FaultSlow:
		if waitOrGone(w, r, f.Delay) {
			s.countRevocation("fault")
			return true
		}
		return false
	case Fault5xx:
		s.countRevocation("fault")
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.WriteHeader(status)
		return true
	case FaultDown:
		s.countRevocation("fault")
		dropConnection(w)
		return true
	}
	return false
}

// countRevocation adds one revocation request outcome. Callers must not
// hold s.mu.
func (s *Server) countRevocation(outcome string) {
	s.mu.Lock()
	s.counters.Revocations[outcome]++
	s.mu.Unlock()
}
