package shapes

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// front stands between Caddy and the simulator in the handle_errors
// shapes: an HTTPS server (certificate from the simulator's CA, HTTP/1.1
// only, so a hijack really closes the TCP connection) that forwards every
// request to the simulator, except one whose query has drop=1: that one
// it reads and then drops without an answer, as a failing GroupID would.
// It records the Authorization of every request it gets.
type front struct {
	url  string
	mu   sync.Mutex
	seen []frontRequest
}

type frontRequest struct {
	auth    []string
	dropped bool
}

func (r *rig) startFront(t *testing.T) *front {
	t.Helper()
	cert, err := r.run.CA.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(r.run.URL)
	if err != nil {
		t.Fatal(err)
	}
	quiet := log.New(io.Discard, "", 0)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport: r.run.Client().Transport,
		ErrorLog:  quiet,
	}
	f := &front{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		drop := req.URL.Query().Get("drop") == "1"
		f.mu.Lock()
		f.seen = append(f.seen, frontRequest{append([]string(nil), req.Header.Values("Authorization")...), drop})
		f.mu.Unlock()
		if !drop {
			rp.ServeHTTP(w, req)
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	srv.Config.ErrorLog = quiet
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	r.front = f
	r.vars["Front"] = f.url
	return f
}

func (f *front) requests() []frontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frontRequest(nil), f.seen...)
}

// TestShape09HandleErrors: site-level groupid_auth and reverse_proxy
// (transport groupid) to GroupID, with handle_errors answering 599 "err"
// (09a) or proxying to an error-pages backend (09b). The standard
// scenarios pass through untouched by the error route. A path outside the
// User and Group APIs is refused by the transport (403) and answered by
// the error route; a request GroupID drops after reading it (the token
// had reached GroupID's side) is answered by the error route. In every
// case the error route, its backend and the client never get a token, and
// GroupID's side gets exactly the one bearer token.
func TestShape09HandleErrors(t *testing.T) {
	for _, v := range []struct {
		name, route string
		status      int
		contains    string
		viaBackend  bool // the error route proxies to the error pages backend
	}{
		{"09a handle_errors respond 599", `respond "err" 599`, 599, "err", false},
		{"09b handle_errors reverse_proxy to error pages", `reverse_proxy {{.ErrorPages}}`, http.StatusBadGateway, "error page", true},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := newRig(t)
			f := r.startFront(t)
			s := &shape{
				caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	reverse_proxy {{.Front}} {
		{{template "transport" .}}
	}
	handle_errors {
		` + v.route + `
	}
}`,
				side: []sideCall{{path: apiBase + "/Other", status: v.status, contains: v.contains}},
			}
			load(t, r.render(t, s.caddyfile))
			r.waitForToken()
			r.runAll(t, s, "Port")
			t.Run("GroupID drops the connection", func(t *testing.T) {
				frontBefore, simBefore := len(f.requests()), len(r.sim.Requests())
				errBefore := len(r.errorPages.requests())
				got := r.do(t, http.MethodGet, r.site("Port")+usersPath+"/x?drop=1", nil, http.Header{"Authorization": {forgedAuth}})
				if got.status != v.status || !strings.Contains(string(got.body), v.contains) {
					t.Errorf("client got %d %q, want the error route's %d %q", got.status, r.redact(string(got.body)), v.status, v.contains)
				}
				r.assertNoTokenInReply(t, "the client", got)
				dropped := f.requests()[frontBefore:]
				if len(dropped) == 0 {
					t.Fatal("the request never reached GroupID's front")
				}
				issued := r.sim.IssuedTokens()
				for i, q := range dropped {
					if !q.dropped || len(q.auth) != 1 || !r.isBearerOfIssued(q.auth[0], issued) {
						t.Errorf("front request %d: dropped=%v, %d Authorization values; want the dropped request with exactly the bearer token", i, q.dropped, len(q.auth))
					}
				}
				if n := len(r.sim.Requests()) - simBefore; n != 0 {
					t.Errorf("GroupID got %d requests; the front dropped the only one", n)
				}
				if v.viaBackend {
					if n := len(r.errorPages.requests()) - errBefore; n != 1 {
						t.Errorf("the error pages backend got %d requests, want 1", n)
					}
				}
				r.assertNoTokenAtBackends(t)
			})
		})
	}
}

// isBearerOfIssued reports whether v is "Bearer <a token in issued>".
func (r *rig) isBearerOfIssued(v string, issued []string) bool {
	tok, ok := strings.CutPrefix(v, "Bearer ")
	if !ok {
		return false
	}
	for _, i := range issued {
		if i == tok {
			return true
		}
	}
	return false
}
