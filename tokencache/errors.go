package tokencache

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class tells how a failed token request should be handled.
type Class int

const (
	// ClassTransient covers connection errors, timeouts, 5xx, 429 and 200
	// responses that do not hold a usable token: retry soon with backoff.
	ClassTransient Class = iota + 1
	// ClassRejected means GroupID refused the request as configured (wrong
	// password, unknown client, bad scope, wrong token URL...): retrying
	// quickly will not help; an operator has to act.
	ClassRejected
)

func (c Class) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassRejected:
		return "rejected"
	}
	return "unknown"
}

// Error is a failed token request. It never contains a secret or a token:
// every text in it (the server's error and error_description, the reason,
// the transport error's text) is reduced to printable ASCII, shortened, and
// scrubbed of the request's secrets, raw or encoded (see redactor), before
// it is kept.
type Error struct {
	Class Class
	// GrantType is the grant_type that was sent: "password" or
	// "refresh_token"; "revocation" for a failed Client.Revoke.
	GrantType string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Code is the RFC 6749 error code ("invalid_grant", ...) when the server
	// sent one.
	Code string
	// Description is the sanitised error_description, if any.
	Description string
	// Reason says what went wrong when there is no OAuth error code
	// ("connection failed", "response is not JSON", ...).
	Reason string
	// Err is the underlying transport error, if any (its URL is stripped;
	// its text is sanitised, the original stays reachable with errors.As).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token request (%s grant) ", e.GrantType)
	if e.Class == ClassRejected {
		b.WriteString("rejected")
	} else {
		b.WriteString("failed")
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
		if e.Description != "" {
			b.WriteString(" (" + e.Description + ")")
		}
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " [HTTP %d]", e.StatusCode)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether the failure needs an operator, not a retry.
func (e *Error) Permanent() bool { return e.Class == ClassRejected }

// NoTokenError is returned by Source.Token when no valid token is held and
// none could be had now. RetryAt is when the Source will next try.
type NoTokenError struct {
	// Last is the most recent token request failure; nil only when the
	// caller's context ended before the first attempt finished.
	Last *Error
	// RetryAt is the time of the next scheduled token request.
	RetryAt time.Time
	// Cause is set when the wait ended for another reason (context ended,
	// source closed).
	Cause error
}

func (e *NoTokenError) Error() string {
	switch {
	case e.Last != nil:
		return "no valid groupid token: " + e.Last.Error()
	case e.Cause != nil:
		return "no valid groupid token: " + e.Cause.Error()
	}
	return "no valid groupid token"
}

func (e *NoTokenError) Unwrap() error {
	if e.Last != nil {
		return e.Last
	}
	return e.Cause
}

// Permanent reports whether the last failure was a rejection of the
// configured credentials.
func (e *NoTokenError) Permanent() bool { return e.Last != nil && e.Last.Permanent() }

// ErrClosed is the cause of a NoTokenError from a closed Source.
var ErrClosed = errors.New("token source closed")
