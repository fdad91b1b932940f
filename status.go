package groupidauth

import (
	"time"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// credentialStatus is a credential as the admin API shows it: its snapshot
// in JSON, with the counters under the names the metrics use (less _total).
// No secret, no token.
type credentialStatus struct {
	credentialInfo
	State tokencache.Condition `json:"state"`
	// TokenExpires is the newest token's expiry, served or not.
	TokenExpires *time.Time `json:"token_expires,omitempty"`
	// ExpiresIn is the served token's remaining lifetime; 0 when none is
	// served (the same value as caddy_groupid_token_expires_in_seconds).
	ExpiresIn   float64      `json:"expires_in_seconds"`
	TokenAge    float64      `json:"token_age_seconds,omitempty"`
	LastRefresh *time.Time   `json:"last_refresh,omitempty"`
	GrantType   string       `json:"grant_type,omitempty"`
	LastError   *errorStatus `json:"last_error,omitempty"`
	NextAttempt *time.Time   `json:"next_attempt,omitempty"`

	TokenRequests              map[string]uint64 `json:"token_requests"`
	RequestsInjected           uint64            `json:"requests_injected"`
	RequestsRefusedUnavailable uint64            `json:"requests_refused_unavailable"`
	RequestsRefusedRejected    uint64            `json:"requests_refused_rejected"`
	Replays                    uint64            `json:"replays"`
	UnauthorizedPassed         uint64            `json:"unauthorized_passed"`
	TokenDrops                 uint64            `json:"token_drops"`
	// ReplaysAfter401 is the old name of Replays, kept for existing readers.
	ReplaysAfter401 uint64 `json:"replays_after_401"`

	// TokenSource is "own" (this replica's token request) or "shared"
	// (adopted from shared storage); absent before the first token.
	TokenSource string `json:"token_source,omitempty"`
	// The share counters are present when the credential is shared.
	ShareLockWaits     *uint64 `json:"share_lock_waits,omitempty"`
	ShareStorageErrors *uint64 `json:"share_storage_errors,omitempty"`
	ShareFallbacks     *uint64 `json:"share_fallbacks,omitempty"`
}

type errorStatus struct {
	Class   string `json:"class"`
	Code    string `json:"code,omitempty"`
	Status  int    `json:"status,omitempty"`
	Message string `json:"message"`
}

// status renders a snapshot for the admin API.
func (s snapshot) status() credentialStatus {
	v := s.counts
	out := credentialStatus{
		credentialInfo:             s.info,
		State:                      s.state,
		ExpiresIn:                  s.expiresIn().Seconds(),
		GrantType:                  v.lastGrant,
		TokenRequests:              map[string]uint64{},
		RequestsInjected:           v.requestsInjected,
		RequestsRefusedUnavailable: v.requestsRefusedUnavailable,
		RequestsRefusedRejected:    v.requestsRefusedRejected,
		Replays:                    v.replays,
		UnauthorizedPassed:         v.unauthorizedPassed,
		TokenDrops:                 s.drops,
		ReplaysAfter401:            v.replays,
		TokenSource:                s.tokenSource(),
	}
	if s.shared {
		sc := s.share
		out.ShareLockWaits, out.ShareStorageErrors, out.ShareFallbacks = &sc.LockWaits, &sc.StorageErrors, &sc.Fallbacks
	}
	if tok := s.newest; tok != nil {
		exp := tok.Expiry
		out.TokenExpires = &exp
		out.TokenAge = s.now.Sub(tok.IssuedAt).Seconds()
	}
	if e := s.lastErr; e != nil {
		out.LastError = &errorStatus{Class: e.Class.String(), Code: e.Code, Status: e.StatusCode, Message: e.Error()}
		next := s.nextAttempt
		out.NextAttempt = &next
	}
	if !v.lastRefresh.IsZero() {
		lr := v.lastRefresh
		out.LastRefresh = &lr
	}
	for k, n := range v.tokenRequests {
		out.TokenRequests[k.grantType+"/"+k.outcome] = n
	}
	return out
}
