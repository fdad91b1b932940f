package tokencache

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseToken(t *testing.T) {
	cases := []struct {
		name string
		body string
		life time.Duration // 0 means: must be rejected
	}{
		{"groupid sample", `{"access_token":"abc.def-ghi_","refresh_token":"r","token_type":"Bearer","expires_in":1200,"scope":"openid"}`, 1200 * time.Second},
		{"lowercase bearer", `{"access_token":"a","token_type":"bearer","expires_in":1199}`, 1199 * time.Second},
		{"huge expires_in clamped", `{"access_token":"a","token_type":"Bearer","expires_in":99999999999}`, MaxTokenLifetime},
		{"not json", `<html>hi</html>`, 0},
		{"empty object", `{}`, 0},
		{"empty access_token", `{"access_token":"","token_type":"Bearer","expires_in":5}`, 0},
		{"CRLF in token", `{"access_token":"a\r\nX-Evil: 1","token_type":"Bearer","expires_in":5}`, 0},
		{"NUL in token", `{"access_token":"a\u0000b","token_type":"Bearer","expires_in":5}`, 0},
		{"space in token", `{"access_token":"a b","token_type":"Bearer","expires_in":5}`, 0},
		{"mac token type", `{"access_token":"a","token_type":"mac","expires_in":5}`, 0},
		{"missing token type", `{"access_token":"a","expires_in":5}`, 0},
		{"missing expires_in: default lifetime", `{"access_token":"a","token_type":"Bearer"}`, DefaultTokenLifetime},
		{"zero expires_in", `{"access_token":"a","token_type":"Bearer","expires_in":0}`, 0},
		{"negative expires_in", `{"access_token":"a","token_type":"Bearer","expires_in":-5}`, 0},
		{"string expires_in: default lifetime", `{"access_token":"a","token_type":"Bearer","expires_in":"1200"}`, DefaultTokenLifetime},
		{"over-long token", fmt.Sprintf(`{"access_token":%q,"token_type":"Bearer","expires_in":5}`, strings.Repeat("a", maxTokenLen+1)), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, reason := parseToken([]byte(tc.body), "password", epoch, 0)
			if tc.life == 0 {
				if tok != nil || reason == "" {
					t.Fatalf("accepted a bad response")
				}
				if strings.Contains(reason, "X-Evil") {
					t.Errorf("reason quotes the body: %q", reason)
				}
				return
			}
			if tok == nil {
				t.Fatalf("rejected: %s", reason)
			}
			if tok.Lifetime() != tc.life {
				t.Errorf("lifetime %v want %v", tok.Lifetime(), tc.life)
			}
		})
	}
}

func TestTokenPrintsRedacted(t *testing.T) {
	tok := newToken("SEKRIT-access", "SEKRIT-refresh", "Bearer", "", "password", epoch, time.Minute)
	//lint:ignore S1025 the %s verb is what is under test
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), fmt.Sprintf("%s", tok)} {
		if strings.Contains(s, "SEKRIT") {
			t.Errorf("token printed in clear: %s", s)
		}
	}
}

func TestGrantKey(t *testing.T) {
	base := Grant{TokenURL: "https://g/t", Username: "u", Password: "p", ClientID: "c", ClientSecret: "s", IdentityStoreID: "2", Scope: ""}
	if k1, k2 := base.Key(), base.Key(); k1 != k2 {
		t.Fatal("key not stable")
	}
	variants := []Grant{base, base, base, base, base, base, base}
	variants[0].TokenURL = "https://g/u"
	variants[1].Username = "v"
	variants[2].Password = "q"
	variants[3].ClientID = "d"
	variants[4].ClientSecret = "t"
	variants[5].IdentityStoreID = "3"
	variants[6].Scope = "openid"
	seen := map[string]bool{base.Key(): true}
	for i, v := range variants {
		k := v.Key()
		if seen[k] {
			t.Errorf("variant %d collides", i)
		}
		seen[k] = true
	}
	// Fields are length-prefixed: moving a character between fields changes the key.
	a := Grant{Username: "ab", Password: "c"}
	b := Grant{Username: "a", Password: "bc"}
	if a.Key() == b.Key() {
		t.Error("field boundary not part of the key")
	}
	if strings.Contains(Grant{Password: "hunter2hunter2"}.Key(), "hunter2") {
		t.Error("key contains the password")
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	for n := 1; n <= 12; n++ {
		lo, hi := b.Delay(n, 0), b.Delay(n, 0.999999)
		if lo != time.Second {
			t.Errorf("n=%d floor %v", n, lo)
		}
		ceil := time.Second << (n - 1)
		if ceil > time.Minute {
			ceil = time.Minute
		}
		if hi > ceil || hi < ceil-time.Millisecond {
			t.Errorf("n=%d ceiling %v want ~%v", n, hi, ceil)
		}
	}
}
