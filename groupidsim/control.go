package groupidsim

import (
	"io"
	"net/http"
	"strconv"
	"time"
)

// serveControl answers the unauthenticated /_sim/ endpoints used by scripts:
//
//	GET  /_sim/counters             Counters as JSON
//	POST /_sim/reset                ResetCounters
//	POST /_sim/fault?kind=K         SetFault; K is none, down, slow, 5xx or
//	     [&delay=2s][&status=502]   garbage
//	POST /_sim/revoke               RevokeAllTokens
//	POST /_sim/invalidate-refresh   InvalidateRefreshTokens
//	POST /_sim/password             SetPassword, new password as raw body
//
// These calls are not recorded in Requests.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	want := http.MethodPost
	if r.URL.Path == "/_sim/counters" {
		want = http.MethodGet
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/_sim/counters":
		writeJSON(w, http.StatusOK, s.Counters())
		return
	case "/_sim/reset":
		s.ResetCounters()
	case "/_sim/fault":
		f, err := parseFaultQuery(r)
		if err != "" {
			http.Error(w, err, http.StatusBadRequest)
			return
		}
		s.SetFault(f)
	case "/_sim/revoke":
		s.RevokeAllTokens()
	case "/_sim/invalidate-refresh":
		s.InvalidateRefreshTokens()
	case "/_sim/password":
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
		if err != nil || len(b) == 0 {
			http.Error(w, "new password required as request body", http.StatusBadRequest)
			return
		}
		s.SetPassword(string(b))
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// parseFaultQuery reads kind, delay and status; it returns an error text on
// bad input.
func parseFaultQuery(r *http.Request) (Fault, string) {
	q := r.URL.Query()
	kind, err := ParseFaultKind(q.Get("kind"))
	if err != nil {
		return Fault{}, "kind must be none, down, slow, 5xx or garbage"
	}
	f := Fault{Kind: kind}
	if v := q.Get("delay"); v != "" {
		if f.Delay, err = time.ParseDuration(v); err != nil || f.Delay < 0 {
			return Fault{}, "delay must be a Go duration such as 2s"
		}
	}
	if v := q.Get("status"); v != "" {
		if f.Status, err = strconv.Atoi(v); err != nil || f.Status < 100 || f.Status > 999 {
			return Fault{}, "status must be an HTTP status code"
		}
	}
	return f, ""
}
