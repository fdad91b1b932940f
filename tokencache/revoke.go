package tokencache

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// RevocationURL is the revocation endpoint IdentityServer serves beside
// the token endpoint tokenURL: the last path segment ("token") replaced by
// "revocation", so .../connect/token gives .../connect/revocation. A URL
// whose path does not end in /token gets /revocation appended instead.
func RevocationURL(tokenURL string) string {
	u, err := url.Parse(tokenURL)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment = "", ""
	if p, ok := strings.CutSuffix(u.Path, "/token"); ok {
		u.Path = p + "/revocation"
	} else {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/revocation"
	}
	u.RawPath = ""
	return u.String()
}

// Revoke asks the revocation endpoint at revocationURL to revoke
// refreshToken (RFC 7009, token_type_hint=refresh_token), authenticating
// the client as the token requests of g do: client_id and client_secret as
// form fields, or HTTP Basic when g.BasicAuth is set. Only a 200 answer is
// success. The request is bounded by ctx and by c.HTTP's Timeout; the
// returned *Error (GrantType "revocation") is scrubbed of g's secrets and
// of the refresh token.
func (c *Client) Revoke(ctx context.Context, g Grant, revocationURL, refreshToken string) error {
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	if !g.BasicAuth {
		form.Set("client_id", g.ClientID)
		form.Set("client_secret", g.ClientSecret)
	}
	fail := func(class Class, status int, reason string, err error) error {
		e := &Error{Class: class, GrantType: revocationLabel, StatusCode: status, Reason: reason, Err: err}
		newRedactor(requestSecrets(g, refreshToken)...).scrub(e)
		return e
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, revocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fail(ClassRejected, 0, "invalid revocation_url", nil)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if g.BasicAuth {
		req.SetBasicAuth(url.QueryEscape(g.ClientID), url.QueryEscape(g.ClientSecret))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fail(ClassTransient, 0, transportReason(err), stripURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests:
		return fail(ClassTransient, resp.StatusCode, "revocation endpoint unavailable", nil)
	}
	e := rejection(revocationLabel, resp.StatusCode, body, "revocation endpoint") // scrubbed below, as a token request's
	newRedactor(requestSecrets(g, refreshToken)...).scrub(e)
	return e
}

// revocationLabel is the GrantType of a revocation's *Error.
const revocationLabel = "revocation"

// CloseAndTakeRefreshToken closes s (see Close) and returns the refresh
// token it held for its next refresh, with the grant it was sending (the
// re-read secrets, once adopted), so that the caller can revoke the chain.
// The refresh token is "" when there is none: s never started, GroupID
// gave none, or s had given it up (after it was refused, or after
// MaxRefreshFailures transient failures). With Options.Shared, the token
// is the cluster's: never revoke it.
func (s *Source) CloseAndTakeRefreshToken() (Grant, string) {
	s.Close()
	// The refresh goroutine has ended (Close waited for it), so its state
	// is ours to read.
	return s.policy.grant, s.policy.refreshToken
}
