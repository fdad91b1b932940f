package tokencache

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// The leak checker: an oracle for tests and fuzz targets, independent of the
// redactor. It builds the encodings of every secret with the standard
// encoders (and a few variants other servers write) and looks for them in a
// text. It never reports the secret, only which form of which secret.

// secretForms returns the encodings of s a token endpoint could echo,
// named by kind.
func secretForms(s string) map[string]string {
	qe := url.QueryEscape(s)
	pe := url.PathEscape(s)
	forms := map[string]string{
		"raw":                       s,
		"form-encoded":              qe,
		"form-encoded, lower hex":   lowerHex(qe),
		"form-encoded, %20":         strings.ReplaceAll(qe, "+", "%20"),
		"path-escaped":              pe,
		"path-escaped, lower hex":   lowerHex(pe),
		"JSON":                      jsonString(s, true),
		"JSON, no HTML escaping":    jsonString(s, false),
		"JSON, upper hex":           upperUnicodeEscapes(jsonString(s, true)),
		"JSON, all escaped":         jsonEscapeAll(s),
		"JSON of form-encoded":      jsonString(qe, true),
		"form-encoded JSON":         url.QueryEscape(jsonString(s, true)),
		"form-encoded JSON, %20":    strings.ReplaceAll(url.QueryEscape(jsonString(s, true)), "+", "%20"),
		"JSON of path-escaped":      jsonString(pe, true),
		"path-escaped JSON":         url.PathEscape(jsonString(s, true)),
		"lower hex form-encoded JS": lowerHex(url.QueryEscape(jsonString(s, true))),
	}
	return forms
}

var hexEscape = regexp.MustCompile(`%[0-9A-F]{2}`)

func lowerHex(s string) string { return hexEscape.ReplaceAllStringFunc(s, strings.ToLower) }

var unicodeEscape = regexp.MustCompile(`\\u[0-9a-f]{4}`)

func upperUnicodeEscapes(s string) string {
	return unicodeEscape.ReplaceAllStringFunc(s, func(m string) string { return `\u` + strings.ToUpper(m[2:]) })
}

// jsonString is s as encoding/json writes it inside a string, without the
// quotes.
func jsonString(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// jsonEscapeAll writes every rune but letters and digits as \uXXXX (upper
// case hex), as some encoders (System.Text.Json) do for non-ASCII.
func jsonEscapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
			continue
		}
		var u [2]uint16
		n := 1
		if r > 0xffff {
			r -= 0x10000
			u[0], u[1], n = uint16(0xd800+(r>>10)), uint16(0xdc00+(r&0x3ff)), 2
		} else {
			u[0] = uint16(r)
		}
		for _, c := range u[:n] {
			fmt.Fprintf(&b, `\u%04X`, c)
		}
	}
	return b.String()
}

// basicForms are the HTTP Basic credentials a client with id and secret
// sends (form-encoded first, RFC 6749 2.3.1) or could send, base64 encoded.
func basicForms(id, secret string) map[string]string {
	out := map[string]string{}
	for name, pair := range map[string]string{
		"form-encoded": url.QueryEscape(id) + ":" + url.QueryEscape(secret),
		"plain":        id + ":" + secret,
	} {
		out["basic "+name+" base64"] = base64.StdEncoding.EncodeToString([]byte(pair))
		out["basic "+name+" base64url"] = base64.URLEncoding.EncodeToString([]byte(pair))
		out["basic "+name+" base64 unpadded"] = base64.RawStdEncoding.EncodeToString([]byte(pair))
	}
	return out
}

// leakPattern is one string that must not appear in a text.
type leakPattern struct {
	what string // names the secret and the form, never the value
	text string
	tail bool // only at the end of a text
}

// leakChecker looks for the secrets' forms, fragments of at least
// fragmentLen raw bytes (in every form), and prefixes of at least
// minTailLen raw bytes (in every form) at the end of a text.
type leakChecker struct{ patterns []leakPattern }

// newLeakChecker takes the secrets by name ("password": "...") and the
// client ID and secret whose HTTP Basic forms must not appear either.
func newLeakChecker(secrets map[string]string, clientID, clientSecret string) *leakChecker {
	c := &leakChecker{}
	seen := map[string]bool{}
	add := func(p leakPattern) {
		if p.text == "" || seen[p.text+fmt.Sprint(p.tail)] {
			return
		}
		seen[p.text+fmt.Sprint(p.tail)] = true
		c.patterns = append(c.patterns, p)
	}
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := secrets[name]
		for kind, f := range secretForms(s) {
			add(leakPattern{what: name + " (" + kind + ")", text: f})
		}
		// Fragments: each shortest run of at least fragmentLen bytes that
		// starts and ends on a rune boundary, in every form.
		for i := 0; i < len(s); i++ {
			if !utf8.RuneStart(s[i]) {
				continue
			}
			j := i + fragmentLen
			for j < len(s) && !utf8.RuneStart(s[j]) {
				j++
			}
			if j >= len(s) && i == 0 {
				break // the whole secret: done above
			}
			if j > len(s) {
				break
			}
			for kind, f := range secretForms(s[i:j]) {
				add(leakPattern{what: name + " fragment (" + kind + ")", text: f})
			}
		}
		// Prefixes at the end of a text.
		for j := minTailLen; j < len(s); j++ {
			if !utf8.RuneStart(s[j]) {
				continue
			}
			for kind, f := range secretForms(s[:j]) {
				add(leakPattern{what: name + " prefix at the end (" + kind + ")", text: f, tail: true})
			}
		}
	}
	if clientSecret != "" {
		for kind, f := range basicForms(clientID, clientSecret) {
			add(leakPattern{what: "client secret (" + kind + ")", text: f})
			for i := 0; i+fragmentLen <= len(f); i++ {
				add(leakPattern{what: "client secret fragment (" + kind + ")", text: f[i : i+fragmentLen]})
			}
			for j := minTailLen; j < len(f); j++ {
				add(leakPattern{what: "client secret prefix at the end (" + kind + ")", text: f[:j], tail: true})
			}
		}
	}
	sort.SliceStable(c.patterns, func(i, j int) bool { return c.patterns[i].what < c.patterns[j].what })
	return c
}

// leak names the first form of a secret found in s, or returns "". With
// atEnd, s is a whole field, whose end may not hold a secret's prefix
// either.
func (c *leakChecker) leak(s string, atEnd bool) string {
	for _, p := range c.patterns {
		if p.tail {
			if atEnd && strings.HasSuffix(s, p.text) {
				return p.what
			}
			continue
		}
		if strings.Contains(s, p.text) {
			return p.what
		}
	}
	return ""
}

// leakFields checks everything an *Error can print: its text, and Code,
// Description, Reason and the transport error's text as whole fields.
func (c *leakChecker) leakFields(err error) string {
	if err == nil {
		return ""
	}
	if w := c.leak(err.Error(), false); w != "" {
		return "Error(): " + w
	}
	e, ok := err.(*Error)
	if !ok {
		return ""
	}
	fields := map[string]string{"Code": e.Code, "Description": e.Description, "Reason": e.Reason}
	if e.Err != nil {
		fields["Err"] = e.Err.Error()
	}
	for name, v := range fields {
		if w := c.leak(v, true); w != "" {
			return name + ": " + w
		}
	}
	return ""
}
