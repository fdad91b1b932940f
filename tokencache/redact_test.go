package tokencache

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Secrets with every character whose encodings differ from the raw value:
// space, '+', '&', '=', '%', '/', '"', '\', '<', '>' and non-ASCII.
const (
	echoPassword     = `pw Kestrel+&=%2F/"\<é>-7741`
	echoClientSecret = `cs Osprey%/+ &="\<é>-9038`
	echoRefreshToken = `rt Heron/+=&% "\<é-5521`
	echoClientID     = "legacy client&1"
)

var echoChecker = newLeakChecker(map[string]string{
	"password":      echoPassword,
	"client secret": echoClientSecret,
	"refresh token": echoRefreshToken,
}, echoClientID, echoClientSecret)

// echoReq is what the fake token endpoint received.
type echoReq struct {
	body string // the raw form body
	auth string // the Authorization header
	form url.Values
}

// echoEndpoint is a token endpoint that answers every request with reply.
func echoEndpoint(t *testing.T, reply func(echoReq, http.ResponseWriter)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request: %v", err)
		}
		form, _ := url.ParseQuery(string(b))
		reply(echoReq{body: string(b), auth: r.Header.Get("Authorization"), form: form}, w)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/connect/token"
}

// oauthError answers with an RFC 6749 error body.
func oauthError(status int, code, desc string, w http.ResponseWriter) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// TestFetchRedactsEchoedRequestInEveryEncoding drives Fetch against token
// endpoints that echo the request (body, fields, Authorization header) in
// their error answers, in the encodings servers use, and checks that no
// form of any secret survives in anything the error prints.
func TestFetchRedactsEchoedRequestInEveryEncoding(t *testing.T) {
	desc := func(f func(echoReq) string) func(echoReq, http.ResponseWriter) {
		return func(r echoReq, w http.ResponseWriter) {
			oauthError(400, "invalid_request", "could not parse: "+f(r), w)
		}
	}
	pad := strings.Repeat("x", 190)
	cases := []struct {
		name    string
		basic   bool
		refresh bool
		reply   func(echoReq, http.ResponseWriter)
		// code is the error code expected, when the reply has one and it
		// carries no secret.
		code string
	}{
		{name: "raw body", reply: desc(func(r echoReq) string { return r.body }), code: "invalid_request"},
		{name: "raw body, refresh grant", refresh: true, reply: desc(func(r echoReq) string { return r.body }), code: "invalid_request"},
		{name: "raw body, basic auth", basic: true, reply: desc(func(r echoReq) string { return r.body }), code: "invalid_request"},
		{name: "body JSON-escaped again", reply: desc(func(r echoReq) string { return jsonText(r.body) })},
		{name: "body with lower-case hex", reply: desc(func(r echoReq) string { return lowerHex(r.body) })},
		{name: "body with %20 for space", reply: desc(func(r echoReq) string { return strings.ReplaceAll(r.body, "+", "%20") })},
		{name: "fields path-escaped", reply: desc(func(r echoReq) string {
			return url.PathEscape(r.form.Get("password")) + " " + url.PathEscape(r.form.Get("client_secret"))
		})},
		{name: "fields decoded", reply: desc(func(r echoReq) string {
			return "password=" + r.form.Get("password") + " client_secret=" + r.form.Get("client_secret")
		})},
		{name: "refresh token decoded", refresh: true, reply: desc(func(r echoReq) string { return r.form.Get("refresh_token") })},
		{name: "fields as JSON", reply: desc(func(r echoReq) string {
			b, _ := json.Marshal(map[string]string{"password": r.form.Get("password"), "client_secret": r.form.Get("client_secret")})
			return string(b)
		})},
		{name: "fields JSON, every char escaped", reply: desc(func(r echoReq) string {
			return jsonEscapeAll(r.form.Get("password")) + " " + jsonEscapeAll(r.form.Get("client_secret"))
		})},
		{name: "Authorization header", basic: true, reply: desc(func(r echoReq) string { return r.auth })},
		{name: "Authorization header decoded", basic: true, reply: desc(func(r echoReq) string {
			b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.auth, "Basic "))
			return string(b)
		})},
		{name: "Authorization header form-encoded", basic: true, reply: desc(func(r echoReq) string { return url.QueryEscape(r.auth) })},
		{name: "body in error", reply: func(r echoReq, w http.ResponseWriter) { oauthError(400, r.body, "", w) }},
		{name: "decoded password in error", reply: func(r echoReq, w http.ResponseWriter) {
			oauthError(400, "bad:"+r.form.Get("password"), "", w)
		}},
		{name: "Authorization in error", basic: true, reply: func(r echoReq, w http.ResponseWriter) { oauthError(400, r.auth, "", w) }},
		{name: "control bytes spliced in", reply: desc(func(r echoReq) string {
			return strings.ReplaceAll(r.form.Get("password"), "<", "\x01") + " " + strings.ReplaceAll(r.body, "%", "\x7f")
		})},
		{name: "echo cut by the server", reply: desc(func(r echoReq) string {
			i := strings.Index(r.body, "password=")
			return r.body[:i+len("password=")+12] + "..."
		})},
		{name: "echo cut by the server at the end", reply: desc(func(r echoReq) string {
			i := strings.Index(r.body, "password=")
			return r.body[:i+len("password=")+10]
		})},
		{name: "echo cut inside an escape", reply: desc(func(r echoReq) string {
			i := strings.Index(r.body, "password=")
			j := strings.Index(r.body[i:], "%2B")
			return r.body[:i+j+2]
		})},
		{name: "secret across the length limit", reply: func(r echoReq, w http.ResponseWriter) {
			oauthError(400, "invalid_request", pad+r.form.Get("password"), w)
		}, code: "invalid_request"},
		{name: "encoded secret across the length limit", reply: func(r echoReq, w http.ResponseWriter) {
			oauthError(400, "invalid_request", pad+r.body, w)
		}, code: "invalid_request"},
		{name: "text/html 400 echo", reply: func(r echoReq, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "<html>"+r.body+" "+r.form.Get("password")+"</html>")
		}},
		{name: "text/html 500 echo", reply: func(r echoReq, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			_, _ = io.WriteString(w, "<html>"+r.body+" "+r.auth+"</html>")
		}},
		{name: "200 echo", reply: func(r echoReq, w http.ResponseWriter) {
			writeJSON(w, 200, map[string]string{"access_token": r.body, "error": r.form.Get("password")})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := Grant{
				TokenURL: echoEndpoint(t, tc.reply),
				Username: "svc", Password: echoPassword,
				ClientID: echoClientID, ClientSecret: echoClientSecret,
				IdentityStoreID: "2", BasicAuth: tc.basic,
			}
			rt := ""
			if tc.refresh {
				rt = echoRefreshToken
			}
			c := &Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)}
			_, err := c.Fetch(context.Background(), g, rt, epoch)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %T", err)
			}
			if w := echoChecker.leakFields(err); w != "" {
				t.Fatalf("secret leaked: %s (redacted)", w)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("code %q, want %q", e.Code, tc.code)
			}
			if len(e.Code) > 64 || len(e.Description) > 200 {
				t.Errorf("code (%d bytes) or description (%d bytes) too long", len(e.Code), len(e.Description))
			}
			for _, c := range err.Error() {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("error text has %U", c)
				}
			}
			// The fake endpoint must have received the secrets, else the
			// test proves nothing.
			fetchedWithSecrets(t, g, rt)
		})
	}
}

// fetchedWithSecrets checks that this client really sends the secrets in
// the encodings the echo cases assume.
func fetchedWithSecrets(t *testing.T, g Grant, refreshToken string) {
	t.Helper()
	var got echoReq
	u := echoEndpoint(t, func(r echoReq, w http.ResponseWriter) { got = r; oauthError(400, "invalid_grant", "", w) })
	g.TokenURL = u
	c := &Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)}
	_, _ = c.Fetch(context.Background(), g, refreshToken, epoch)
	if refreshToken != "" {
		if !strings.Contains(got.body, url.QueryEscape(refreshToken)) {
			t.Fatal("refresh token not sent form-encoded")
		}
	} else if !strings.Contains(got.body, url.QueryEscape(g.Password)) {
		t.Fatal("password not sent form-encoded")
	}
	if g.BasicAuth {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(g.ClientID)+":"+url.QueryEscape(g.ClientSecret)))
		if got.auth != want {
			t.Fatal("Authorization header is not the form-encoded client ID and secret in base64")
		}
	} else if !strings.Contains(got.body, url.QueryEscape(g.ClientSecret)) {
		t.Fatal("client secret not sent form-encoded")
	}
}

// TestSourceRedactsHeldTokensFromFailures: a failure that quotes the access
// or refresh token the Source holds does not put it into the error.
func TestSourceRedactsHeldTokensFromFailures(t *testing.T) {
	const access, refresh = "at-Held-Access-0451", "rt-Held-Refresh-9917"
	d := newIdP(t)
	d.setReply(func(n int, _ url.Values, w http.ResponseWriter) {
		if n == 1 {
			writeJSON(w, 200, map[string]any{"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 1200})
			return
		}
		oauthError(400, "invalid_grant", "token "+access+" / "+url.QueryEscape(access)+" and "+refresh+" are stale", w)
	})
	h := newHarness(t, d, nil)
	h.src.Start()
	if ev := h.next(t); ev.Kind != EventToken {
		t.Fatalf("first event %v", ev.Kind)
	}
	h.advanceToDue(t)
	for {
		ev := h.next(t)
		if ev.Kind != EventFailure {
			continue
		}
		checker := newLeakChecker(map[string]string{"access token": access, "refresh token": refresh}, "", "")
		if w := checker.leakFields(ev.Err); w != "" {
			t.Fatalf("held token leaked: %s (redacted)", w)
		}
		if !strings.Contains(ev.Err.Description, redactedMark) {
			t.Fatal("description does not say what was redacted")
		}
		return
	}
}

// TestPanicValueIsNotQuoted: a panic in Fetch becomes a transient error
// that names the panic's type only.
func TestPanicValueIsNotQuoted(t *testing.T) {
	const secret = "panic-Secret-3312"
	hc := &http.Client{Transport: panicTransport(secret)}
	_, e := fetchSafely(context.Background(), &Client{HTTP: hc}, Grant{TokenURL: "https://gid.invalid/token"}, "", epoch)
	if e == nil || e.Class != ClassTransient {
		t.Fatalf("want a transient error, got %v", e != nil)
	}
	if strings.Contains(e.Error(), "Secret") {
		t.Fatal("error quotes the panic value (redacted)")
	}
	if !strings.HasPrefix(e.Reason, "internal error") || !strings.Contains(e.Reason, "string") {
		t.Fatalf("reason %q does not name an internal error and the panic's type", e.Reason)
	}
}

type panicTransport string

func (p panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic(string(p)) }

// TestTransportErrorTextIsScrubbed: the text of a transport error that
// quotes a secret is scrubbed; the error stays reachable.
func TestTransportErrorTextIsScrubbed(t *testing.T) {
	inner := errors.New("proxy said: " + url.QueryEscape(echoPassword) + "\r\n")
	hc := &http.Client{Transport: errTransport{inner}}
	g := Grant{TokenURL: "https://gid.invalid/token", Password: echoPassword, ClientID: echoClientID, ClientSecret: echoClientSecret}
	_, err := (&Client{HTTP: hc}).Fetch(context.Background(), g, "", epoch)
	if w := echoChecker.leakFields(err); w != "" {
		t.Fatalf("secret leaked: %s (redacted)", w)
	}
	if !errors.Is(err, inner) {
		t.Fatal("transport error no longer reachable with errors.Is")
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatal("transport error text not sanitised")
	}
}

type errTransport struct{ err error }

func (e errTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, e.err }

func TestSanitize(t *testing.T) {
	const sec = `Kestrel+&=%2F/"\<é>-7741`
	const splice = "Fz-pw?Kes"
	cases := []struct {
		name, in string
		max      int
		want     string
		secret   string // sec when empty
	}{
		{name: "nothing to do", in: "invalid_username_or_password", max: 200, want: "invalid_username_or_password"},
		{name: "raw", in: "a " + sec + " b", max: 200, want: "a (redacted) b"},
		{name: "form-encoded", in: "p=" + url.QueryEscape(sec) + "&x=1", max: 200, want: "p=(redacted)&x=1"},
		{name: "lower hex", in: "p=" + lowerHex(url.QueryEscape(sec)) + "&x=1", max: 200, want: "p=(redacted)&x=1"},
		{name: "path-escaped", in: "p=" + url.PathEscape(sec) + "&x=1", max: 200, want: "p=(redacted)&x=1"},
		{name: "JSON", in: `{"p":"` + jsonText(sec) + `"}`, max: 200, want: `{"p":"(redacted)"}`},
		{name: "JSON, upper hex, every char escaped", in: `{"p":"` + jsonEscapeAll(sec) + `"}`, max: 200, want: `{"p":"(redacted)"}`},
		{name: "prefix at the end", in: "p=" + sec[:6], max: 200, want: "p=(redacted)"},
		{name: "encoded prefix at the end", in: "p=" + url.QueryEscape(sec)[:10], max: 200, want: "p=(redacted)"},
		{name: "prefix cut inside an escape", in: "p=" + url.QueryEscape(sec)[:9], max: 200, want: "p=(redacted)"},
		{name: "short prefix at the end is kept", in: "p=Kes", max: 200, want: "p=Kes"},
		{name: "fragment", in: "p=" + sec[3:12] + "...", max: 200, want: "p=(redacted)..."},
		{name: "cut after redaction", in: strings.Repeat("y", 195) + sec, max: 200, want: strings.Repeat("y", 195)},
		{name: "cut never splits a mark", in: strings.Repeat("y", 185) + sec + "zzzzzzzzzz", max: 200, want: strings.Repeat("y", 185) + "(redacted)zzzzz"},
		{name: "cut leaves a prefix", in: strings.Repeat("y", 190) + sec[:4] + "@" + sec[4:], max: 194, want: strings.Repeat("y", 188)},
		{name: "escape's tail read as the secret's", in: "%0" + lowerHex(url.QueryEscape(sec[12:])), max: 200, want: "%0(redacted)"},
		{name: "JSON escape's tail starts another", in: `\\u004Bestrel\u002B`, max: 200, want: `\(redacted)`},
		{name: "escape's tail read through two decodings", in: "%0" + url.PathEscape(jsonText(sec[11:])), max: 200, want: "%0(redacted)"},
		{name: "spliced control byte", in: "x Fz-pw\x01Kes y", max: 200, want: "x (redacted) y", secret: splice},
		{name: "control byte inside", in: strings.Replace(sec, "<", "\x00", 1), max: 200, want: "(redacted)?(redacted)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := tc.secret
			if secret == "" {
				secret = sec
			}
			got := sanitize(tc.in, tc.max, []string{secret})
			if got != tc.want {
				if w := newLeakChecker(map[string]string{"secret": secret}, "", "").leak(got, true); w != "" {
					t.Fatalf("got a text with the %s (redacted), want %q", w, tc.want)
				}
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzSanitize feeds arbitrary text to sanitize with the fuzz secrets and
// checks the result: printable ASCII, at most max bytes, and no form of any
// secret (nor a fragment, nor a prefix at the end), HTML and base64 forms
// included. With a secret shorter than minSecretLen alone, the result is
// never that secret (in any of its forms) and nothing else.
func FuzzSanitize(f *testing.F) {
	secrets := requestSecrets(Grant{Password: fuzzPassword, ClientID: fuzzClientID, ClientSecret: fuzzClientSecret}, fuzzRefreshToken)
	for _, sec := range []string{fuzzPassword, fuzzClientSecret, fuzzRefreshToken} {
		for _, form := range secretForms(sec) {
			f.Add("x="+form+"&y=1", uint8(200))
			f.Add("could not parse: "+form[:len(form)*2/3], uint8(64))
		}
		for _, form := range htmlForms(sec) {
			f.Add("<p>"+form+"</p>", uint8(200))
			f.Add("e="+form[:len(form)/2], uint8(90))
		}
		for _, form := range base64TestForms(sec) {
			f.Add("b="+form+";", uint8(120))
		}
	}
	for _, form := range basicForms(fuzzClientID, fuzzClientSecret) {
		f.Add("Authorization: Basic "+form, uint8(40))
	}
	f.Add("Fz-pw\x01Kestrel#4471 \\u0026=%2f", uint8(30))
	f.Add(" q%26 ", uint8(20))
	shortForms := htmlForms(fuzzShortSecret)
	for kind, form := range secretForms(fuzzShortSecret) {
		shortForms[kind] = form
	}
	f.Fuzz(func(t *testing.T, s string, max uint8) {
		out := sanitize(s, int(max), secrets)
		if len(out) > int(max) {
			t.Fatalf("%d bytes out, max %d", len(out), max)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("byte %#02x at %d", c, i)
			}
		}
		if w := fuzzLeaksRefresh.leak(out, true); w != "" {
			t.Fatalf("sanitized text contains the %s", w)
		}
		if w := fuzzFormsLeaks.leak(out, true); w != "" {
			t.Fatalf("sanitized text contains the %s", w)
		}
		out = strings.TrimSpace(sanitize(s, int(max), []string{fuzzShortSecret}))
		for kind, form := range shortForms {
			if out == form {
				t.Fatalf("sanitized text is the short secret (%s)", kind)
			}
		}
	})
}
