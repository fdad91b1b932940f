package groupidauth

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// serveWithReplay forwards r with tok and heals a 401: when the upstream
// rejects a token that was valid for us (revoked early, e.g. after a signing
// key rotation), the token is dropped if it is still the current one, a
// fresh one is fetched (single-flight in the source), and the request is
// sent once more if its body was kept (see replayBody: within MaxReplayBody
// and the process-wide MaxReplayMemory). The replay happens only if the
// token the request carried is no longer served once the 401 has been
// taken into account: past the drop budget (tokencache.MaxInvalidations a
// minute) the token stays and the 401 goes to the client. The second
// answer goes to the client whatever it is: one replay, never a loop.
func (h *Handler) serveWithReplay(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, tok *tokencache.Token) error {
	body, armed := recordBody(r, h.MaxReplayBody)
	if body != nil {
		defer body.finish()
	}
	rw := writerPool.Get().(*replayWriter)
	rw.reset(w, armed, body)
	rw.src, rw.tok = h.cred.src, tok
	err := next.ServeHTTP(rw, r)
	status, intercepted := rw.status, rw.intercepted
	if intercepted {
		rw.restoreHeader()
	}
	rw.release()
	writerPool.Put(rw)

	if status != http.StatusUnauthorized {
		return err
	}
	if !intercepted {
		h.cred.counters.unauthorizedPassed.Add(1)
		return err
	}
	h.cred.counters.replays.Add(1)
	fresh, terr := h.cred.src.Token(r.Context())
	if terr != nil {
		return h.refuse(w, terr)
	}
	r.Header["Authorization"] = []string{fresh.AuthorizationHeader()}
	if body != nil {
		r.Body = body.replay()
	} else {
		r.Body = http.NoBody
	}
	return next.ServeHTTP(w, r)
}

var writerPool = sync.Pool{New: func() any { return new(replayWriter) }}

// replayWriter passes a response through, except that when armed it holds
// back a 401 (status, headers and body) so the request can be replayed:
// always for a request without a body, and for one with a body if the body
// is still being kept when the 401 comes (replayBody.hold).
// It is pooled: a request costs no allocation for it.
type replayWriter struct {
	http.ResponseWriter
	body        *replayBody // nil for a request without a body
	src         *tokencache.Source
	tok         *tokencache.Token // the token the request carries
	armed       bool
	intercepted bool
	wrote       bool
	status      int

	// The response headers set before the upstream answered (Caddy sets
	// Server, for one), to restore after a held-back 401 whose headers were
	// copied in. Slice headers are kept, not copied: appending to a value
	// cannot change the elements they cover.
	saved    [4]savedHeader
	nSaved   int
	overflow http.Header // when there were more than len(saved)
}

type savedHeader struct {
	key    string
	values []string
}

// reset prepares a pooled writer for w and snapshots w's headers.
func (rw *replayWriter) reset(w http.ResponseWriter, armed bool, body *replayBody) {
	rw.ResponseWriter, rw.armed, rw.body = w, armed, body
	rw.intercepted, rw.wrote, rw.status = false, false, 0
	hdr := w.Header()
	if len(hdr) == 0 {
		return
	}
	// Fast path: only headers Caddy's server itself sets are present;
	// looking them up is much cheaper than iterating the map.
	for _, k := range serverHeaders {
		if v, ok := hdr[k]; ok {
			rw.saved[rw.nSaved] = savedHeader{k, v}
			rw.nSaved++
		}
	}
	if rw.nSaved == len(hdr) {
		return
	}
	clear(rw.saved[:rw.nSaved])
	rw.nSaved = 0
	if len(hdr) > len(rw.saved) {
		rw.overflow = hdr.Clone()
		return
	}
	for k, v := range hdr {
		rw.saved[rw.nSaved] = savedHeader{k, v}
		rw.nSaved++
	}
}

// serverHeaders are the response headers Caddy's server sets before any
// handler runs.
var serverHeaders = [...]string{"Server", "Alt-Svc"}

// restoreHeader puts the response headers back as they were at reset.
func (rw *replayWriter) restoreHeader() {
	hdr := rw.ResponseWriter.Header()
	clear(hdr)
	for _, s := range rw.saved[:rw.nSaved] {
		hdr[s.key] = s.values
	}
	for k, v := range rw.overflow {
		hdr[k] = v
	}
}

// release drops every reference before the writer goes back to the pool.
func (rw *replayWriter) release() {
	rw.ResponseWriter, rw.overflow, rw.body = nil, nil, nil
	rw.src, rw.tok = nil, nil
	clear(rw.saved[:rw.nSaved])
	rw.nSaved = 0
}

func (rw *replayWriter) WriteHeader(code int) {
	if rw.intercepted || rw.wrote {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.ResponseWriter.WriteHeader(code)
		return
	}
	rw.status = code
	if code == http.StatusUnauthorized && rw.dropToken() && rw.armed && (rw.body == nil || rw.body.hold()) {
		rw.intercepted = true
		return
	}
	rw.wrote = true
	rw.ResponseWriter.WriteHeader(code)
}

// dropToken takes the upstream's 401 as a revocation of the request's
// token: it drops the token if it is still served and the drop budget
// allows, and reports whether the token is no longer served (dropped now,
// by another request, or replaced), which is when a replay can help.
func (rw *replayWriter) dropToken() bool {
	rw.src.Invalidate(rw.tok)
	return rw.src.Serving() != rw.tok
}

func (rw *replayWriter) Write(b []byte) (int, error) {
	if !rw.wrote && !rw.intercepted {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.intercepted {
		return len(b), nil
	}
	return rw.ResponseWriter.Write(b)
}

// FlushError lets reverse_proxy flush streamed responses; a held-back 401
// is not flushed.
func (rw *replayWriter) FlushError() error {
	if rw.intercepted {
		return nil
	}
	switch f := rw.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush is FlushError for callers that use http.Flusher.
func (rw *replayWriter) Flush() { _ = rw.FlushError() }

// Unwrap gives http.ResponseController access to the underlying writer.
func (rw *replayWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
