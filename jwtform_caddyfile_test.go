package groupidauth

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestCaddyfileFormParamAndDefaultLifetime: form_param may be repeated
// (once per name) in a groupid_auth block and a named credential; and
// default_token_lifetime is a duration.
func TestCaddyfileFormParamAndDefaultLifetime(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`groupid_auth {
		form_param resource https://api.example.test/
		username svc
		form_param audience {env.AUDIENCE}
		default_token_lifetime 10m
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"resource": "https://api.example.test/", "audience": "{env.AUDIENCE}"}
	if !maps.Equal(h.FormParams, want) || h.DefaultTokenLifetime != caddy.Duration(10*time.Minute) {
		t.Fatalf("parsed %v, %v", h.FormParams, h.DefaultTokenLifetime)
	}

	var app App
	err = app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`groupid {
		credential a {
			form_param resource r1
			form_param audience a1
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := app.Credentials["a"].FormParams; !maps.Equal(got, map[string]string{"resource": "r1", "audience": "a1"}) {
		t.Fatalf("global option parsed %v", got)
	}
}

func TestCaddyfileFormParamErrors(t *testing.T) {
	cases := []struct{ input, want string }{
		{"groupid_auth {\n form_param resource a\n form_param resource b\n}", "form_param resource given more than once"},
		{"groupid_auth {\n form_param resource\n}", "wrong argument count"},
		{"groupid_auth {\n form_param resource a b\n}", "wrong argument count"},
		{"groupid_auth {\n default_token_lifetime\n}", "wrong argument count"},
		{"groupid_auth {\n default_token_lifetime long\n}", "default_token_lifetime: invalid duration"},
		{"groupid_auth {\n default_token_lifetime 1m\n default_token_lifetime 2m\n}", "default_token_lifetime given more than once"},
	}
	for _, tc := range cases {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.input, err, tc.want)
		}
	}
	var app App
	err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser("groupid {\n credential a {\n form_param x 1\n form_param x 2\n }\n}"))
	if err == nil || !strings.Contains(err.Error(), "groupid: credential a: form_param x given more than once") {
		t.Errorf("global option: got %v", err)
	}
}
