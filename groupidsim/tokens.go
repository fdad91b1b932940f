package groupidsim

import (
	"crypto/subtle"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// tokenResponse is the success body of the token endpoint.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    *int   `json:"expires_in,omitempty"` // nil: left out (Config.OmitExpiresIn)
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// tokenError is an RFC 6749 section 5.2 error body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveToken implements POST {SecurityPrefix}/connect/token in the manner of
// IdentityServer.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form := foldForm(body)
	grant := grantLabel(form["grant_type"])

	if s.applyFault(w, r, grant, body) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")

	fail := func(status int, code, desc string) {
		s.countToken(grant, code)
		writeJSON(w, status, tokenError{Error: code, Description: desc})
	}
	if r.Method != http.MethodPost {
		s.countToken("other", "method_not_allowed")
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", "content type must be application/x-www-form-urlencoded")
		return
	}
	if form == nil {
		fail(http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if !s.clientOK(r, form) {
		fail(http.StatusBadRequest, "invalid_client", "unknown client or invalid client secret")
		return
	}
	switch gt := form["grant_type"]; gt {
	case "":
		fail(http.StatusBadRequest, "invalid_request", "grant_type is missing")
	case "password":
		s.passwordGrant(w, form, fail)
	case "refresh_token":
		s.refreshGrant(w, form, fail)
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant type "+gt+" is not supported")
	}
}

type failFunc func(status int, code, desc string)

func (s *Server) passwordGrant(w http.ResponseWriter, form map[string]string, fail failFunc) {
	user, pass, store := form["username"], form["password"], form["identity_store_id"]
	switch {
	case user == "":
		fail(http.StatusBadRequest, "invalid_request", "username is missing")
		return
	case pass == "":
		fail(http.StatusBadRequest, "invalid_request", "password is missing")
		return
	case store == "":
		fail(http.StatusBadRequest, "invalid_request", "identity_store_id is missing")
		return
	}
	scope, ok := s.grantScope(form["scope"])
	if !ok {
		fail(http.StatusBadRequest, "invalid_scope", "a requested scope is not allowed for this client")
		return
	}
	store, known := s.store(store)
	if !known {
		fail(http.StatusBadRequest, "invalid_grant", "unknown identity store")
		return
	}
	s.mu.Lock()
	current := s.password
	s.mu.Unlock()
	if !strings.EqualFold(user, s.cfg.Username) || !secretEqual(pass, current) {
		fail(s.cfg.WrongPasswordStatus, "invalid_grant", "invalid_username_or_password")
		return
	}
	s.tokenOK(w, "password", s.issueForPassword(scope, store))
}

func (s *Server) refreshGrant(w http.ResponseWriter, form map[string]string, fail failFunc) {
	rt := form["refresh_token"]
	if rt == "" {
		fail(http.StatusBadRequest, "invalid_request", "refresh_token is missing")
		return
	}
	res, why, ok := s.redeemRefresh(rt)
	if !ok {
		fail(http.StatusBadRequest, s.cfg.RefreshErrorCode, why)
		return
	}
	s.tokenOK(w, "refresh_token", res)
}

func (s *Server) tokenOK(w http.ResponseWriter, grant string, res grantResult) {
	s.countToken(grant, "ok")
	var expiresIn *int
	if !s.cfg.OmitExpiresIn {
		expiresIn = new(int(s.cfg.TokenLifetime.Seconds()) - s.cfg.ExpiresInSkew)
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  res.access,
		ExpiresIn:    expiresIn,
		TokenType:    s.cfg.TokenType,
		RefreshToken: res.refresh,
		Scope:        strings.Join(res.scope, " "),
	})
}

// grantScope validates a requested scope string. Empty means every allowed
// scope; duplicates are dropped and the requested order is kept.
func (s *Server) grantScope(requested string) ([]string, bool) {
	fields := strings.Fields(requested)
	if len(fields) == 0 {
		return append([]string(nil), s.cfg.AllowedScopes...), true
	}
	var out []string
	for _, f := range fields {
		if !contains(s.cfg.AllowedScopes, f) {
			return nil, false
		}
		if !contains(out, f) {
			out = append(out, f)
		}
	}
	return out, true
}

// clientOK authenticates the client by HTTP Basic or by form fields.
func (s *Server) clientOK(r *http.Request, form map[string]string) bool {
	id, secret := form["client_id"], form["client_secret"]
	if h := r.Header.Get("Authorization"); len(h) > 6 && strings.EqualFold(h[:6], "Basic ") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		if err != nil {
			return false
		}
		u, p, found := strings.Cut(string(raw), ":")
		if !found {
			return false
		}
		// RFC 6749 section 2.3.1: both parts are form-encoded before Basic.
		if v, err := url.QueryUnescape(u); err == nil {
			u = v
		}
		if v, err := url.QueryUnescape(p); err == nil {
			p = v
		}
		id, secret = u, p
	}
	return id != "" && id == s.cfg.ClientID && secretEqual(secret, s.cfg.ClientSecret)
}

func secretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// foldForm parses a urlencoded body with field names lower-cased, keeping
// the first value of each field in body order. It returns nil for a
// malformed body.
func foldForm(body []byte) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(string(body), "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return nil
		}
		k = strings.ToLower(k)
		if _, dup := out[k]; !dup {
			out[k] = v
		}
	}
	return out
}

// grantLabel maps a grant_type value to the counter label.
func grantLabel(gt string) string {
	switch gt {
	case "password", "refresh_token":
		return gt
	}
	return "other"
}
