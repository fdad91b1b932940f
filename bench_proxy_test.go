package groupidauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
)

// okResponse is the upstream's answer in the benchmarks: GroupID's 200,
// made once.
var okResponse = &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}

// nopSend is the wrapped http transport's round trip in the benchmarks.
func nopSend(*http.Request) (*http.Response, error) { return okResponse, nil }

// realisticHeader is what a .NET HttpClient or a browser sends to an API
// through a front proxy: a dozen fields (Host is r.Host, not a field).
var realisticHeader = http.Header{
	"User-Agent":      {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	"Accept":          {"application/json, text/plain, */*"},
	"Accept-Encoding": {"gzip, deflate, br"},
	"Accept-Language": {"en-US,en;q=0.9,de;q=0.8"},
	"Content-Type":    {"application/json; charset=utf-8"},
	"Cookie":          {".AspNetCore.Session=CfDJ8Nq2; ARRAffinity=5f0c3b1e9a7d"},
	"Connection":      {"keep-alive"},
	"Traceparent":     {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	"X-Forwarded-For": {"10.20.30.40"},
	"X-Request-Id":    {"8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60"},
	"Cache-Control":   {"no-cache"},
	"Referer":         {"https://intranet.example.com/app/users"},
}

// minimalHeader is the request of the earlier rounds.
var minimalHeader = http.Header{
	"User-Agent": {"legacy-app/1.0"},
	"Accept":     {"application/json"},
}

// proxyModel stands in for reverse_proxy in front of an upstream that
// answers at once, with the groupid transport (groupid) or Caddy's http
// transport. Like reverse_proxy it clones the request once per client
// request (prepareRequest: the request, its URL and its header map, then
// the hop-by-hop fields go) and makes a shallow copy per attempt
// (reverseProxy's WithContext); with ops (header_up) it also rebuilds the
// header map per attempt from the clone's and applies them, as
// proxyLoopIteration does. The rest of reverse_proxy (upstream selection,
// X-Forwarded-*, logging, copying the response) is the same for every
// configuration and left out.
type proxyModel struct {
	groupid bool
	ops     *headers.HeaderOps
}

func (p proxyModel) ServeHTTP(_ http.ResponseWriter, r *http.Request) error {
	clone := new(http.Request)
	*clone = *r
	u := *r.URL
	clone.URL = &u
	clone.Header = r.Header.Clone()
	for _, h := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(clone.Header, h)
	}
	if p.ops != nil {
		reqHeader := clone.Header
		clone.Header = make(http.Header)
		for k, vv := range reqHeader { // reverse_proxy's copyHeader
			for _, v := range vv {
				clone.Header.Add(k, v)
			}
		}
		p.ops.ApplyToRequest(clone)
	}
	attempt := clone.WithContext(clone.Context())
	var err error
	if p.groupid {
		_, err = roundTrip(attempt, nopSend)
	} else {
		_, err = nopSend(attempt)
	}
	return err
}

// staticHeader is the minimal baseline: a handler that sets a fixed
// Authorization value on the client's request.
type staticHeader struct{ value string }

func (s staticHeader) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	r.Header["Authorization"] = []string{s.value}
	return next.ServeHTTP(w, r)
}

// passThrough is the handler in front of the header_up baseline: none.
type passThrough struct{}

func (passThrough) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// BenchmarkServeHTTP measures the request path with a valid token held and
// a realistic request (realisticHeader): groupid_auth, then reverse_proxy
// (proxyModel) with the groupid transport's round trip (the scope check,
// the copy of the request with the token) to an upstream that answers at
// once. Two baselines run in the same run (the ratios are what matters on
// a noisy machine), both through the same proxyModel with Caddy's plain
// transport: static_header_baseline sets the header on the client's
// request (the least a handler can do), header_up_baseline is what a user
// would otherwise write, `header_up Authorization "Bearer …"` (Caddy's
// HeaderOps, and the per-attempt header rebuild header ops cause).
// The minimal_* pair is the earlier rounds' two-header request.
func BenchmarkServeHTTP(b *testing.B) {
	h := benchHandler(b)
	bearer := "Bearer " + h.cred().src.Current().AccessToken
	run := func(b *testing.B, hdr http.Header, mw caddyhttp.MiddlewareHandler, proxy caddyhttp.Handler) {
		r := benchRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x")
		r.Header = hdr.Clone()
		w := httptest.NewRecorder()
		w.Header().Set("Server", "Caddy") // as Caddy's server does before any handler
		if err := mw.ServeHTTP(w, r, proxy); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			_ = mw.ServeHTTP(w, r, proxy)
		}
	}
	headerUp := &headers.HeaderOps{Set: http.Header{"Authorization": {bearer}}}
	if err := headerUp.Provision(caddy.Context{}); err != nil {
		b.Fatal(err)
	}
	b.Run("groupid_auth", func(b *testing.B) { run(b, realisticHeader, h, proxyModel{groupid: true}) })
	b.Run("static_header_baseline", func(b *testing.B) { run(b, realisticHeader, staticHeader{bearer}, proxyModel{}) })
	b.Run("header_up_baseline", func(b *testing.B) { run(b, realisticHeader, passThrough{}, proxyModel{ops: headerUp}) })
	b.Run("minimal_groupid_auth", func(b *testing.B) { run(b, minimalHeader, h, proxyModel{groupid: true}) })
	b.Run("minimal_static_header_baseline", func(b *testing.B) { run(b, minimalHeader, staticHeader{bearer}, proxyModel{}) })

	// The fresh_* pair gives every iteration the per-request state Caddy's
	// server makes (caddyhttp.PrepareRequest with a new replacer: the
	// request variables, the replacer and its {http.*} provider), as every
	// real request has. The runs above reuse one request's state, in which
	// the groupid_auth of an earlier iteration is found further out: they
	// leave out what the first groupid_auth of a request does once (the
	// provider of the {http.groupid_auth.*} placeholders).
	fresh := func(b *testing.B, mw caddyhttp.MiddlewareHandler, proxy caddyhttp.Handler) {
		base := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/x", nil)
		base.Header = realisticHeader.Clone()
		w := httptest.NewRecorder()
		w.Header().Set("Server", "Caddy")
		srv := new(caddyhttp.Server)
		b.ReportAllocs()
		for b.Loop() {
			r := caddyhttp.PrepareRequest(base, caddy.NewReplacer(), w, srv)
			_ = mw.ServeHTTP(w, r, proxy)
		}
	}
	b.Run("fresh_groupid_auth", func(b *testing.B) { fresh(b, h, proxyModel{groupid: true}) })
	b.Run("fresh_static_header_baseline", func(b *testing.B) { fresh(b, staticHeader{bearer}, proxyModel{}) })
}
