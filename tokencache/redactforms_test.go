package tokencache

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Issue 17: secrets too short to search for, base64 of a secret on its own,
// and HTML character references. The oracle below builds the forms with
// the standard encoders (encoding/base64, html.EscapeString, fmt), not with
// the redactor's code, and is used by the table tests and FuzzSanitize.

// htmlForms returns s as HTML escapers write it.
func htmlForms(s string) map[string]string {
	var dec, hexLower, hexUpper, mixed, noSemi strings.Builder
	for _, r := range s {
		fmt.Fprintf(&dec, "&#%d;", r)
		fmt.Fprintf(&hexLower, "&#x%x;", r)
		fmt.Fprintf(&hexUpper, "&#X%X;", r)
		fmt.Fprintf(&noSemi, "&#%d", r)
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			mixed.WriteRune(r)
		} else {
			fmt.Fprintf(&mixed, "&#x%X;", r) // as .NET's HtmlEncoder writes
		}
	}
	named := html.EscapeString(s) // &amp; &lt; &gt; &#34; &#39;
	return map[string]string{
		"HTML escaped":          named,
		"HTML, &quot; &apos;":   strings.NewReplacer("&#34;", "&quot;", "&#39;", "&apos;").Replace(named),
		"HTML, upper-case":      strings.NewReplacer("&amp;", "&AMP;", "&lt;", "&LT;", "&gt;", "&GT;", "&#34;", "&QUOT;").Replace(named),
		"HTML decimal":          dec.String(),
		"HTML hex":              hexLower.String(),
		"HTML HEX":              hexUpper.String(),
		"HTML decimal, no ';'":  noSemi.String() + ";",
		"HTML mixed":            mixed.String(),
		"HTML of JSON":          html.EscapeString(jsonString(s, false)),
		"JSON of HTML":          jsonString(html.EscapeString(s), true),
		"form-encoded HTML":     url.QueryEscape(dec.String()),
		"form-encoded HTML hex": url.QueryEscape(mixed.String()),
	}
}

// base64TestForms returns the base64 of s on its own (both alphabets, with and
// without padding) and, for s inside longer data at each of the three
// offsets, the characters that s alone decides: those that come out the
// same whatever bytes surround s.
func base64TestForms(s string) map[string]string {
	out := map[string]string{}
	for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding} {
		out["base64 "+name] = enc.EncodeToString([]byte(s))
		out["base64 "+name+" unpadded"] = enc.WithPadding(base64.NoPadding).EncodeToString([]byte(s))
		for a := 0; a < 3; a++ {
			lo := enc.EncodeToString([]byte(strings.Repeat("\x00", a) + s + "\x00\x00"))
			hi := enc.EncodeToString([]byte(strings.Repeat("\xff", a) + s + "\xff\xff"))
			i := 0
			for i < len(lo) && lo[i] != hi[i] {
				i++
			}
			j := i
			for j < len(lo) && lo[j] == hi[j] {
				j++
			}
			out[fmt.Sprintf("base64 %s inside data, offset %d", name, a)] = lo[i:j]
		}
	}
	return out
}

// newFormsChecker looks for the HTML forms of every secret, of its
// fragments and (at the end) of its prefixes, and for the base64 forms of
// every secret and of its form encoding (as HTTP Basic sends it), of
// fragmentLen characters of them and (at the end) of their prefixes: the
// rules the leak checker applies to other forms.
func newFormsChecker(secrets map[string]string) *leakChecker {
	c := &leakChecker{}
	seen := map[string]bool{}
	add := func(what, text string, tail bool) {
		if k := fmt.Sprint(tail) + text; text != "" && !seen[k] {
			seen[k] = true
			c.patterns = append(c.patterns, leakPattern{what: what, text: text, tail: tail})
		}
	}
	for name, s := range secrets {
		for kind, f := range htmlForms(s) {
			add(name+" ("+kind+")", f, false)
		}
		for i := 0; i < len(s); i++ {
			j := i + fragmentLen
			for j < len(s) && !utf8.RuneStart(s[j]) {
				j++
			}
			if !utf8.RuneStart(s[i]) || j > len(s) {
				continue
			}
			for kind, f := range htmlForms(s[i:j]) {
				add(name+" fragment ("+kind+")", f, false)
			}
		}
		for j := minTailLen; j < len(s); j++ {
			if utf8.RuneStart(s[j]) {
				for kind, f := range htmlForms(s[:j]) {
					add(name+" prefix at the end ("+kind+")", f, true)
				}
			}
		}
		b64 := base64TestForms(s)
		for kind, f := range base64TestForms(url.QueryEscape(s)) {
			b64["form-encoded, "+kind] = f // as in HTTP Basic
		}
		for kind, f := range b64 {
			add(name+" ("+kind+")", f, false)
			add(name+" (form-encoded "+kind+")", url.QueryEscape(f), false)
			for i := 0; i+fragmentLen <= len(f); i++ {
				add(name+" fragment ("+kind+")", f[i:i+fragmentLen], false)
			}
			for j := minTailLen; j < len(f); j++ {
				add(name+" prefix at the end ("+kind+")", f[:j], true)
			}
		}
	}
	sort.SliceStable(c.patterns, func(i, j int) bool { return c.patterns[i].what < c.patterns[j].what })
	return c
}

// fuzzFormsLeaks finds the HTML and base64 forms of the fuzz secrets (see
// newFormsChecker); fuzzShortSecret is shorter than minSecretLen.
var fuzzFormsLeaks = newFormsChecker(map[string]string{
	"password":      fuzzPassword,
	"client secret": fuzzClientSecret,
	"refresh token": fuzzRefreshToken,
})

const fuzzShortSecret = "q&"

// htmlDec writes every rune of s as a decimal reference.
func htmlDec(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, "&#%d;", r)
	}
	return b.String()
}

// TestSanitizeShortSecrets: a secret shorter than minSecretLen is not
// searched for in free text (it would mark letters all over the message),
// but a field that is nothing but the secret is not echoed.
func TestSanitizeShortSecrets(t *testing.T) {
	const msg = "invalid_username_or_password"
	cases := []struct {
		name, secret, in string
		max              int
		want             string
	}{
		{name: "one byte in free text", secret: "e", in: msg, max: 200, want: msg},
		{name: "two bytes in free text", secret: "or", in: msg, max: 200, want: msg},
		{name: "three bytes in free text", secret: "pas", in: msg, max: 200, want: msg},
		{name: "two bytes, encoded, in free text", secret: "o&", in: "a%26b o%26 c\\u0026", max: 200, want: "a%26b o%26 c\\u0026"},
		{name: "whole field", secret: "ab", in: "ab", max: 200, want: redactedMark},
		{name: "whole field with spaces", secret: "ab", in: " ab\t", max: 200, want: redactedMark},
		{name: "whole field percent-encoded", secret: "a&", in: "a%26", max: 200, want: redactedMark},
		{name: "whole field JSON-escaped", secret: "<é", in: `\u003c\u00e9`, max: 200, want: redactedMark},
		{name: "whole field HTML-escaped", secret: "<>", in: "&lt;&#62;", max: 200, want: redactedMark},
		{name: "whole field too short for the mark", secret: "ab", in: "ab", max: 5, want: ""},
		{name: "shortening leaves only the secret", secret: "abc", in: "abcdefgh", max: 3, want: ""},
		{name: "control byte made into the secret", secret: "a?", in: "a\x01", max: 200, want: redactedMark},
		{name: "four bytes still searched", secret: "abcd", in: "xabcdx abcd", max: 200, want: "x(redacted)x (redacted)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in, tc.max, []string{tc.secret, "a-long-Secret-4471"}); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Short secrets add no base64 forms either, and the long secrets of
	// the same request are still redacted.
	g := Grant{Password: "ab", ClientID: "c", ClientSecret: "x"}
	if got := sanitize("YWI= eA== ab x", 200, requestSecrets(g, "")); got != "YWI= eA== ab x" {
		t.Errorf("short secrets' forms redacted: %q", got)
	}
	g.Password = "pw-Long-Enough"
	if got := sanitize("bad ab "+g.Password, 200, requestSecrets(g, "")); got != "bad ab (redacted)" {
		t.Errorf("got %q", got)
	}
}

// TestSanitizeBase64OfSecret: base64 of a secret on its own, or inside
// longer base64 data, in either alphabet, with or without padding.
func TestSanitizeBase64OfSecret(t *testing.T) {
	const pw = "hunter2-secret"
	g := Grant{Password: pw, ClientID: echoClientID, ClientSecret: echoClientSecret}
	secrets := requestSecrets(g, echoRefreshToken)
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	if b64(base64.StdEncoding, echoClientSecret) == b64(base64.URLEncoding, echoClientSecret) {
		t.Fatal("the client secret does not tell the base64 alphabets apart")
	}
	cases := []struct{ name, in, want string }{
		{name: "std", in: "bad " + b64(base64.StdEncoding, pw) + " x", want: "bad (redacted) x"},
		{name: "std unpadded", in: "bad " + b64(base64.RawStdEncoding, pw) + " x", want: "bad (redacted) x"},
		{name: "url", in: "bad " + b64(base64.URLEncoding, pw) + " x", want: "bad (redacted) x"},
		{name: "client secret std", in: "cs=" + b64(base64.StdEncoding, echoClientSecret) + ";", want: "cs=(redacted);"},
		{name: "client secret url", in: "cs=" + b64(base64.URLEncoding, echoClientSecret) + ";", want: "cs=(redacted);"},
		{name: "client secret url unpadded", in: "cs=" + b64(base64.RawURLEncoding, echoClientSecret) + ";", want: "cs=(redacted);"},
		{name: "refresh token", in: "rt " + b64(base64.StdEncoding, echoRefreshToken), want: "rt (redacted)"},
		{name: "std form-encoded", in: "cs=" + url.QueryEscape(b64(base64.StdEncoding, echoClientSecret)) + "&x=1", want: "cs=(redacted)&x=1"},
		{name: "std with escaped slashes", in: `"` + strings.ReplaceAll(b64(base64.StdEncoding, echoClientSecret), "/", `\/`) + `"`, want: `"(redacted)"`},
		{name: "cut at the end", in: "bad " + b64(base64.StdEncoding, pw)[:9], want: "bad (redacted)"},
		{name: "fragment", in: "bad " + b64(base64.StdEncoding, pw)[3:14] + "...", want: "bad (redacted)..."},
		{name: "followed by more data", in: b64(base64.StdEncoding, pw+"\x00more data")},
		{name: "Basic username:password", in: "Basic " + b64(base64.StdEncoding, "svc:"+pw)},
		{name: "Basic user:password", in: "Basic " + b64(base64.StdEncoding, "user1:"+pw)},
		{name: "Basic with another client ID", in: "Basic " + b64(base64.StdEncoding, "others:"+url.QueryEscape(echoClientSecret))},
		{name: "form body in base64", in: b64(base64.URLEncoding, "grant_type=password&username=svc&password="+pw+"&scope=openid")},
		{name: "ordinary base64 kept", in: "id " + b64(base64.StdEncoding, "public-id-0042") + " ok", want: "id " + b64(base64.StdEncoding, "public-id-0042") + " ok"},
	}
	check := newFormsChecker(map[string]string{"password": pw, "client secret": echoClientSecret, "refresh token": echoRefreshToken})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sanitize(tc.in, 200, secrets)
			if w := check.leak(got, true); w != "" {
				t.Fatalf("got a text with the %s (redacted)", w)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.want == "" && !strings.Contains(got, redactedMark) {
				t.Errorf("nothing redacted in %q", got)
			}
		})
	}
}

// TestSanitizeHTMLReferences: HTML character references (decimal, hex in
// either case, named), mixed with plain characters and with the other
// encodings.
func TestSanitizeHTMLReferences(t *testing.T) {
	const pw = "hunter2-secret"
	const sec = `Kestrel+&=%2F/"\<é>'-7741`
	cases := []struct{ name, secret, in, want string }{
		{name: "decimal", secret: pw, in: "p=" + htmlDec(pw) + " x", want: "p=(redacted) x"},
		{name: "hex", secret: pw, in: "p=&#x68;&#x75;&#x6e;&#x74;&#x65;&#x72;&#x32;&#x2d;&#x73;&#x65;&#x63;&#x72;&#x65;&#x74; x", want: "p=(redacted) x"},
		{name: "HEX", secret: pw, in: "p=&#X68;&#X75;&#X6E;&#X74;&#X65;&#X72;&#X32;&#X2D;&#X73;&#X65;&#X63;&#X72;&#X65;&#X74; x", want: "p=(redacted) x"},
		{name: "mixed with plain characters", secret: pw, in: "p=h&#117;n&#x74;er2&#X2D;s&#101;cret x", want: "p=(redacted) x"},
		{name: "leading zeros", secret: pw, in: "p=&#0104;&#x0075;nter2-secret", want: "p=(redacted)"},
		{name: "no semicolons", secret: pw, in: "p=" + strings.ReplaceAll(htmlDec(pw), ";", "") + " x", want: "p=(redacted) x"},
		{name: "named", secret: sec, in: "<p>" + html.EscapeString(sec) + "</p>", want: "<p>(redacted)</p>"},
		{name: "&quot; and &apos;", secret: sec, in: `Kestrel+&amp;=%2F/&quot;\&lt;é&gt;&apos;-7741`, want: "(redacted)"},
		{name: "upper-case names", secret: sec, in: `Kestrel+&AMP;=%2F/&QUOT;\&LT;é&GT;'-7741`, want: "(redacted)"},
		{name: "non-ASCII", secret: sec, in: `Kestrel+&amp;=%2F/&#34;\&lt;&#233;&gt;&#x27;-7741`, want: "(redacted)"},
		{name: "non-ASCII hex", secret: sec, in: "x " + htmlForms(sec)["HTML mixed"], want: "x (redacted)"},
		{name: "fragment", secret: sec, in: "p=" + htmlDec(sec[3:12]) + "...", want: "p=(redacted)..."},
		{name: "prefix at the end", secret: pw, in: "p=" + htmlDec("hunte"), want: "p=(redacted)"},
		{name: "prefix cut inside a reference", secret: pw, in: "p=" + htmlDec("hunte") + "&#11", want: "p=(redacted)"},
		{name: "prefix cut inside a name", secret: sec, in: "p=Kestrel+&am", want: "p=(redacted)"},
		{name: "HTML page quoting JSON", secret: sec, in: "<pre>" + html.EscapeString(jsonString(sec, false)) + "</pre>", want: "<pre>(redacted)</pre>"},
		{name: "JSON quoting HTML", secret: sec, in: `{"e":"` + jsonString(html.EscapeString(sec), true) + `"}`, want: `{"e":"(redacted)"}`},
		{name: "form-encoded HTML", secret: pw, in: "e=" + url.QueryEscape(htmlDec(pw)) + "&x=1", want: "e=(redacted)&x=1"},
		{name: "HTML of form body", secret: sec, in: html.EscapeString("a=1&password=" + url.QueryEscape(sec) + "&b=2"), want: "a=1&amp;password=(redacted)&amp;b=2"},
		{name: "ordinary references kept", secret: sec, in: "a &amp; b &lt;c&gt; &#169; &copy; &#x;& &", want: "a &amp; b &lt;c&gt; &#169; &copy; &#x;& &"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sanitize(tc.in, 200, []string{tc.secret})
			if got != tc.want {
				if w := newFormsChecker(map[string]string{"secret": tc.secret}).leak(got, true); w != "" {
					t.Fatalf("got a text with the %s (redacted), want %q", w, tc.want)
				}
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFetchRedactsHTMLAndBase64Echoes: the same through Fetch, against
// endpoints that echo the secrets HTML-escaped or in base64.
func TestFetchRedactsHTMLAndBase64Echoes(t *testing.T) {
	check := newFormsChecker(map[string]string{"password": echoPassword, "client secret": echoClientSecret})
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		name  string
		basic bool
		echo  func(echoReq) string
	}{
		{name: "HTML-escaped body", echo: func(r echoReq) string { return html.EscapeString(r.body) }},
		{name: "HTML-escaped fields", echo: func(r echoReq) string {
			return html.EscapeString(r.form.Get("password")) + " " + html.EscapeString(r.form.Get("client_secret"))
		}},
		{name: "fields as numeric references", echo: func(r echoReq) string {
			return htmlDec(r.form.Get("password")) + " " + htmlForms(r.form.Get("client_secret"))["HTML mixed"]
		}},
		{name: "fields in base64", echo: func(r echoReq) string {
			return b64([]byte(r.form.Get("password"))) + " " + base64.RawURLEncoding.EncodeToString([]byte(r.form.Get("client_secret")))
		}},
		{name: "body in base64", echo: func(r echoReq) string { return b64([]byte(r.body)) }},
		{name: "username:password in base64", echo: func(r echoReq) string {
			return "Basic " + b64([]byte(r.form.Get("username")+":"+r.form.Get("password")))
		}},
		{name: "HTML-escaped Authorization header decoded", basic: true, echo: func(r echoReq) string {
			b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.auth, "Basic "))
			return html.EscapeString(string(b))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := Grant{
				TokenURL: echoEndpoint(t, func(r echoReq, w http.ResponseWriter) {
					oauthError(400, "invalid_request", "could not parse: "+tc.echo(r), w)
				}),
				Username: "svc", Password: echoPassword,
				ClientID: echoClientID, ClientSecret: echoClientSecret,
				IdentityStoreID: "2", BasicAuth: tc.basic,
			}
			c := &Client{HTTP: NewHTTPClient(nil, 5*time.Second, 0)}
			_, err := c.Fetch(context.Background(), g, "", epoch)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %T", err)
			}
			for _, ck := range []*leakChecker{echoChecker, check} {
				if w := ck.leakFields(err); w != "" {
					t.Fatalf("secret leaked: %s (redacted)", w)
				}
			}
			if e.Code != "invalid_request" || !strings.HasPrefix(e.Description, "could not parse: ") {
				t.Errorf("code %q, description %q: the message around the secret is lost", e.Code, e.Description)
			}
		})
	}
}
