package groupidauth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
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

// stringFields lists the credential's string settings, for placeholder
// expansion and the Caddyfile's single-value subdirectives.
func (c *Credential) stringFields() []stringField {
	return []stringField{
		{"token_url", &c.TokenURL},
		{"username", &c.Username},
		{"password", &c.Password},
		{"client_id", &c.ClientID},
		{"client_secret", &c.ClientSecret},
		{"identity_store_id", &c.IdentityStoreID},
		{"scope", &c.Scope},
		{"ca_cert_file", &c.CACertFile},
		{"tls_client_cert", &c.TLSClientCert},
		{"tls_client_key", &c.TLSClientKey},
		{"tls_server_name", &c.TLSServerName},
		{"client_auth", &c.ClientAuth},
		{"revocation_url", &c.RevocationURL},
	}
}

// stringFields lists every string setting of the handler.
func (h *Handler) stringFields() []stringField {
	return append(h.Credential.stringFields(), stringField{"name", &h.Name}, stringField{"api_base", &h.APIBase})
}

// requiredFields are the settings without which no token can be had.
var requiredFields = []string{"token_url", "username", "password", "client_id", "client_secret", "identity_store_id"}

// expandPlaceholders replaces {env.*}, {file.*} and other global
// placeholders in every string field. Errors name the field and the
// placeholder, never the value.
func expandPlaceholders(fields []stringField) error {
	repl := caddy.NewReplacer()
	for _, f := range fields {
		v, err := repl.ReplaceOrErr(*f.ptr, true, true)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.ptr = v
	}
	return nil
}

// expand expands the placeholders of the credential and its share key.
func (c *Credential) expand() error {
	fields := c.stringFields()
	if c.Share != nil {
		fields = append(fields, stringField{"share.key", &c.Share.Key})
	}
	if err := expandPlaceholders(fields); err != nil {
		return err
	}
	return c.expandFormParams()
}

// validate checks the expanded credential. Errors name the field and never
// repeat its value.
func (c *Credential) validate() error {
	for _, f := range c.stringFields() {
		if slices.Contains(requiredFields, f.name) && *f.ptr == "" {
			return fmt.Errorf("%s: required", f.name)
		}
	}
	u, err := url.Parse(c.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("token_url: must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("token_url: must not carry user information")
	}
	if u.Scheme == "http" && !c.AllowHTTP {
		return errors.New("token_url: http:// would send the password in clear text; use https:// (or set allow_http for a loopback test)")
	}
	if u.Scheme == "http" && (c.CACertFile != "" || c.TrustPoolRaw != nil || c.TLSClientCert != "" || c.TLSServerName != "" || c.TLSInsecureSkipVerify) {
		return errors.New("token_url: TLS settings given for an http:// URL")
	}
	switch c.ClientAuth {
	case "", "form", "basic":
	default:
		return errors.New("client_auth: must be form or basic")
	}
	if (c.TLSClientCert == "") != (c.TLSClientKey == "") {
		return errors.New("tls_client_cert and tls_client_key: give both or neither")
	}
	if c.CACertFile != "" && c.TrustPoolRaw != nil {
		return errors.New("ca_cert_file and tls_trust_pool: use one")
	}
	if !pathSegment(c.IdentityStoreID) {
		return errors.New("identity_store_id: must be one path segment of letters, digits, '-', '_' or '.' (GroupID's store IDs are numbers)")
	}
	if err := c.validateDurations(); err != nil {
		return err
	}
	if err := c.validateFormParams(); err != nil {
		return err
	}
	if err := c.validateDefaultLifetime(); err != nil {
		return err
	}
	if err := c.validateRevocation(); err != nil {
		return err
	}
	if c.Share != nil {
		return c.Share.validate()
	}
	return nil
}

// validateDurations checks the durations.
func (c *Credential) validateDurations() error {
	switch {
	case c.RefreshBefore < 0:
		return errors.New("refresh_before: must not be negative")
	case time.Duration(c.RefreshBefore) >= tokencache.MaxTokenLifetime:
		return errors.New("refresh_before: must be shorter than a day (tokens live 20 minutes)")
	case c.Timeout < 0:
		return errors.New("timeout: must not be negative")
	case time.Duration(c.Timeout) > 5*time.Minute:
		return errors.New("timeout: must be at most 5m")
	case c.DialTimeout < 0:
		return errors.New("dial_timeout: must not be negative")
	case c.Timeout > 0 && c.DialTimeout > c.Timeout:
		return errors.New("dial_timeout: must not exceed timeout")
	}
	return nil
}

// applyDefaults fills in the settings left unset (after validate).
func (c *Credential) applyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(DefaultTimeout)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = caddy.Duration(min(DefaultDialTimeout, time.Duration(c.Timeout)))
	}
}

// validate checks the handler's own settings (after placeholders).
func (h *Handler) validate() error {
	switch {
	case h.APIBase != "" && !apiBasePath(h.APIBase):
		return errors.New("api_base: must be an absolute path such as /GroupIDDataService/api, without dot segments, query, encoded characters or backslashes")
	case len(h.Name) > 128 || !printable(h.Name):
		return errors.New("name: must be at most 128 printable characters")
	case h.MaxReplayBody != nil && *h.MaxReplayBody < 0:
		return errors.New("max_replay_body: must not be negative")
	case h.MaxReplayBody != nil && *h.MaxReplayBody > MaxReplayBodyLimit:
		return errors.New("max_replay_body: must be at most 16MiB")
	}
	return nil
}

// applyDefaults fills in the handler's settings left unset.
func (h *Handler) applyDefaults() {
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
func rereader(grant tokencache.Grant, rawPassword, rawSecret string) func() (tokencache.Grant, bool) {
	if !strings.Contains(rawPassword, "{file.") && !strings.Contains(rawSecret, "{file.") {
		return nil
	}
	var mu sync.Mutex
	current := grant
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
