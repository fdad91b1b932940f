package tokencache

// Condition is a Source's condition as status pages show it: whether
// requests get a token and, if they do not, why. Its values are the names
// used in the admin status and readiness JSON and in the
// caddy_groupid_state metric's label.
type Condition string

const (
	// ConditionStarting: no token is served, no token request has failed
	// and none is in flight. A new Source is starting until its first
	// request; a token that expired (or was dropped after a 401) before
	// the next request began also leaves the Source starting.
	ConditionStarting Condition = "starting"
	// ConditionValid: a token is served and the last token request (or
	// adoption of a shared token) succeeded.
	ConditionValid Condition = "valid"
	// ConditionDegraded: a token is served, but the last token request
	// failed (transiently or rejected); requests get the token until it
	// expires or a request succeeds.
	ConditionDegraded Condition = "degraded"
	// ConditionUnavailable: no token is served and the last token request
	// failed transiently (GroupID down, unreachable or slow); requests
	// are refused (503) until an attempt succeeds.
	ConditionUnavailable Condition = "unavailable"
	// ConditionRejected: no token is served and GroupID rejected the
	// credentials (ClassRejected); requests are refused (502).
	ConditionRejected Condition = "rejected"
	// ConditionRefreshing: no token is served, no failure is recorded, and
	// a token request is in flight; callers wait for it.
	ConditionRefreshing Condition = "refreshing"
)

// Conditions returns every Condition, in a fixed order (for a metric that
// has one series per condition). The slice is the caller's.
func Conditions() []Condition {
	return []Condition{ConditionStarting, ConditionValid, ConditionDegraded, ConditionUnavailable, ConditionRejected, ConditionRefreshing}
}

// Serving reports whether requests get a token in condition c: valid or
// degraded. A token dropped after a 401, or expired, is not served.
func (c Condition) Serving() bool { return c == ConditionValid || c == ConditionDegraded }

// conditionOf is the Condition of a Source that serves serving (or nil),
// whose last attempt failed with lastErr (or nil, after a success or
// before any attempt), and that has a token request in flight if
// attempting. A failure outranks an attempt in flight: a Source retrying
// after a failure stays unavailable or rejected until a retry succeeds.
func conditionOf(serving *Token, lastErr *Error, attempting bool) Condition {
	switch {
	case serving != nil && lastErr == nil:
		return ConditionValid
	case serving != nil:
		return ConditionDegraded
	case lastErr != nil && lastErr.Permanent():
		return ConditionRejected
	case lastErr != nil:
		return ConditionUnavailable
	case attempting:
		return ConditionRefreshing
	}
	return ConditionStarting
}
