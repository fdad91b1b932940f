package groupidauth

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// TestHostileTokenEndpointResponses: whatever a broken or malicious token
// endpoint answers, the handler refuses the request (nothing is forwarded,
// so no bad header can be sent), with the documented status, a classified
// error, and no secret or token text in the error.
func TestHostileTokenEndpointResponses(t *testing.T) {
	const evil = "EVIL-TOKEN-TEXT"
	ok := func(token, typ, expires string) string {
		return fmt.Sprintf(`{"access_token":%s,"token_type":%s,"expires_in":%s}`, token, typ, expires)
	}
	cases := []struct {
		name   string
		status int
		ctype  string
		body   string
		class  tokencache.Class
	}{
		{"not JSON", 200, "text/plain", "access_token=" + evil, tokencache.ClassTransient},
		{"HTML login page", 200, "text/html", "<html><body>" + evil + "</body></html>", tokencache.ClassTransient},
		{"JSON array", 200, "application/json", `["` + evil + `"]`, tokencache.ClassTransient},
		{"missing access_token", 200, "application/json", `{"token_type":"Bearer","expires_in":1200}`, tokencache.ClassTransient},
		{"empty access_token", 200, "application/json", ok(`""`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"CRLF header injection", 200, "application/json", ok(`"`+evil+`\r\nX-Admin: yes"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"bare LF", 200, "application/json", ok(`"`+evil+`\nX"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"NUL", 200, "application/json", ok(`"`+evil+`\u0000"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"other control", 200, "application/json", ok(`"`+evil+`\u0007"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"DEL", 200, "application/json", ok(`"`+evil+`\u007f"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"non-ASCII", 200, "application/json", ok(`"`+evil+`é"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"invalid UTF-8", 200, "application/json", ok("\""+evil+"\xff\xfe\"", `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"token type mac", 200, "application/json", ok(`"`+evil+`"`, `"mac"`, "1200"), tokencache.ClassTransient},
		{"token type missing", 200, "application/json", `{"access_token":"` + evil + `","expires_in":1200}`, tokencache.ClassTransient},
		{"no expires_in, JWT exp in the past", 200, "application/json", `{"access_token":"` + evil + `.eyJleHAiOjF9.c2ln","token_type":"Bearer"}`, tokencache.ClassTransient},
		{"expires_in zero", 200, "application/json", ok(`"`+evil+`"`, `"Bearer"`, "0"), tokencache.ClassTransient},
		{"expires_in negative", 200, "application/json", ok(`"`+evil+`"`, `"Bearer"`, "-1200"), tokencache.ClassTransient},
		{"over-long token", 200, "application/json", ok(`"`+evil+strings.Repeat("A", 17<<10)+`"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
		{"over-long body", 200, "application/json", `{"access_token":"` + evil + `","pad":"` + strings.Repeat("p", 70<<10) + `"}`, tokencache.ClassTransient},
		{"error with secret echoed", 400, "application/json", `{"error":"invalid_grant","error_description":"bad password ` + groupidsim.DefaultPassword + ` for ` + groupidsim.DefaultClientSecret + `\r\n"}`, tokencache.ClassRejected},
		{"error code with controls", 400, "application/json", "{\"error\":\"invalid_grant\\r\\nX: y\"}", tokencache.ClassRejected},
		{"401 empty", 401, "", "", tokencache.ClassRejected},
		{"redirect", 302, "text/html", "<a href=https://evil.example/>" + evil + "</a>", tokencache.ClassRejected},
		{"500 with token-like body", 500, "application/json", ok(`"`+evil+`"`, `"Bearer"`, "1200"), tokencache.ClassTransient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				if tc.status == 302 {
					w.Header().Set("Location", "https://evil.example/steal")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			h := simHandler(srv.URL + "/GroupIDSecurityService/connect/token")
			// A username of its own: the process-wide token store keys
			// tokens by grant, and a port reused from an earlier test
			// would otherwise seed this handler with that test's token.
			h.Username = "hostile-" + strings.ReplaceAll(tc.name, " ", "-")
			if err := provision(t, h); err != nil {
				t.Fatal(err)
			}
			next := &recordNext{}
			r := httptest.NewRequest("GET", "/GroupIDDataService/api/IdentityStores/2/Users", nil)
			r.Header.Set("Authorization", "Bearer client-supplied")
			_, err := serve(h, r, next)
			if len(next.seen) != 0 {
				t.Fatal("request forwarded although no valid token exists")
			}
			want := http.StatusServiceUnavailable
			if tc.class == tokencache.ClassRejected {
				want = http.StatusBadGateway
			}
			if st := statusOf(err); st != want {
				t.Fatalf("status %d, want %d (%v)", st, want, err)
			}
			var te *tokencache.Error
			if !errors.As(err, &te) || te.Class != tc.class {
				t.Fatalf("error class: %v", err)
			}
			msg := err.Error()
			for _, bad := range []string{evil, groupidsim.DefaultPassword, groupidsim.DefaultClientSecret, "\r", "\n", "\x00"} {
				if strings.Contains(msg, bad) {
					t.Errorf("error text carries %q-like content", strings.TrimSpace(strings.ToValidUTF8(bad[:min(len(bad), 4)], "?")))
				}
			}
			if !bytes.Equal([]byte(msg), []byte(strings.ToValidUTF8(msg, ""))) {
				t.Error("error text is not valid UTF-8")
			}
		})
	}
}

func TestAbsurdExpiresInIsClamped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"access_token":"ok-token","token_type":"bearer","expires_in":1e15}`))
	}))
	defer srv.Close()
	h := simHandler(srv.URL + "/t")
	tok, err := firstToken(t, h)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Lifetime() != tokencache.MaxTokenLifetime {
		t.Fatalf("lifetime %v, want clamped to %v", tok.Lifetime(), tokencache.MaxTokenLifetime)
	}
}
