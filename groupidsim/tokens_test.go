package groupidsim

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var opaqueToken = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func TestPasswordGrantSuccessShape(t *testing.T) {
	h := newHarness(t, testCfg())
	r := h.token(passwordForm())
	wantStatus(t, r, http.StatusOK)
	hasNoStore(t, r)
	contentTypeIs(t, r, "application/json")
	m := r.json(t)
	at, _ := m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if !opaqueToken.MatchString(at) || !opaqueToken.MatchString(rt) || at == rt {
		t.Fatalf("tokens not 43-char base64url and distinct: %q %q", at, rt)
	}
	if m["expires_in"] != float64(1200) || m["token_type"] != "Bearer" {
		t.Errorf("expires_in/token_type = %v/%v", m["expires_in"], m["token_type"])
	}
	if want := "directorymanager.api groupid_identity offline_access openid profile"; m["scope"] != want {
		t.Errorf("scope = %v, want %q", m["scope"], want)
	}
	if len(m) != 5 {
		t.Errorf("unexpected fields: %v", m)
	}
	if got := h.sim.IssuedTokens(); !slices.Equal(got, []string{at}) {
		t.Errorf("IssuedTokens = %v", got)
	}
	if got := h.sim.IssuedRefreshTokens(); !slices.Equal(got, []string{rt}) {
		t.Errorf("IssuedRefreshTokens = %v", got)
	}
	c := h.sim.Counters()
	if c.TokenRequests["password/ok"] != 1 || c.Tokens("password") != 1 || c.TokensTotal() != 1 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
}

func TestTokenTypeAndSkew(t *testing.T) {
	cfg := testCfg()
	cfg.TokenType = "bearer"
	cfg.ExpiresInSkew = 1
	cfg.TokenLifetime = 600 * time.Second
	h := newHarness(t, cfg)
	m := h.token(passwordForm()).json(t)
	if m["expires_in"] != float64(599) || m["token_type"] != "bearer" {
		t.Fatalf("got expires_in %v token_type %v", m["expires_in"], m["token_type"])
	}
}

func TestTokenErrors(t *testing.T) {
	with := func(change func(url.Values)) url.Values {
		f := passwordForm()
		change(f)
		return f
	}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	noClient := func(f url.Values) { f.Del("client_id"); f.Del("client_secret") }
	cases := []struct {
		name        string
		method      string
		contentType string
		form        url.Values
		auth        string
		status      int
		code        string
		counter     string
		desc        string
	}{
		{name: "json content type", contentType: "application/json", form: passwordForm(),
			status: 400, code: "invalid_request", counter: "password/invalid_request"},
		{name: "unknown client", form: with(func(f url.Values) { f.Set("client_id", "nobody") }),
			status: 400, code: "invalid_client", counter: "password/invalid_client"},
		{name: "wrong secret", form: with(func(f url.Values) { f.Set("client_secret", "nope") }),
			status: 400, code: "invalid_client", counter: "password/invalid_client"},
		{name: "no client at all", form: with(noClient),
			status: 400, code: "invalid_client", counter: "password/invalid_client"},
		{name: "basic wrong secret", form: with(noClient), auth: basic("client-a", "nope"),
			status: 400, code: "invalid_client", counter: "password/invalid_client"},
		{name: "basic unknown client", form: with(noClient), auth: basic("nobody", "secret-a"),
			status: 400, code: "invalid_client", counter: "password/invalid_client"},
		{name: "missing grant_type", form: with(func(f url.Values) { f.Del("grant_type") }),
			status: 400, code: "invalid_request", counter: "other/invalid_request"},
		{name: "capitalised Password", form: with(func(f url.Values) { f.Set("grant_type", "Password") }),
			status: 400, code: "unsupported_grant_type", counter: "other/unsupported_grant_type"},
		{name: "client_credentials", form: with(func(f url.Values) { f.Set("grant_type", "client_credentials") }),
			status: 400, code: "unsupported_grant_type", counter: "other/unsupported_grant_type"},
		{name: "missing username", form: with(func(f url.Values) { f.Del("username") }),
			status: 400, code: "invalid_request", counter: "password/invalid_request"},
		{name: "missing password", form: with(func(f url.Values) { f.Del("password") }),
			status: 400, code: "invalid_request", counter: "password/invalid_request"},
		{name: "missing identity_store_id", form: with(func(f url.Values) { f.Del("identity_store_id") }),
			status: 400, code: "invalid_request", counter: "password/invalid_request"},
		{name: "unknown store", form: with(func(f url.Values) { f.Set("identity_store_id", "7") }),
			status: 400, code: "invalid_grant", counter: "password/invalid_grant"},
		{name: "wrong password", form: with(func(f url.Values) { f.Set("password", "pw-2") }),
			status: 400, code: "invalid_grant", counter: "password/invalid_grant", desc: "invalid_username_or_password"},
		{name: "wrong username", form: with(func(f url.Values) { f.Set("username", "mallory") }),
			status: 400, code: "invalid_grant", counter: "password/invalid_grant", desc: "invalid_username_or_password"},
		{name: "password value case matters", form: with(func(f url.Values) { f.Set("password", "PW-1") }),
			status: 400, code: "invalid_grant", counter: "password/invalid_grant"},
		{name: "bad scope", form: with(func(f url.Values) { f.Set("scope", "openid admin.everything") }),
			status: 400, code: "invalid_scope", counter: "password/invalid_scope"},
		{name: "refresh without token", form: refreshForm(""),
			status: 400, code: "invalid_request", counter: "refresh_token/invalid_request"},
		{name: "refresh unknown token", form: refreshForm("bogus"),
			status: 400, code: "invalid_grant", counter: "refresh_token/invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testCfg())
			ct := tc.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			headers := []string{"Content-Type", ct}
			if tc.auth != "" {
				headers = append(headers, "Authorization", tc.auth)
			}
			r := h.do(http.MethodPost, tokenPath, []byte(tc.form.Encode()), headers...)
			wantStatus(t, r, tc.status)
			hasNoStore(t, r)
			m := r.json(t)
			if m["error"] != tc.code {
				t.Errorf("error = %v, want %s", m["error"], tc.code)
			}
			if d, ok := m["error_description"].(string); !ok || d == "" || (tc.desc != "" && d != tc.desc) {
				t.Errorf("error_description = %v, want %q", m["error_description"], tc.desc)
			}
			if c := h.sim.Counters(); c.TokenRequests[tc.counter] != 1 || c.TokensTotal() != 1 {
				t.Errorf("counters = %v, want %s", c.TokenRequests, tc.counter)
			}
			if len(h.sim.IssuedTokens()) != 0 {
				t.Error("a token was issued")
			}
		})
	}
}

func TestTokenEndpointMethodNotAllowed(t *testing.T) {
	h := newHarness(t, testCfg())
	r := h.do(http.MethodGet, tokenPath+"?"+passwordForm().Encode(), nil)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	hasNoStore(t, r)
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	if h.sim.Counters().TokenRequests["other/method_not_allowed"] != 1 {
		t.Errorf("counters = %v", h.sim.Counters().TokenRequests)
	}
}

func TestConfigurableErrorStatusAndCode(t *testing.T) {
	cfg := testCfg()
	cfg.WrongPasswordStatus = http.StatusUnauthorized
	cfg.RefreshErrorCode = "invalid_request"
	h := newHarness(t, cfg)
	f := passwordForm()
	f.Set("password", "wrong")
	r := h.token(f)
	wantStatus(t, r, http.StatusUnauthorized)
	hasNoStore(t, r)
	if m := r.json(t); m["error"] != "invalid_grant" || m["error_description"] != "invalid_username_or_password" {
		t.Errorf("body = %v", m)
	}
	r = h.token(refreshForm("unknown"))
	wantStatus(t, r, http.StatusBadRequest)
	if m := r.json(t); m["error"] != "invalid_request" {
		t.Errorf("refresh error = %v", m["error"])
	}
}

func TestFormFieldNamesCaseInsensitive(t *testing.T) {
	h := newHarness(t, testCfg())
	body := "Grant_Type=password&UserName=svc-groupid&PASSWORD=pw-1&client_Id=client-a&Client_Secret=secret-a&Identity_Store_ID=2"
	r := h.do(http.MethodPost, tokenPath, []byte(body), "Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	wantStatus(t, r, http.StatusOK)
	// Names fold, values do not: the client ID is compared exactly.
	body = strings.Replace(body, "client_Id=client-a", "client_Id=CLIENT-A", 1)
	r = h.do(http.MethodPost, tokenPath, []byte(body), "Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, r, http.StatusBadRequest)
	if r.json(t)["error"] != "invalid_client" {
		t.Errorf("body = %s", r.body)
	}
}

func TestBasicClientAuth(t *testing.T) {
	cfg := testCfg()
	cfg.ClientSecret = "s3:cr/t+x"
	h := newHarness(t, cfg)
	f := passwordForm()
	f.Del("client_id")
	f.Del("client_secret")
	creds := url.QueryEscape("client-a") + ":" + url.QueryEscape(cfg.ClientSecret)
	r := h.token(f, "Authorization", "basic "+base64.StdEncoding.EncodeToString([]byte(creds)))
	wantStatus(t, r, http.StatusOK)
	// Credentials are form-decoded (RFC 6749 section 2.3.1), so a raw "+"
	// in the secret reads as a space and fails.
	r = h.token(f, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("client-a:"+cfg.ClientSecret)))
	wantStatus(t, r, http.StatusBadRequest)
	if r.json(t)["error"] != "invalid_client" {
		t.Errorf("body = %s", r.body)
	}
}

func TestScopeSelection(t *testing.T) {
	h := newHarness(t, testCfg())
	f := passwordForm()
	f.Set("scope", "openid directorymanager.api openid")
	r := h.token(f)
	wantStatus(t, r, http.StatusOK)
	m := r.json(t)
	if m["scope"] != "openid directorymanager.api" {
		t.Errorf("scope = %v", m["scope"])
	}
	if _, ok := m["refresh_token"]; ok {
		t.Error("refresh_token issued without offline_access")
	}
	if len(h.sim.IssuedRefreshTokens()) != 0 {
		t.Error("refresh token recorded")
	}

	cfg := testCfg()
	cfg.AllowedScopes = []string{"groupid.api", "offline_access"}
	h2 := newHarness(t, cfg)
	m = h2.token(passwordForm()).json(t)
	if m["scope"] != "groupid.api offline_access" || m["refresh_token"] == nil {
		t.Errorf("custom scopes: %v", m)
	}
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t, testCfg())
	f := passwordForm()
	f.Set("scope", "directorymanager.api offline_access")
	first := h.token(f).json(t)
	at1, rt1 := first["access_token"].(string), first["refresh_token"].(string)

	r := h.token(refreshForm(rt1))
	wantStatus(t, r, http.StatusOK)
	hasNoStore(t, r)
	second := r.json(t)
	at2, rt2 := second["access_token"].(string), second["refresh_token"].(string)
	if at2 == at1 || rt2 == rt1 || !opaqueToken.MatchString(rt2) {
		t.Fatalf("not rotated: %v", second)
	}
	if second["scope"] != "directorymanager.api offline_access" {
		t.Errorf("refreshed scope = %v", second["scope"])
	}

	r = h.token(refreshForm(rt1))
	wantStatus(t, r, http.StatusBadRequest)
	if r.json(t)["error"] != "invalid_grant" {
		t.Errorf("reuse error = %s", r.body)
	}
	if n := h.sim.UsedRefreshTokenReuse(); n != 1 {
		t.Errorf("UsedRefreshTokenReuse = %d", n)
	}
	// Without ReuseRevokesFamily the successors stay valid.
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at1, ""), 200)
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at2, ""), 200)
	third := h.token(refreshForm(rt2))
	wantStatus(t, third, http.StatusOK)

	c := h.sim.Counters()
	if c.TokenRequests["refresh_token/ok"] != 2 || c.TokenRequests["refresh_token/invalid_grant"] != 1 || c.Tokens("refresh_token") != 3 {
		t.Errorf("counters = %v", c.TokenRequests)
	}
	if got := len(h.sim.IssuedTokens()); got != 3 {
		t.Errorf("IssuedTokens has %d entries", got)
	}
}

func TestReuseRevokesFamily(t *testing.T) {
	cfg := testCfg()
	cfg.ReuseRevokesFamily = true
	h := newHarness(t, cfg)
	_, rt1 := h.login()
	otherAT, otherRT := h.login() // a second, unrelated family
	second := h.token(refreshForm(rt1)).json(t)
	at2, rt2 := second["access_token"].(string), second["refresh_token"].(string)

	wantStatus(t, h.token(refreshForm(rt1)), http.StatusBadRequest)
	if h.sim.UsedRefreshTokenReuse() != 1 {
		t.Errorf("reuse = %d", h.sim.UsedRefreshTokenReuse())
	}
	r := h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at2, "")
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, "The token is invalid") {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	wantStatus(t, h.token(refreshForm(rt2)), http.StatusBadRequest)

	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, otherAT, ""), http.StatusOK)
	wantStatus(t, h.token(refreshForm(otherRT)), http.StatusOK)
}

func TestExpiryFollowsClock(t *testing.T) {
	clock := newFakeClock()
	cfg := testCfg()
	cfg.Now = clock.Now
	h := newHarness(t, cfg)
	at, rt := h.login()
	path := dataAPI + "/Users/" + SeedUserID

	clock.Advance(1199 * time.Second)
	wantStatus(t, h.api(http.MethodGet, path, at, ""), http.StatusOK)
	clock.Advance(time.Second)
	r := h.api(http.MethodGet, path, at, "")
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token", error_description="The token expired"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	if len(r.body) != 0 {
		t.Errorf("401 body = %q", r.body)
	}

	// The refresh family has an absolute 30-day lifetime from the password
	// grant; rotation does not extend it.
	clock.Advance(29 * 24 * time.Hour)
	m := h.token(refreshForm(rt)).json(t)
	rt2, _ := m["refresh_token"].(string)
	if rt2 == "" {
		t.Fatalf("refresh on day 29 failed: %v", m)
	}
	clock.Advance(24 * time.Hour)
	r = h.token(refreshForm(rt2))
	wantStatus(t, r, http.StatusBadRequest)
	if r.json(t)["error"] != "invalid_grant" {
		t.Errorf("expired refresh: %s", r.body)
	}
	if h.sim.UsedRefreshTokenReuse() != 0 {
		t.Error("expiry counted as reuse")
	}
}

func TestRevokeAndInvalidate(t *testing.T) {
	h := newHarness(t, testCfg())
	path := dataAPI + "/Users/" + SeedUserID

	at, rt := h.login()
	h.sim.InvalidateRefreshTokens()
	wantStatus(t, h.api(http.MethodGet, path, at, ""), http.StatusOK)
	wantStatus(t, h.token(refreshForm(rt)), http.StatusBadRequest)

	at, rt = h.login()
	h.sim.RevokeAllTokens()
	r := h.api(http.MethodGet, path, at, "")
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token", error_description="The token is invalid"` {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	wantStatus(t, h.token(refreshForm(rt)), http.StatusBadRequest)

	at, _ = h.login()
	wantStatus(t, h.api(http.MethodGet, path, at, ""), http.StatusOK)
}

func TestSetPassword(t *testing.T) {
	h := newHarness(t, testCfg())
	at, rt := h.login()
	h.sim.SetPassword("pw-2")
	wantStatus(t, h.token(passwordForm()), http.StatusBadRequest)
	f := passwordForm()
	f.Set("password", "pw-2")
	wantStatus(t, h.token(f), http.StatusOK)
	// Existing tokens survive a password change.
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID, at, ""), http.StatusOK)
	wantStatus(t, h.token(refreshForm(rt)), http.StatusOK)
}

func TestDefaultsApplied(t *testing.T) {
	s := New(Config{})
	if s.TokenURL("https://h:4443/") != "https://h:4443/GroupIDSecurityService/connect/token" {
		t.Errorf("TokenURL = %s", s.TokenURL("https://h:4443/"))
	}
	cfg := Config{SecurityPrefix: "Sec/", DataPrefix: "/Data"}
	if got := New(cfg).TokenURL("http://x"); got != "http://x/Sec/connect/token" {
		t.Errorf("TokenURL = %s", got)
	}
}
