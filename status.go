package groupidauth

import "time"

// status states of a credential.
const (
	stateStarting   = "starting"    // no token yet, no failure yet
	stateValid      = "valid"       // valid token, last request succeeded
	stateDegraded   = "degraded"    // valid token, but refreshing it fails
	stateFailing    = "unavailable" // no valid token; GroupID failing
	stateRejected   = "rejected"    // no valid token; credentials rejected
	stateRefreshing = "refreshing"  // no valid token; a request is in flight
)

// sourceStatus is the admin API's view of a credential. No secret, no token.
type sourceStatus struct {
	credentialInfo
	State          string            `json:"state"`
	TokenExpires   *time.Time        `json:"token_expires,omitempty"`
	ExpiresIn      float64           `json:"expires_in_seconds"`
	TokenAge       float64           `json:"token_age_seconds,omitempty"`
	LastRefresh    *time.Time        `json:"last_refresh,omitempty"`
	GrantType      string            `json:"grant_type,omitempty"`
	LastError      *errorStatus      `json:"last_error,omitempty"`
	NextAttempt    *time.Time        `json:"next_attempt,omitempty"`
	TokenRequests  map[string]uint64 `json:"token_requests"`
	Injected       uint64            `json:"requests_injected"`
	RefusedUnavail uint64            `json:"requests_refused_unavailable"`
	RefusedReject  uint64            `json:"requests_refused_rejected"`
	Replays        uint64            `json:"replays_after_401"`
	Passed401      uint64            `json:"unauthorized_passed"`
}

type errorStatus struct {
	Class   string `json:"class"`
	Code    string `json:"code,omitempty"`
	Status  int    `json:"status,omitempty"`
	Message string `json:"message"`
}

func (s *sharedSource) status() sourceStatus {
	now := s.clock.Now()
	st := s.src.State()
	out := sourceStatus{credentialInfo: s.info, TokenRequests: map[string]uint64{}}
	if tok := st.Newest; tok != nil {
		exp := tok.Expiry
		out.TokenExpires = &exp
		out.TokenAge = now.Sub(tok.IssuedAt).Seconds()
		if tok.ValidAt(now) {
			out.ExpiresIn = exp.Sub(now).Seconds()
		}
	}
	if e := st.LastErr; e != nil {
		out.LastError = &errorStatus{Class: e.Class.String(), Code: e.Code, Status: e.StatusCode, Message: e.Error()}
		next := st.NextAttempt
		out.NextAttempt = &next
	}
	valid := st.Newest.ValidAt(now)
	switch {
	case valid && st.LastErr == nil:
		out.State = stateValid
	case valid:
		out.State = stateDegraded
	case st.LastErr != nil && st.LastErr.Permanent():
		out.State = stateRejected
	case st.LastErr != nil:
		out.State = stateFailing
	case st.Attempting:
		out.State = stateRefreshing
	default:
		out.State = stateStarting
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.tokenRequests {
		out.TokenRequests[k.grant+"/"+k.outcome] = v
	}
	if !s.stats.lastRefresh.IsZero() {
		lr := s.stats.lastRefresh
		out.LastRefresh = &lr
	}
	out.GrantType = s.stats.lastGrant
	s.stats.mu.Unlock()
	out.Injected = s.stats.injected.Load()
	out.RefusedUnavail = s.stats.unavailable.Load()
	out.RefusedReject = s.stats.rejected.Load()
	out.Replays = s.stats.replays.Load()
	out.Passed401 = s.stats.passed401.Load()
	return out
}
