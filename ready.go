package groupidauth

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Ready{})
	httpcaddyfile.RegisterHandlerDirective("groupid_ready", parseReady)
	httpcaddyfile.RegisterDirectiveOrder("groupid_ready", httpcaddyfile.Before, "respond")
}

// Ready answers a readiness probe: 200 while the named groupid_auth
// credential (or, with no name, every loaded one) holds a valid token, 503
// otherwise, each with a short JSON body. It is meant for a Kubernetes
// readinessProbe, so that traffic goes only to a pod that can serve it. It
// never contacts GroupID. Liveness must not use it: a GroupID outage is no
// reason to restart the sidecar.
type Ready struct {
	// Name of the credential to check (the `name` of a groupid_auth
	// handler in the same config). Default: all credentials.
	Name string `json:"name,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Ready) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groupid_ready",
		New: func() caddy.Module { return new(Ready) },
	}
}

type readiness struct {
	Ready       bool               `json:"ready"`
	Reason      string             `json:"reason,omitempty"`
	Credentials []credentialStatus `json:"credentials,omitempty"`
}

type credentialStatus struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	ExpiresIn float64 `json:"expires_in_seconds"`
	LastError string  `json:"last_error,omitempty"`
}

// ServeHTTP writes the readiness verdict; it does not call next.
func (rd Ready) ServeHTTP(w http.ResponseWriter, _ *http.Request, _ caddyhttp.Handler) error {
	out := readiness{Ready: true}
	srcs := lookupCredentials(rd.Name)
	if len(srcs) == 0 {
		out.Ready, out.Reason = false, "no groupid_auth credential is loaded"
		if rd.Name != "" {
			out.Reason = "no groupid_auth credential named " + rd.Name + " is loaded"
		}
	}
	for _, s := range srcs {
		st := s.status()
		cs := credentialStatus{Name: st.Name, State: st.State, ExpiresIn: st.ExpiresIn}
		if st.LastError != nil {
			cs.LastError = st.LastError.Class + " " + st.LastError.Code
		}
		if st.State != stateValid && st.State != stateDegraded {
			out.Ready = false
			out.Reason = "no valid token for " + st.Name + " (" + st.State + ")"
		}
		out.Credentials = append(out.Credentials, cs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if out.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return json.NewEncoder(w).Encode(out)
}

// parseReady: groupid_ready [<matcher>] [<name>]
func parseReady(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rd := new(Ready)
	err := rd.UnmarshalCaddyfile(h.Dispenser)
	return rd, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (rd *Ready) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		rd.Name = d.Val()
	}
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	return nil
}

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
	if tok := st.Token; tok != nil {
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
	valid := st.Token.ValidAt(now)
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

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = Ready{}
	_ caddyfile.Unmarshaler       = (*Ready)(nil)
)
