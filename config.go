package groupidauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// stringField names a string setting by its JSON (and Caddyfile) name.
type stringField struct {
	name string
	ptr  *string
}

// stringFields lists every string setting, for placeholder expansion and
// the Caddyfile's single-value subdirectives.
func (h *Handler) stringFields() []stringField {
	return []stringField{
		{"name", &h.Name},
		{"token_url", &h.TokenURL},
		{"username", &h.Username},
		{"password", &h.Password},
		{"client_id", &h.ClientID},
		{"client_secret", &h.ClientSecret},
		{"identity_store_id", &h.IdentityStoreID},
		{"scope", &h.Scope},
		{"ca_cert_file", &h.CACertFile},
		{"tls_client_cert", &h.TLSClientCert},
		{"tls_client_key", &h.TLSClientKey},
		{"tls_server_name", &h.TLSServerName},
		{"client_auth", &h.ClientAuth},
		{"api_base", &h.APIBase},
	}
}

// requiredFields are the settings without which no token can be had.
var requiredFields = []string{"token_url", "username", "password", "client_id", "client_secret", "identity_store_id"}

// expandPlaceholders replaces {env.*}, {file.*} and other global
// placeholders in every string field. Errors name the field and the
// placeholder, never the value.
func (h *Handler) expandPlaceholders() error {
	repl := caddy.NewReplacer()
	for _, f := range h.stringFields() {
		v, err := repl.ReplaceOrErr(*f.ptr, true, true)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.ptr = v
	}
	if h.Share != nil {
		v, err := repl.ReplaceOrErr(h.Share.Key, true, true)
		if err != nil {
			return fmt.Errorf("share.key: %w", err)
		}
		h.Share.Key = v
	}
	return nil
}

// validate checks the expanded configuration. Errors name the field and
// never repeat its value.
func (h *Handler) validate() error {
	for _, name := range requiredFields {
		if *h.stringField(name) == "" {
			return fmt.Errorf("%s: required", name)
		}
	}
	u, err := url.Parse(h.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("token_url: must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("token_url: must not carry user information")
	}
	if u.Scheme == "http" && !h.AllowHTTP {
		return errors.New("token_url: http:// would send the password in clear text; use https:// (or set allow_http for a loopback test)")
	}
	if u.Scheme == "http" && (h.CACertFile != "" || h.TrustPoolRaw != nil || h.TLSClientCert != "" || h.TLSServerName != "" || h.TLSInsecureSkipVerify) {
		return errors.New("token_url: TLS settings given for an http:// URL")
	}
	switch h.ClientAuth {
	case "", "form", "basic":
	default:
		return errors.New("client_auth: must be form or basic")
	}
	if (h.TLSClientCert == "") != (h.TLSClientKey == "") {
		return errors.New("tls_client_cert and tls_client_key: give both or neither")
	}
	if h.CACertFile != "" && h.TrustPoolRaw != nil {
		return errors.New("ca_cert_file and tls_trust_pool: use one")
	}
	if !pathSegment(h.IdentityStoreID) {
		return errors.New("identity_store_id: must be one path segment of letters, digits, '-', '_' or '.' (GroupID's store IDs are numbers)")
	}
	if h.APIBase != "" && !apiBasePath(h.APIBase) {
		return errors.New("api_base: must be an absolute path such as /GroupIDDataService/api, without dot segments, query, encoded characters or backslashes")
	}
	if len(h.Name) > 128 || !printable(h.Name) {
		return errors.New("name: must be at most 128 printable characters")
	}
	if err := h.validateLimits(); err != nil {
		return err
	}
	if h.Share != nil {
		return h.Share.validate()
	}
	return nil
}

// validateLimits checks the durations and sizes.
func (h *Handler) validateLimits() error {
	switch {
	case h.RefreshBefore < 0:
		return errors.New("refresh_before: must not be negative")
	case time.Duration(h.RefreshBefore) >= tokencache.MaxTokenLifetime:
		return errors.New("refresh_before: must be shorter than a day (tokens live 20 minutes)")
	case h.Timeout < 0:
		return errors.New("timeout: must not be negative")
	case time.Duration(h.Timeout) > 5*time.Minute:
		return errors.New("timeout: must be at most 5m")
	case h.DialTimeout < 0:
		return errors.New("dial_timeout: must not be negative")
	case h.Timeout > 0 && h.DialTimeout > h.Timeout:
		return errors.New("dial_timeout: must not exceed timeout")
	case h.MaxReplayBody != nil && *h.MaxReplayBody < 0:
		return errors.New("max_replay_body: must not be negative")
	case h.MaxReplayBody != nil && *h.MaxReplayBody > MaxReplayBodyLimit:
		return errors.New("max_replay_body: must be at most 16MiB")
	}
	return nil
}

// applyDefaults fills in the settings left unset (after validate).
func (h *Handler) applyDefaults() {
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(DefaultTimeout)
	}
	if h.DialTimeout == 0 {
		h.DialTimeout = caddy.Duration(min(DefaultDialTimeout, time.Duration(h.Timeout)))
	}
	if h.Name == "" {
		h.Name = defaultName(h.Username, h.TokenURL, h.IdentityStoreID)
	}
	if h.MaxReplayBody == nil {
		h.MaxReplayBody = new(int64(DefaultMaxReplayBody))
	}
	if h.APIBase == "" {
		h.APIBase = DefaultAPIBase
	}
}

// pathSegment reports whether s is a non-empty path segment made of
// letters, digits, '-', '_' and '.', other than a dot segment.
func pathSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// apiBasePath reports whether s is an absolute path of such segments.
func apiBasePath(s string) bool {
	if len(s) < 2 || s[0] != '/' {
		return false
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(s[1:], "/"), "/") {
		if !pathSegment(seg) {
			return false
		}
	}
	return true
}

// rereader returns the hook that reads file-based secrets again after the
// password grant is rejected (Kubernetes updates Secret volumes in place),
// or nil when neither secret comes from a {file.*} placeholder.
func (h *Handler) rereader(rawPassword, rawSecret string) func() (tokencache.Grant, bool) {
	if !strings.Contains(rawPassword, "{file.") && !strings.Contains(rawSecret, "{file.") {
		return nil
	}
	var mu sync.Mutex
	current := h.grant
	return func() (tokencache.Grant, bool) {
		mu.Lock()
		defer mu.Unlock()
		repl := caddy.NewReplacer()
		pw, err1 := repl.ReplaceOrErr(rawPassword, true, true)
		cs, err2 := repl.ReplaceOrErr(rawSecret, true, true)
		if err1 != nil || err2 != nil || (pw == current.Password && cs == current.ClientSecret) {
			return current, false
		}
		current.Password, current.ClientSecret = pw, cs
		return current, true
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// tokenHost is the host:port of the token URL.
func tokenHost(tokenURL string) string {
	if u, err := url.Parse(tokenURL); err == nil {
		return u.Host
	}
	return ""
}

// defaultName derives a credential name from non-secret fields:
// username@host/identity_store_id.
func defaultName(username, tokenURL, store string) string {
	return username + "@" + tokenHost(tokenURL) + "/" + store
}
