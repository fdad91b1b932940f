package groupidauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// loadTokenTLS builds the TLS client config for the token endpoint from
// ca_cert_file or tls_trust_pool, the client certificate, the server name
// and the skip-verify switch, reading every file afresh at each load. It
// returns nil for the defaults (system roots). The credential uses the
// running config's TLS config for its next token request, so trust
// material follows reloads without a new token. It also returns the
// settings as read (files by content), for the credential to compare.
func (cr *Credential) loadTokenTLS(ctx caddy.Context) (*tls.Config, tlsSettings, error) {
	set := tlsSettings{4: cr.TLSServerName, 5: fmt.Sprint(cr.TLSInsecureSkipVerify)}
	cfg, err := cr.readTokenTLS(ctx, &set)
	return cfg, set, err
}

// readTokenTLS is loadTokenTLS; it records each file and the trust pool
// in set as it reads them (LoadModule clears the pool's raw JSON).
func (cr *Credential) readTokenTLS(ctx caddy.Context, set *tlsSettings) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cr.TLSServerName, InsecureSkipVerify: cr.TLSInsecureSkipVerify} //nolint:gosec // opt-in, warned about at load
	custom := cr.TLSServerName != "" || cr.TLSInsecureSkipVerify

	if cr.CACertFile != "" {
		pem, err := os.ReadFile(cr.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("ca_cert_file: %w", err)
		}
		set[0] = fileSetting(cr.CACertFile, pem)
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_cert_file: no PEM certificate found in the file")
		}
		cfg.RootCAs, custom = pool, true
	}
	if cr.TrustPoolRaw != nil {
		set[1] = string(cr.TrustPoolRaw)
		mod, err := ctx.LoadModule(cr, "TrustPoolRaw")
		if err != nil {
			return nil, fmt.Errorf("tls_trust_pool: %w", err)
		}
		ca, ok := mod.(caddytls.CA)
		if !ok {
			return nil, fmt.Errorf("tls_trust_pool: module %T is not a CA pool source", mod)
		}
		cfg.RootCAs, custom = ca.CertPool(), true
	}
	if cr.TLSClientCert != "" {
		certPEM, err := os.ReadFile(cr.TLSClientCert)
		if err != nil {
			return nil, fmt.Errorf("tls_client_cert: %w", err)
		}
		keyPEM, err := os.ReadFile(cr.TLSClientKey)
		if err != nil {
			return nil, fmt.Errorf("tls_client_key: %w", err)
		}
		set[2], set[3] = fileSetting(cr.TLSClientCert, certPEM), fileSetting(cr.TLSClientKey, keyPEM)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The parse error can quote key material; do not wrap it.
			return nil, errors.New("tls_client_cert and tls_client_key: not a matching PEM certificate and key")
		}
		cfg.Certificates, custom = []tls.Certificate{pair}, true
	}
	if !custom {
		return nil, nil
	}
	return cfg, nil
}

// useTransport sends a credential's token requests with the transport of
// the running config, so that a reload that changes the trust pool, the CA
// file or the client certificate takes effect at the next token request
// (and a CA that was removed is trusted no more), while a load that failed,
// or was only validated, never sends the password anywhere.
type useTransport struct{ c *credential }

// RoundTrip implements http.RoundTripper.
func (t useTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := t.c.current()
	if u == nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errNoTransport
	}
	if u.tracing != nil {
		req = u.tracing.inject(req)
	}
	return u.transport.RoundTrip(req)
}

var errNoTransport = errors.New("no running config holds this credential")

// tlsSettings is what decides the trust of the token endpoint's TLS
// connection, one value per field, named as the field. Files are named by
// path and content, so that two handlers naming the same file agree.
type tlsSettings [6]string

var tlsSettingNames = [len(tlsSettings{})]string{"ca_cert_file", "tls_trust_pool", "tls_client_cert", "tls_client_key", "tls_server_name", "tls_insecure_skip_verify"}

// fileSetting names a file by path and content (hashed: a key file's
// content is a secret).
func fileSetting(path string, content []byte) string {
	return path + "\x00" + tokencache.HashFields(string(content))
}

// differs names the first field in which t and o differ, or "".
func (t tlsSettings) differs(o tlsSettings) string {
	for i := range t {
		if t[i] != o[i] {
			return tlsSettingNames[i]
		}
	}
	return ""
}
