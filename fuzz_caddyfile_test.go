package groupidauth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Distinctive secrets used by the seed corpus of FuzzUnmarshalCaddyfile.
// The target does not depend on them: it treats whatever is given to a
// password or client_secret subdirective as a secret (see
// fuzzCaddyfileSecrets).
const (
	fuzzCfPassword = "Pw-Fuzz-Caddy-7719"
	fuzzCfSecret   = "Cs-Fuzz-Caddy-3356"
	// fuzzCfMarker stands in for a secret when telling a real echo from
	// a coincidence.
	fuzzCfMarker = "QxZ9-substituted-secret-Jk4W"
)

// FuzzUnmarshalCaddyfile parses arbitrary text as the block of a
// groupid_auth directive. Whatever the input, parsing must not panic. A
// successful parse may only hold values that appear in the input, exactly
// as the input spells them (durations and sizes as caddy.ParseDuration and
// humanize.ParseBytes read them), and must survive the JSON round trip
// that the Caddyfile adapter makes. No error, from parsing or from
// Validate, may repeat the value given to password or client_secret.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	// A few inline seeds; the corpus in testdata/fuzz/FuzzUnmarshalCaddyfile
	// covers every subdirective and the lexer's quoting forms.
	f.Add("token_url https://gid.corp:4443/GroupIDSecurityService/connect/token\nusername svc\npassword " + fuzzCfPassword +
		"\nclient_id legacy\nclient_secret " + fuzzCfSecret + "\nidentity_store_id 2\nscope directorymanager.api offline_access" +
		"\nrefresh_before 5m\ntimeout 10s\nca_cert_file /etc/gid/ca.pem\nreplay_on_401 on\nmax_replay_body 512KiB")
	f.Add("form_param resource https://api.example/\nform_param audience a\ndefault_token_lifetime 10m")
	f.Add("password " + fuzzCfPassword + " again")
	f.Add("client_secret " + fuzzCfSecret + "\nclient_secret " + fuzzCfSecret)
	f.Add("share {\n\tkey {file./run/secrets/share.key}\n\tlock_timeout 15s\n\tcheck_interval 30s\n\tstorage file_system /shared\n}")

	f.Fuzz(func(t *testing.T, block string) {
		// {$VAR} is substituted from the environment by the Caddyfile
		// adapter before any directive sees its tokens; it would make this
		// target depend on the machine's environment, so leave it out.
		if strings.Contains(block, "{$") {
			return
		}
		input := "groupid_auth {\n" + block + "\n}\n"
		tokens, err := caddyfile.Tokenize([]byte(input), "Testfile")
		if err != nil {
			// The adapter stops at a lexer error before any directive
			// runs (and NewTestDispenser would exit the process).
			return
		}
		var h Handler
		perr := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		secrets := fuzzCaddyfileSecrets(tokens)
		if perr != nil {
			fuzzCheckNoSecret(t, "parse error", perr.Error(), tokens, secrets, false)
			return
		}

		// No invention: every value is the token that follows its
		// subdirective's name.
		for _, fld := range h.stringFields() {
			if fld.name == "scope" || *fld.ptr == "" {
				continue
			}
			v := *fld.ptr
			if !fuzzFollows(tokens, fld.name, func(s string) bool { return s == v }) {
				t.Fatalf("%s holds a value that does not follow %q in the input", fld.name, fld.name)
			}
		}
		if h.Scope != "" && !fuzzScopeFromInput(tokens, h.Scope) {
			t.Fatalf("scope %q is not the arguments of a scope line", h.Scope)
		}
		for name, got := range map[string]caddy.Duration{
			"refresh_before": h.RefreshBefore, "timeout": h.Timeout, "dial_timeout": h.DialTimeout,
			"default_token_lifetime": h.DefaultTokenLifetime,
		} {
			if got == 0 {
				continue
			}
			if !fuzzFollows(tokens, name, func(s string) bool {
				d, err := caddy.ParseDuration(s)
				return err == nil && caddy.Duration(d) == got
			}) {
				t.Fatalf("%s = %v is not what caddy.ParseDuration gives for its argument", name, got)
			}
		}
		for k, v := range h.FormParams {
			if !fuzzFormParamFromInput(tokens, k, v) {
				t.Fatalf("form param %q is not the arguments of a form_param line", k)
			}
		}
		if m := h.MaxReplayBody; m != nil && (*m < 0 || *m > MaxReplayBodyLimit) {
			t.Fatalf("max_replay_body = %d accepted", *m)
		}
		if m := h.MaxReplayBody; m != nil && !fuzzFollows(tokens, "max_replay_body", func(s string) bool {
			n, err := humanize.ParseBytes(s)
			return err == nil && n == uint64(*m)
		}) {
			t.Fatalf("max_replay_body = %d is not what humanize.ParseBytes gives for its argument", *m)
		}
		if h.ReplayOn401 != nil {
			on := *h.ReplayOn401
			if !fuzzFollows(tokens, "replay_on_401", func(s string) bool {
				return (on && (s == "on" || s == "true")) || (!on && (s == "off" || s == "false"))
			}) {
				t.Fatalf("replay_on_401 = %v does not follow an on/off argument", on)
			}
		}
		for name, set := range map[string]bool{"allow_http": h.AllowHTTP, "tls_insecure_skip_verify": h.TLSInsecureSkipVerify} {
			if set && !fuzzHasToken(tokens, name) {
				t.Fatalf("%s set without the subdirective in the input", name)
			}
		}
		if len(h.TrustPoolRaw) > 0 {
			var pool struct {
				Provider string `json:"provider"`
			}
			if err := json.Unmarshal(h.TrustPoolRaw, &pool); err != nil {
				t.Fatalf("tls_trust_pool is not a JSON object: %v", err)
			}
			if !fuzzFollows(tokens, "tls_trust_pool", func(s string) bool { return s == pool.Provider }) {
				t.Fatalf("tls_trust_pool provider %q does not follow tls_trust_pool in the input", pool.Provider)
			}
		}

		// The Caddyfile adapter turns the handler into JSON and Caddy
		// decodes that: nothing may change on the way.
		raw, err := json.Marshal(&h)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Handler
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("the handler's JSON does not decode: %v", err)
		}
		again, err := json.Marshal(&back)
		if err != nil {
			t.Fatalf("marshal again: %v", err)
		}
		if !bytes.Equal(raw, again) {
			t.Fatal("the handler's JSON changes through a decode")
		}
		hf, bf := h.stringFields(), back.stringFields()
		for i := range hf {
			if *hf[i].ptr != *bf[i].ptr {
				t.Fatalf("%s changes through the handler's JSON", hf[i].name)
			}
		}

		if verr := h.validate(); verr != nil {
			fuzzCheckNoSecret(t, "validate error", verr.Error(), tokens, secrets, true)
		}
	})
}

// fuzzSameLine reports whether b starts on the line where a ends, which is
// how Caddy's Dispenser tells an argument from the next line's directive.
func fuzzSameLine(a, b caddyfile.Token) bool {
	return a.File == b.File && a.Line+a.NumLineBreaks() >= b.Line
}

// fuzzFollows reports whether some token named name is directly followed
// by a token whose text satisfies ok.
func fuzzFollows(tokens []caddyfile.Token, name string, ok func(string) bool) bool {
	for i := 0; i+1 < len(tokens); i++ {
		if tokens[i].Text == name && ok(tokens[i+1].Text) {
			return true
		}
	}
	return false
}

// fuzzFormParamFromInput reports whether some form_param line of the
// input has the arguments name and value.
func fuzzFormParamFromInput(tokens []caddyfile.Token, name, value string) bool {
	for i := 0; i+2 < len(tokens); i++ {
		if tokens[i].Text == "form_param" && tokens[i+1].Text == name && tokens[i+2].Text == value {
			return true
		}
	}
	return false
}

func fuzzHasToken(tokens []caddyfile.Token, name string) bool {
	for _, tk := range tokens {
		if tk.Text == name {
			return true
		}
	}
	return false
}

// fuzzScopeFromInput reports whether scope is the space-joined run of
// tokens that follows some scope token.
func fuzzScopeFromInput(tokens []caddyfile.Token, scope string) bool {
	for i := 0; i+1 < len(tokens); i++ {
		if tokens[i].Text != "scope" {
			continue
		}
		joined := ""
		for j := i + 1; j < len(tokens) && len(joined) <= len(scope); j++ {
			if j > i+1 {
				joined += " "
			}
			joined += tokens[j].Text
			if joined == scope {
				return true
			}
		}
	}
	return false
}

// fuzzCaddyfileSecrets returns the indexes of the tokens given as the value
// of a password or client_secret subdirective (the name starts its line,
// the value is on the same line), when at least 8 bytes long: shorter
// values are too likely to occur in a message by chance.
func fuzzCaddyfileSecrets(tokens []caddyfile.Token) []int {
	var idx []int
	for i := 1; i+1 < len(tokens); i++ {
		name := tokens[i].Text
		if (name == "password" || name == "client_secret") &&
			!fuzzSameLine(tokens[i-1], tokens[i]) && fuzzSameLine(tokens[i], tokens[i+1]) &&
			len(tokens[i+1].Text) >= 8 {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// fuzzCheckNoSecret fails when msg repeats a secret value. A message that
// contains the value's text may do so by coincidence (the value could
// equal a subdirective name, or another token that is quoted), so the
// parse is run again with only that token's text replaced by a marker:
// the value was echoed if the marker shows up. The message is not printed,
// since it would show the secret.
func fuzzCheckNoSecret(t *testing.T, what, msg string, tokens []caddyfile.Token, secrets []int, validate bool) {
	t.Helper()
	for _, i := range secrets {
		if !strings.Contains(msg, tokens[i].Text) {
			continue
		}
		swapped := make([]caddyfile.Token, len(tokens))
		copy(swapped, tokens)
		swapped[i].Text = fuzzCfMarker
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(swapped))
		if err == nil && validate {
			err = h.validate()
		}
		if err != nil && strings.Contains(err.Error(), fuzzCfMarker) {
			t.Fatalf("%s repeats the value given to %s (%d-byte value)", what, tokens[i-1].Text, len(tokens[i].Text))
		}
	}
}
