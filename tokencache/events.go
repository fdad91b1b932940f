package tokencache

import "time"

// EventKind says what an Event reports.
type EventKind int

const (
	// EventToken: a token request succeeded.
	EventToken EventKind = iota + 1
	// EventFailure: a token request failed.
	EventFailure
	// EventFallback: a refresh token was refused; a password grant follows.
	EventFallback
	// EventAdopt: a token another replica obtained was taken from shared
	// storage (no token request).
	EventAdopt
	// EventShare: the shared storage condition changed (ShareState).
	EventShare
	// EventShareError: a shared storage call failed (Reason; Changed on
	// the first of a run).
	EventShareError
)

// Event describes one token request, for logs and metrics. It holds no
// secret and no token.
type Event struct {
	Kind      EventKind
	GrantType string
	Err       *Error
	Duration  time.Duration
	// Expiry of the new token (EventToken).
	Expiry time.Time
	// LifetimeFrom and LifetimeNote: where the new token's lifetime came
	// from, and why when it is not a plain expires_in (EventToken; see
	// Token.LifetimeNote).
	LifetimeFrom LifetimeFrom
	LifetimeNote string
	// RetryAt is the next scheduled attempt (EventFailure).
	RetryAt time.Time
	// First is set on the first token this Source obtained.
	First bool
	// Recovered is set on a success that ends a run of failures.
	Recovered bool
	// Changed is set on a failure whose class or code differs from the
	// previous one (or that follows a success): log these, not every retry.
	Changed bool
	// ShareState is the storage condition (EventShare, EventShareError).
	ShareState ShareState
	// Reason describes a storage failure without quoting it.
	Reason string
	// Condition is the Source's condition once the event happened
	// (EventToken, EventAdopt, EventFailure), computed with it: a
	// condition read later may already include what happened next.
	Condition Condition
}
