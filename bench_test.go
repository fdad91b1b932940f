package groupidauth

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// benchRequest is a request as Caddy's server hands it to the handlers: with
// the replacer and the request variables in its context.
func benchRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	ctx = context.WithValue(ctx, caddyhttp.ServerCtxKey, new(caddyhttp.Server)) // as Caddy's server does
	return r.WithContext(ctx)
}

func benchHandler(b *testing.B) *Handler {
	sim := groupidsim.New(groupidsim.Config{})
	srv := httptest.NewServer(sim.Handler())
	b.Cleanup(srv.Close)
	h := simHandler(sim.TokenURL(srv.URL))
	h.app = &App{logs: zap.NewNop()}
	if err := provisionB(b, h); err != nil {
		b.Fatal(err)
	}
	if _, err := h.cred().src.Token(b.Context()); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkServeHTTPParallel is the same under b.RunParallel (-cpu 1,2).
func BenchmarkServeHTTPParallel(b *testing.B) {
	h := benchHandler(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
		w := httptest.NewRecorder()
		w.Header().Set("Server", "Caddy")
		for pb.Next() {
			_ = h.ServeHTTP(w, r, proxyModel{groupid: true})
		}
	})
}

// drainProxy stands in for reverse_proxy with a JSON POST: its upstream
// reads the whole request body into a 4 KiB buffer, as the transport does
// when it sends the body through its bufio.Writer. With groupid set the
// round trip is the groupid transport's, else the plain one.
type drainProxy struct {
	groupid bool
	buf     [4 << 10]byte
}

func (d *drainProxy) send(r *http.Request) (*http.Response, error) {
	for {
		_, err := r.Body.Read(d.buf[:])
		if err == io.EOF {
			return okResponse, r.Body.Close()
		}
		if err != nil {
			return nil, err
		}
	}
}

func (d *drainProxy) ServeHTTP(_ http.ResponseWriter, r *http.Request) error {
	var err error
	if d.groupid {
		_, err = roundTrip(r, d.send)
	} else {
		_, err = d.send(r)
	}
	return err
}

// rewindBody is a request body the benchmark rewinds between iterations
// without allocating; Close does nothing, like a server body after EOF.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkServeHTTPPost16K measures a 16 KiB JSON POST whose body the next
// handler reads in full, against the static-header baseline in the same
// run: the body's way through the 401-replay recording is the difference.
func BenchmarkServeHTTPPost16K(b *testing.B) {
	h := benchHandler(b)
	payload := []byte(`{"items":[` + strings.Repeat(`"abcdefghijklmnopqrstuvwxyz0123",`, 16<<10/33) + `"z"]}`)
	payload = append(payload, bytes.Repeat([]byte(" "), 16<<10-len(payload))...)
	run := func(b *testing.B, mw caddyhttp.MiddlewareHandler, next *drainProxy) {
		body := new(rewindBody)
		r := benchRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users")
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = int64(len(payload))
		w := httptest.NewRecorder()
		w.Header().Set("Server", "Caddy")
		serveOnce := func() error {
			body.Reset(payload)
			r.Body = body
			return mw.ServeHTTP(w, r, next)
		}
		if err := serveOnce(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			_ = serveOnce()
		}
	}
	b.Run("groupid_auth", func(b *testing.B) { run(b, h, &drainProxy{groupid: true}) })
	b.Run("static_header_baseline", func(b *testing.B) {
		run(b, staticHeader{"Bearer " + h.cred().src.Current().AccessToken}, new(drainProxy))
	})
}
