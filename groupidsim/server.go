package groupidsim

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxBody caps the request body the simulator reads and records.
const maxBody = 32 << 20

// maxLog is how many requests Requests keeps.
const maxLog = 10000

// Server is one simulated GroupID site. Create it with New; all methods are
// safe for concurrent use.
type Server struct {
	cfg Config
	dir *directory

	mu       sync.Mutex
	password string
	fault    Fault
	counters Counters
	log      []*Request
	tokens   tokenStore
	// revocation is the revocation endpoint's state (revocation.go).
	revocation revocationState
}

// New returns a simulator for cfg, with defaults applied and the directory
// seeded.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:      cfg,
		dir:      newDirectory(cfg),
		password: cfg.Password,
		counters: newCounters(),
		tokens:   newTokenStore(),
	}
}

// Handler returns the whole site: the token endpoint, the Data API, the log
// downloads and the control endpoints under /_sim/.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// TokenURL returns the token endpoint address for a site reachable at base
// (scheme://host:port, no trailing slash).
func (s *Server) TokenURL(base string) string {
	return strings.TrimRight(base, "/") + s.cfg.SecurityPrefix + "/connect/token"
}

// SetPassword changes the service account password. Issued tokens stay valid.
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	s.password = p
	s.mu.Unlock()
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// route kinds, used for counting.
const (
	kindOther = iota
	kindToken
	kindAPI
)

// serveHTTP records the request, dispatches it and records the outcome.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	r.Body = io.NopCloser(bytes.NewReader(body))

	entry := &Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Authorization: append([]string(nil), r.Header.Values("Authorization")...),
		Header:        r.Header.Clone(),
		Body:          body,
		At:            s.now(),
	}
	s.mu.Lock()
	s.log = append(s.log, entry)
	if len(s.log) > maxLog {
		s.log = s.log[len(s.log)-maxLog:]
	}
	s.mu.Unlock()

	rec := &statusRecorder{ResponseWriter: w}
	kind, serve := s.route(r.URL.Path)
	defer func() {
		p := recover()
		status := rec.status
		switch {
		case p != nil || rec.noResponse:
			status = 0
		case status == 0:
			status = http.StatusOK
		}
		s.mu.Lock()
		entry.Status = status
		if kind == kindAPI && status != 0 {
			s.counters.APICalls[status]++
		}
		s.mu.Unlock()
		if p != nil {
			panic(p)
		}
	}()
	if readErr != nil {
		http.Error(rec, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	serve(rec, r)
}

// route picks the handler for path. Prefixes and literal segments match
// case-insensitively, as IIS and ASP.NET routing do.
func (s *Server) route(path string) (int, http.HandlerFunc) {
	sec, data := s.cfg.SecurityPrefix, s.cfg.DataPrefix
	switch {
	case strings.EqualFold(path, sec+"/connect/token"):
		return kindToken, s.serveToken
	case strings.EqualFold(path, sec+"/connect/revocation"):
		return kindOther, s.serveRevocation
	case hasPrefixFold(path, sec+"/api/"):
		rest := path[len(sec)+len("/api/"):]
		return kindAPI, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, securityEndpoints, rest) }
	case hasPrefixFold(path, data+"/api/"):
		rest := path[len(data)+len("/api/"):]
		return kindAPI, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, dataEndpoints, rest) }
	}
	return kindOther, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// statusRecorder remembers the status a handler sent.
type statusRecorder struct {
	http.ResponseWriter
	status     int
	noResponse bool // the connection was dropped or the client left
}

// WriteHeader records the first status sent.
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 when no status was sent yet.
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (for Hijack).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// markNoResponse notes that no response reached the client.
func markNoResponse(w http.ResponseWriter) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.noResponse = true
	}
}
