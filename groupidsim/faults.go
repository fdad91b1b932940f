package groupidsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// FaultKind selects how the token endpoint misbehaves.
type FaultKind int

// Fault kinds.
const (
	// FaultNone serves normally.
	FaultNone FaultKind = iota
	// FaultDown hijacks the connection and closes it without any response.
	FaultDown
	// FaultSlow waits Fault.Delay (giving up if the client cancels) and then
	// answers normally.
	FaultSlow
	// Fault5xx answers with Fault.Status (default 503) and a short text body.
	Fault5xx
	// FaultGarbage200 answers 200 with an HTML page instead of a token.
	FaultGarbage200
	// FaultEcho answers 400 invalid_request with the raw request body and
	// the Authorization header echoed in error_description, as some token
	// endpoints do on a parse error: a test that the client redacts them.
	FaultEcho
)

var faultNames = []string{"none", "down", "slow", "5xx", "garbage", "echo"}

// String returns the name used by the /_sim/fault control endpoint.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// ParseFaultKind turns a control endpoint name (none, down, slow, 5xx,
// garbage, echo) into a FaultKind.
func ParseFaultKind(name string) (FaultKind, error) {
	for i, n := range faultNames {
		if strings.EqualFold(n, name) {
			return FaultKind(i), nil
		}
	}
	return FaultNone, fmt.Errorf("groupidsim: unknown fault kind %q", name)
}

// Fault describes a token endpoint failure mode. It stays in force until
// replaced.
type Fault struct {
	Kind   FaultKind
	Delay  time.Duration // FaultSlow only
	Status int           // Fault5xx only; default 503
}

// SetFault makes the token endpoint fail as f describes. Faults act before
// any request validation and do not affect the Data API.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// garbagePage is what a misconfigured front end might return instead of a
// token: a sign-in page.
const garbagePage = "<html><head><title>Sign in</title></head><body><h1>Directory Manager</h1><p>Please sign in to continue.</p></body></html>\n"

// applyFault carries out the current fault, counting it as outcome "fault"
// for grant. It reports whether the request has been dealt with (true) or
// should be served normally (false).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, grant string, body []byte) bool {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f.Kind != FaultNone && f.Kind != FaultSlow {
		s.countToken(grant, "fault")
	}
	switch f.Kind {
	case FaultDown:
		dropConnection(w) // may not return (HTTP/2)
		return true
	case FaultSlow:
		if waitOrGone(w, r, f.Delay) {
			s.countToken(grant, "fault")
			return true
		}
		return false
	case Fault5xx:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%d %s\n", status, http.StatusText(status))
		return true
	case FaultGarbage200:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(garbagePage))
		return true
	case FaultEcho:
		desc := "could not parse the request: " + string(body) + " authorization: " + r.Header.Get("Authorization")
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": desc})
		return true
	}
	return false
}

// waitOrGone waits delay, or until the client gives up; it reports whether
// the client gave up (then no response reaches it).
func waitOrGone(w http.ResponseWriter, r *http.Request, delay time.Duration) bool {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-r.Context().Done():
		markNoResponse(w)
		return true
	}
}

// dropConnection closes the client connection without a response. Over
// HTTP/2, where hijacking is impossible, the stream is reset instead.
func dropConnection(w http.ResponseWriter) {
	markNoResponse(w)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
