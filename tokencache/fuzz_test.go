package tokencache

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Secrets used only by the fuzz target. They are distinctive so that a leak
// cannot be a coincidence, and carry the punctuation real secrets have. The
// seed corpus echoes them in error bodies, so the mutator starts from
// responses that contain them.
//
// Each holds characters whose encodings differ from the raw value (space,
// '+', '&', '=', '%', '/', '"', '\', '<', '>', non-ASCII), so that the
// checks below see form, path, JSON and base64 forms that are not the raw
// value. They start with the secrets of earlier versions of this target,
// which the committed corpus holds: those now are fragments to redact.
const (
	fuzzPassword     = `Fz-pw?Kestrel#4471 &=%2F/"\<é>`
	fuzzClientSecret = `Fz-cs/Osprey+9038= %&"\<é`
	fuzzRefreshToken = `fz-rt-Heron-5521/+= "&é`
	fuzzClientID     = "legacy-fuzz"
	// fuzzMaxErrorLen bounds the text of a token request error: it goes
	// into logs and HTTP error values, so a server must not be able to
	// make it arbitrarily long.
	fuzzMaxErrorLen = 600
)

// fuzzLeaks finds any encoded form, fragment or trailing prefix of the
// password and client secret, and of the HTTP Basic credentials, in a
// text; fuzzLeaksRefresh those of the refresh token too, for a request
// that sent it (a password grant cannot know it).
var (
	fuzzLeaks = newLeakChecker(map[string]string{
		"password":      fuzzPassword,
		"client secret": fuzzClientSecret,
	}, fuzzClientID, fuzzClientSecret)
	fuzzLeaksRefresh = newLeakChecker(map[string]string{
		"password":      fuzzPassword,
		"client secret": fuzzClientSecret,
		"refresh token": fuzzRefreshToken,
	}, fuzzClientID, fuzzClientSecret)
)

// fuzzNow is the issue time given to every fetch; a fixed wall time keeps
// lifetimes exact (no monotonic reading involved).
var fuzzNow = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// fuzzTransport answers every request with a fixed status and body, without
// a socket. It also checks that the request is a form POST carrying the
// expected grant, so the fuzz target covers the request side of Fetch too.
type fuzzTransport struct {
	status    int
	body      []byte
	grantType string
	basicAuth bool
	calls     int
	reqErr    string
}

func (rt *fuzzTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.calls++
	form, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		rt.reqErr = "reading request body: " + err.Error()
	} else if vals, err := url.ParseQuery(string(form)); err != nil {
		rt.reqErr = "request body is not a form: " + err.Error()
	} else {
		user, pass, hasBasic := req.BasicAuth()
		switch {
		case req.Method != http.MethodPost:
			rt.reqErr = "method " + req.Method
		case req.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
			rt.reqErr = "content type " + req.Header.Get("Content-Type")
		case vals.Get("grant_type") != rt.grantType:
			rt.reqErr = "grant_type " + vals.Get("grant_type")
		case rt.basicAuth && (!hasBasic || user != fuzzClientID || pass != url.QueryEscape(fuzzClientSecret) || vals.Has("client_secret")):
			rt.reqErr = "client credentials not sent with HTTP Basic (form-encoded) alone"
		case !rt.basicAuth && (hasBasic || vals.Get("client_id") != fuzzClientID || vals.Get("client_secret") != fuzzClientSecret):
			rt.reqErr = "client credentials not sent as form fields alone"
		case rt.grantType == "password" && vals.Get("password") != fuzzPassword:
			rt.reqErr = "password not sent as configured"
		case rt.grantType == "refresh_token" && (vals.Get("refresh_token") != fuzzRefreshToken || vals.Has("password")):
			rt.reqErr = "refresh grant malformed"
		}
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d fuzz", rt.status),
		StatusCode:    rt.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(rt.body)),
		ContentLength: int64(len(rt.body)),
		Request:       req,
	}, nil
}

// fuzzStatus folds any int onto a three-digit status code, the range an
// HTTP/1.1 response line can carry.
func fuzzStatus(n int) int {
	if n >= 100 && n <= 999 {
		return n
	}
	m := n % 900
	if m < 0 {
		m += 900
	}
	return 100 + m
}

// fuzzWantClass is the documented classification of a failed request that
// got a response with this status and a body within MaxResponseBytes.
func fuzzWantClass(status int) Class {
	switch {
	case status == http.StatusOK: // a 200 that is not a usable token
		return ClassTransient
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return ClassTransient
	case status >= 300 && status < 500: // redirects and the other 4xx
		return ClassRejected
	}
	return ClassTransient // 1xx and 2xx other than 200
}

// FuzzParseToken feeds arbitrary token endpoint responses (status and body)
// to parseToken directly and to Client.Fetch through an in-memory transport,
// with both the password and the refresh_token grant, and checks what comes
// out: a token fit for an Authorization header, or an *Error that is
// classified as documented and safe to log.
func FuzzParseToken(f *testing.F) {
	// A few seeds inline, so the target has something to start from even if
	// the testdata corpus is pruned; the bulk of the corpus is in
	// testdata/fuzz/FuzzParseToken.
	f.Add(200, false, []byte(`{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","expires_in":1200,"token_type":"Bearer","refresh_token":"E1B2C3","scope":"directorymanager.api groupid_identity offline_access openid profile"}`))
	f.Add(400, false, []byte(`{"error":"invalid_grant","error_description":"bad password `+fuzzPassword+` for client `+fuzzClientSecret+`"}`))
	f.Add(400, true, []byte(`{"error":"invalid_grant","error_description":"refresh token `+fuzzRefreshToken+` unknown"}`))
	// Echoes of the request in the encodings a server may use.
	form := url.Values{"grant_type": {"password"}, "username": {"svc-fuzz"}, "password": {fuzzPassword},
		"client_id": {fuzzClientID}, "client_secret": {fuzzClientSecret}, "identity_store_id": {"2"}}
	body := form.Encode()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fuzzClientID)+":"+url.QueryEscape(fuzzClientSecret)))
	for _, echo := range []string{
		body,
		lowerHex(body),
		strings.ReplaceAll(body, "+", "%20"),
		jsonString(body, true),
		url.PathEscape(fuzzPassword) + " " + url.PathEscape(fuzzClientSecret),
		jsonEscapeAll(fuzzPassword) + " " + jsonString(fuzzClientSecret, true),
		basic,
		url.QueryEscape(fuzzRefreshToken) + " " + jsonString(fuzzRefreshToken, false),
		body[:len(body)/2],
	} {
		desc, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": "could not parse: " + echo})
		f.Add(400, false, desc)
		f.Add(400, true, append(desc, ' ')) // odd length: HTTP Basic
		code, _ := json.Marshal(map[string]string{"error": echo})
		f.Add(401, false, code)
	}

	f.Fuzz(func(t *testing.T, rawStatus int, refresh bool, body []byte) {
		status := fuzzStatus(rawStatus)
		grantType, refreshToken := "password", ""
		if refresh {
			grantType, refreshToken = "refresh_token", fuzzRefreshToken
		}

		// parseToken on its own, whatever the status.
		direct, reason := parseToken(body, grantType, fuzzNow, 0)
		if direct != nil {
			if reason != "" {
				t.Fatalf("parseToken returned a token and a reason %q", reason)
			}
			fuzzCheckToken(t, direct, grantType, body)
		} else {
			if reason == "" {
				t.Fatal("parseToken returned neither a token nor a reason")
			}
			fuzzCheckText(t, "parseToken reason", reason)
		}

		// The whole Fetch path.
		// Client authentication alternates with the body length's parity,
		// so both modes are covered without a fourth fuzz argument (which
		// would make the committed corpus unreadable).
		basic := len(body)%2 == 1
		rt := &fuzzTransport{status: status, body: body, grantType: grantType, basicAuth: basic}
		hc := NewHTTPClient(nil, 5*time.Second, 0)
		hc.Transport = rt
		c := &Client{HTTP: hc}
		g := Grant{
			TokenURL: "https://gid.fuzz.invalid:4443/GroupIDSecurityService/connect/token",
			Username: "svc-fuzz", Password: fuzzPassword,
			ClientID: fuzzClientID, ClientSecret: fuzzClientSecret,
			IdentityStoreID: "2", BasicAuth: basic,
		}
		tok, err := c.Fetch(context.Background(), g, refreshToken, fuzzNow)
		if rt.calls != 1 {
			t.Fatalf("Fetch sent %d requests, want exactly 1", rt.calls)
		}
		if rt.reqErr != "" {
			t.Fatalf("Fetch sent a bad request: %s", rt.reqErr)
		}
		if (tok == nil) == (err == nil) {
			t.Fatalf("Fetch returned token %v and error %v; want exactly one", tok, err)
		}
		oversize := len(body) > MaxResponseBytes

		if tok != nil {
			if status != http.StatusOK || oversize {
				t.Fatalf("Fetch accepted a token from a %d response of %d bytes", status, len(body))
			}
			fuzzCheckToken(t, tok, grantType, body)
			if direct == nil {
				t.Fatalf("Fetch accepted a body that parseToken rejects (%s)", reason)
			}
			if tok.AccessToken != direct.AccessToken || tok.RefreshToken != direct.RefreshToken ||
				tok.TokenType != direct.TokenType || tok.Scope != direct.Scope || !tok.Expiry.Equal(direct.Expiry) {
				t.Fatal("Fetch and parseToken disagree on the token")
			}
			return
		}

		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Fetch error is %T, want *Error", err)
		}
		fuzzCheckText(t, "Fetch error", err.Error())
		// Every field, as a whole: no secret prefix at its end either.
		leaks := fuzzLeaks
		if refresh {
			leaks = fuzzLeaksRefresh
		}
		if w := leaks.leakFields(err); w != "" {
			t.Fatalf("Fetch error leaks the %s", w)
		}
		if len(e.Code) > 64 || len(e.Description) > 200 {
			t.Fatalf("error code (%d bytes) or description (%d bytes) not shortened", len(e.Code), len(e.Description))
		}
		if e.GrantType != grantType {
			t.Fatalf("error names grant %q, want %q", e.GrantType, grantType)
		}
		if e.StatusCode != status {
			t.Fatalf("error has status %d, want %d", e.StatusCode, status)
		}
		want := fuzzWantClass(status)
		if oversize {
			want = ClassTransient
		}
		if e.Class != want {
			t.Fatalf("status %d (body %d bytes) classified %v, want %v", status, len(body), e.Class, want)
		}
		if e.Permanent() != (want == ClassRejected) {
			t.Fatalf("Permanent() = %v for class %v", e.Permanent(), e.Class)
		}
		if status == http.StatusOK && !oversize {
			if direct != nil {
				t.Fatal("Fetch refused a 200 body that parseToken accepts")
			}
			if e.Reason != reason {
				t.Fatalf("Fetch reason %q, parseToken reason %q", e.Reason, reason)
			}
		}
		// The same failure seen through Source's error type keeps its class.
		nt := &NoTokenError{Last: e, RetryAt: fuzzNow.Add(time.Second)}
		if nt.Permanent() != e.Permanent() || !errors.Is(nt, e) {
			t.Fatal("NoTokenError does not carry the failure")
		}
		fuzzCheckText(t, "NoTokenError", nt.Error())
	})
}

// fuzzCheckToken asserts what every accepted token must satisfy.
func fuzzCheckToken(t *testing.T, tok *Token, grantType string, body []byte) {
	t.Helper()
	if tok.AccessToken == "" {
		t.Fatal("token with empty access_token")
	}
	if len(tok.AccessToken) > maxTokenLen {
		t.Fatalf("access_token of %d bytes accepted", len(tok.AccessToken))
	}
	for i := 0; i < len(tok.AccessToken); i++ {
		if c := tok.AccessToken[i]; c < 0x21 || c > 0x7e {
			t.Fatalf("access_token has byte %#02x at %d: header injection", c, i)
		}
	}
	for i := 0; i < len(tok.RefreshToken); i++ {
		if c := tok.RefreshToken[i]; c < 0x21 || c > 0x7e {
			t.Fatalf("refresh_token has byte %#02x at %d", c, i)
		}
	}
	if got := tok.AuthorizationHeader(); got != "Bearer "+tok.AccessToken {
		t.Fatalf("Authorization header is not %q + token (len %d)", "Bearer ", len(got))
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("token_type %q accepted", tok.TokenType)
	}
	if tok.GrantType != grantType {
		t.Fatalf("token says grant %q, want %q", tok.GrantType, grantType)
	}
	if !tok.IssuedAt.Equal(fuzzNow) {
		t.Fatalf("issued at %v, want %v", tok.IssuedAt, fuzzNow)
	}
	life := tok.Lifetime()
	if life <= 0 || life > MaxTokenLifetime {
		t.Fatalf("lifetime %v outside (0, %v]", life, MaxTokenLifetime)
	}
	if !tok.ValidAt(fuzzNow) || tok.ValidAt(tok.Expiry) {
		t.Fatal("ValidAt disagrees with the expiry")
	}

	// The lifetime is expires_in seconds, clamped to MaxTokenLifetime,
	// when expires_in is a number; else it comes from the JWT exp or is
	// the default (see tokenLifetime). The fields are the body's.
	var ref struct {
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		TokenType    string          `json:"token_type"`
		Scope        string          `json:"scope"`
		RawExpiresIn json.RawMessage `json:"expires_in"`
		ExpiresIn    float64
	}
	if err := json.Unmarshal(body, &ref); err != nil {
		// A repeated key may hold a wrong type in an earlier occurrence;
		// the last occurrence wins for both decoders, so only a body that
		// is not JSON at all is a contradiction here.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			t.Fatalf("token accepted from a body that is not JSON: %v", err)
		}
	}
	var numeric bool
	if len(ref.RawExpiresIn) > 0 && string(ref.RawExpiresIn) != "null" {
		numeric = json.Unmarshal(ref.RawExpiresIn, &ref.ExpiresIn) == nil
	}
	switch {
	case numeric != (tok.LifetimeFrom == LifetimeExpiresIn):
		t.Fatalf("lifetime from %q; expires_in numeric: %v", tok.LifetimeFrom, numeric)
	case tok.LifetimeFrom == LifetimeDefault && life != DefaultTokenLifetime:
		t.Fatalf("default lifetime %v", life)
	case numeric:
		want := MaxTokenLifetime
		if ref.ExpiresIn < MaxTokenLifetime.Seconds() {
			want = time.Duration(ref.ExpiresIn * float64(time.Second))
		}
		if ref.ExpiresIn < 1 || life != want {
			t.Fatalf("expires_in %v gave lifetime %v, want %v", ref.ExpiresIn, life, want)
		}
	} // from the JWT exp: bounded above
	if tok.AccessToken != ref.AccessToken || tok.RefreshToken != ref.RefreshToken ||
		tok.TokenType != ref.TokenType || tok.Scope != ref.Scope {
		t.Fatal("token fields differ from the body's")
	}

	// Printing a token never shows it: the output must not depend on the
	// token strings at all.
	blank := *tok
	blank.AccessToken, blank.RefreshToken, blank.header = "", "", ""
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if fmt.Sprintf(verb, tok) != fmt.Sprintf(verb, &blank) {
			t.Fatalf("%s of a token depends on the token strings", verb)
		}
	}
}

// fuzzCheckText asserts that text meant for logs and HTTP errors is short,
// printable ASCII, and free of the configured secrets.
func fuzzCheckText(t *testing.T, what, s string) {
	t.Helper()
	if len(s) >= fuzzMaxErrorLen {
		t.Fatalf("%s is %d bytes long", what, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			t.Fatalf("%s has byte %#02x at %d: %q", what, c, i, s)
		}
	}
	// The message is not printed: it would show the secret it leaks. The
	// refresh token sent is a credential too; so is every encoding of a
	// secret the request carried or a server could echo.
	if w := fuzzLeaks.leak(s, false); w != "" {
		t.Fatalf("%s contains the %s", what, w)
	}
}
