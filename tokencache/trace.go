package tokencache

import "context"

// TraceFunc is told of every token request a Source sends (Options.Trace),
// just before it goes out. The context it returns is the request's: a
// tracer puts its span there, for the HTTP client's transport to
// propagate. end, if not nil, is called once with the outcome when the
// answer is in (or the request failed). It runs on the refresh goroutine
// and must not block for long.
type TraceFunc func(ctx context.Context, req TokenRequest) (_ context.Context, end func(TokenResult))

// TokenRequest describes a token request about to be sent. It holds no
// secret.
type TokenRequest struct {
	// GrantType is "password" or "refresh_token".
	GrantType string
	// Shared is set when the request is made for the cluster, under the
	// shared storage lock (its token is stored for every replica); unset
	// when it is the replica's own (no sharing, or storage could not be
	// used).
	Shared bool
}

// TokenResult is the outcome of a token request. It holds no secret.
type TokenResult struct {
	// StatusCode is the HTTP status of the answer, 0 when none arrived.
	StatusCode int
	// Err is nil when a usable token was obtained.
	Err *Error
}

// traceStart calls Options.Trace, if set, for a request with the grant
// type of refreshToken. Refresh goroutine only.
func (s *Source) traceStart(ctx context.Context, refreshToken string) (context.Context, func(TokenResult)) {
	if s.opts.Trace == nil {
		return ctx, nil
	}
	return s.opts.Trace(ctx, TokenRequest{GrantType: grantTypeOf(refreshToken), Shared: s.underLock})
}

// statusOf is the HTTP status of a request that got err (nil: 200).
func statusOf(err *Error) int {
	if err == nil {
		return 200
	}
	return err.StatusCode
}
