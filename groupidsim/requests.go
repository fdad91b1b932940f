package groupidsim

import (
	"net/http"
	"strings"
	"time"
)

// Request is one request the site received, as recorded by the simulator.
type Request struct {
	Method, Path, RawQuery string
	// Authorization holds every Authorization header value as received.
	Authorization []string
	// Header is every request header as received.
	Header http.Header
	// Body is the request body byte for byte.
	Body []byte
	// Status is the response status; 0 when no response was sent (dropped
	// connection, client gave up) or the request is still being served.
	Status int
	// At is the arrival time according to Config.Now.
	At time.Time
}

// Requests returns a copy of the request log in arrival order (newest last),
// limited to the last 10000 requests. Control calls under /_sim/ are not
// recorded.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, e := range s.log {
		out[i] = *e
		out[i].Authorization = append([]string(nil), e.Authorization...)
		out[i].Header = e.Header.Clone()
		out[i].Body = append([]byte(nil), e.Body...)
	}
	return out
}

// TokenRequests returns the requests to the token endpoint in the request
// log, oldest first (copies, as Requests).
func (s *Server) TokenRequests() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if strings.HasSuffix(strings.ToLower(r.Path), "/connect/token") {
			out = append(out, r)
		}
	}
	return out
}
