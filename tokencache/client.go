package tokencache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxResponseBytes bounds how much of a token response is read; a larger
// body is a transient error, not a memory spike.
const MaxResponseBytes = 64 << 10

// Client performs single token requests. It is safe for concurrent use, but
// a Source never issues two requests for one credential at once.
type Client struct {
	// HTTP sends the requests; it must not follow redirects (NewHTTPClient
	// builds one that does not). Its Timeout bounds each request.
	HTTP *http.Client
	// DefaultLifetime is the lifetime of a token whose response has no
	// numeric expires_in and whose access token has no readable JWT exp
	// claim (see tokenLifetime). Zero: DefaultTokenLifetime.
	DefaultLifetime time.Duration
}

// NewHTTPClient returns an HTTP client for a token endpoint: it follows no
// redirect (a redirect would re-send the secrets to another URL), uses
// tlsConfig when not nil, gives up on connecting after dialTimeout (when
// positive) and on a whole request after timeout.
func NewHTTPClient(tlsConfig *tls.Config, timeout, dialTimeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if dialTimeout > 0 {
		tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = dialTimeout
	}
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
	}
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Fetch asks the token endpoint for a token: with the refresh_token grant
// when refreshToken is not empty, else with the password grant. now is the
// issue time recorded in the token.
func (c *Client) Fetch(ctx context.Context, g Grant, refreshToken string, now time.Time) (*Token, error) {
	form := url.Values{}
	grantType := "password"
	if refreshToken != "" {
		grantType = "refresh_token"
		form.Set("refresh_token", refreshToken)
	} else {
		form.Set("username", g.Username)
		form.Set("password", g.Password)
		form.Set("identity_store_id", g.IdentityStoreID)
		if g.Scope != "" {
			form.Set("scope", g.Scope)
		}
	}
	form.Set("grant_type", grantType)
	if !g.BasicAuth {
		form.Set("client_id", g.ClientID)
		form.Set("client_secret", g.ClientSecret)
	}
	addFormParams(form, g.FormParams)

	// Every text that goes into an error is scrubbed of the secrets sent.
	scrub := func(e *Error) (*Token, error) {
		newRedactor(requestSecrets(g, refreshToken)...).scrub(e)
		return nil, e
	}
	fail := func(class Class, status int, reason string, err error) (*Token, error) {
		return scrub(&Error{Class: class, GrantType: grantType, StatusCode: status, Reason: reason, Err: err})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fail(ClassRejected, 0, "invalid token_url", nil)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if g.BasicAuth {
		// RFC 6749 section 2.3.1: both parts are form-encoded first.
		req.SetBasicAuth(url.QueryEscape(g.ClientID), url.QueryEscape(g.ClientSecret))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fail(ClassTransient, 0, transportReason(err), stripURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fail(ClassTransient, resp.StatusCode, "reading response: "+transportReason(err), stripURL(err))
	}
	if len(body) > MaxResponseBytes {
		return fail(ClassTransient, resp.StatusCode, "response larger than 64 KiB", nil)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		tok, reason := parseToken(body, grantType, now, c.DefaultLifetime)
		if tok == nil {
			return fail(ClassTransient, resp.StatusCode, reason, nil)
		}
		return tok, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fail(ClassRejected, resp.StatusCode, "token endpoint redirected; redirects are not followed (check token_url)", nil)
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return fail(ClassTransient, resp.StatusCode, "token endpoint unavailable", nil)
	case resp.StatusCode >= 400:
		return scrub(rejection(grantType, resp.StatusCode, body, "token endpoint"))
	}
	return fail(ClassTransient, resp.StatusCode, "unexpected status", nil)
}

// rejection is the error for a 4xx answer of endpoint: its OAuth error
// code and description if the body is an OAuth error, to be sanitised and
// scrubbed by the caller.
func rejection(grantType string, status int, body []byte, endpoint string) *Error {
	e := &Error{Class: ClassRejected, GrantType: grantType, StatusCode: status}
	var er errorResponse
	if json.Unmarshal(body, &er) == nil && er.Error != "" {
		e.Code, e.Description = er.Error, er.ErrorDescription
	} else {
		e.Reason = endpoint + " refused the request without an OAuth error body"
	}
	return e
}

// transportReason names the kind of transport failure for operators.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return "TLS certificate not trusted (configure ca_cert_file or tls_trust_pool)"
		}
	}
	return "connection failed"
}

// stripURL drops the *url.Error wrapper so that the token URL (which could
// carry a query string) is not repeated in every error.
func stripURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}
