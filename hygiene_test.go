package groupidauth

import (
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// proxyView is a next handler that records the headers an upstream would
// get from reverse_proxy: it deletes every header the Connection header
// names, then the hop-by-hop headers, as Caddy's proxy does.
type proxyView struct{ got http.Header }

var hopByHop = []string{"Alt-Svc", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (p *proxyView) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	h := r.Header.Clone()
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, hop := range hopByHop {
		h.Del(hop)
	}
	if r.Trailer != nil {
		for k, v := range r.Trailer {
			h["Trailer:"+k] = v
		}
	}
	p.got = h
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hygieneHandler is a provisioned handler holding a token, and the header
// value it sends.
func hygieneHandler(t testing.TB) (*Handler, string) {
	t.Helper()
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	if err := provisionB(t, h); err != nil {
		t.Fatal(err)
	}
	if _, err := serve(h, httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users/warm", nil), &proxyView{}); err != nil {
		t.Fatal(err)
	}
	return h, "Bearer " + sim.IssuedTokens()[0]
}

// checkUpstream fails unless the upstream got exactly our token and no
// override header.
func checkUpstream(t *testing.T, got http.Header, bearer string) {
	t.Helper()
	if v := got["Authorization"]; len(v) != 1 || v[0] != bearer {
		t.Fatalf("upstream got %d Authorization values, not exactly the token", len(v))
	}
	for k := range got {
		if overrideSpelling(strings.TrimPrefix(k, "Trailer:")) || strings.EqualFold(strings.TrimPrefix(k, "Trailer:"), "Authorization") && strings.HasPrefix(k, "Trailer:") {
			t.Fatalf("upstream got %q", k)
		}
	}
}

// overrideSpelling tells, independently of the code under test, whether k
// is a spelling of a URL or method override header that IIS honours: any
// case, '-' or '_' between the words.
func overrideSpelling(k string) bool {
	for _, name := range []string{"x original url", "x rewrite url", "x http method override", "x http method", "x method override"} {
		words := strings.Fields(name)
		rest := strings.ToLower(k)
		ok := true
		for i, w := range words {
			if !strings.HasPrefix(rest, w) {
				ok = false
				break
			}
			rest = rest[len(w):]
			if i < len(words)-1 {
				if rest == "" || (rest[0] != '-' && rest[0] != '_') {
					ok = false
					break
				}
				rest = rest[1:]
			}
		}
		if ok && rest == "" {
			return true
		}
	}
	return false
}

func TestHostileHeadersNeverStripTheToken(t *testing.T) {
	h, bearer := hygieneHandler(t)
	cases := map[string]http.Header{
		"Connection names it":          {"Connection": {"Authorization"}},
		"lower case":                   {"Connection": {"authorization"}},
		"in a list":                    {"Connection": {"close, AUTHORIZATION, keep-alive"}},
		"padded":                       {"Connection": {" keep-alive ,\tAuthorization "}},
		"second Connection header":     {"Connection": {"keep-alive", "x, Authorization"}},
		"override headers":             {"X-Original-Url": {"/GroupIDDataService/api/Logs/Download"}, "X-Rewrite-Url": {"/x"}, "X-Http-Method-Override": {"DELETE"}, "X-Http-Method": {"DELETE"}, "X-Method-Override": {"DELETE"}},
		"underscore forms":             {"X_original_url": {"/x"}, "X_http_method_override": {"DELETE"}, "X_HTTP_METHOD": {"DELETE"}, "x_rewrite_URL": {"/x"}, "X-Method_Override": {"DELETE"}},
		"forged Authorization":         {"Authorization": {"Bearer forged", "Basic eDp5"}},
		"Connection names an override": {"Connection": {"X-Original-Url"}, "X-Original-Url": {"/x"}},
	}
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil)
			for k, v := range hdr {
				req.Header[k] = v
			}
			p := &proxyView{}
			if _, err := serve(h, req, p); err != nil {
				t.Fatal(err)
			}
			checkUpstream(t, p.got, bearer)
		})
	}
	t.Run("trailer", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/GroupIDDataService/api/IdentityStores/2/Users", strings.NewReader("{}"))
		req.Trailer = http.Header{"Authorization": {"Bearer forged"}}
		p := &proxyView{}
		if _, err := serve(h, req, p); err != nil {
			t.Fatal(err)
		}
		checkUpstream(t, p.got, bearer)
	})
}

// FuzzHeaderHygiene: whatever headers a client sends, the upstream gets
// exactly our token and no URL or method override header.
func FuzzHeaderHygiene(f *testing.F) {
	f.Add("Authorization", "X-Original-URL", "/x", "")
	f.Add("close,authorization", "X_HTTP_Method", "DELETE", "Bearer forged")
	f.Add(" AUTHORIZATION\t, x", "x-method-override", "PUT", "Basic eDp5")
	f.Add("keep-alive", "X-Rewrite-Url", "/y", "")
	h, bearer := hygieneHandler(f)
	f.Fuzz(func(t *testing.T, connection, name, value, auth string) {
		req := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil)
		req.Header["Connection"] = []string{connection}
		if validFieldName(name) {
			// The server canonicalizes valid names (and rejects others).
			req.Header.Add(name, value)
		}
		if auth != "" {
			req.Header.Add("Authorization", auth)
		}
		p := &proxyView{}
		if _, err := serve(h, req, p); err != nil {
			t.Fatal(err)
		}
		checkUpstream(t, p.got, bearer)
	})
}

// validFieldName reports whether s is an RFC 9110 token.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
