package tokencache

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// The forms of the secrets the redactor searches for: the secrets of a
// request with the base64 forms of them, which the redactor does not
// decode (base64 has no marker that tells where it starts, and decoding
// every run of letters at four offsets would cost more than building the
// few strings a secret can show as); and the secrets too short to search
// for, of which only a whole text is redacted.

// requestSecrets lists what a token request with g and refreshToken must
// never let into an error: the password, the client secret, the refresh
// token, their base64 forms (see base64Forms), and the HTTP Basic
// credentials as this client sends them (base64 of the form-encoded
// client ID and secret, RFC 6749 section 2.3.1) and as a careless reader
// might re-encode them (without form encoding, or with the URL-safe
// alphabet). A secret shorter than minSecretLen gets no base64 forms: it
// is not searched for in free text (see minSecretLen), and neither are
// they.
func requestSecrets(g Grant, refreshToken string) []string {
	var out []string
	for _, s := range append(g.secrets(), refreshToken) {
		out = append(out, s)
		if len(s) >= minSecretLen {
			out = append(out, base64Forms(s)...)
			if q := url.QueryEscape(s); q != s {
				out = append(out, base64Forms(q)...) // as in Basic and the body
			}
		}
	}
	if g.ClientSecret != "" {
		for _, pair := range []string{
			url.QueryEscape(g.ClientID) + ":" + url.QueryEscape(g.ClientSecret),
			g.ClientID + ":" + g.ClientSecret,
		} {
			out = append(out,
				base64.StdEncoding.EncodeToString([]byte(pair)),
				base64.URLEncoding.EncodeToString([]byte(pair)))
		}
	}
	return out
}

// base64Forms returns what base64 of s shows, in the standard and the
// URL-safe alphabet: the encoding of s on its own, with and without
// padding, and, for s inside longer data (a Basic "user:secret", a form
// body), the characters s alone decides at each of the three offsets s can
// start at in a 3-byte group. A character takes 6 bits, so at offset a the
// bits of s are [8a, 8a+8·len(s)) and the characters wholly inside them
// are those from ceil(8a/6) to floor((8a+8·len(s))/6); the others mix in
// the bytes around s, and are not searched for.
func base64Forms(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)),
			enc.WithPadding(base64.NoPadding).EncodeToString([]byte(s)))
		for a := 0; a < 3; a++ {
			e := enc.EncodeToString(append(make([]byte, a, a+len(s)), s...))
			if from, to := (8*a+5)/6, 8*(a+len(s))/6; to-from >= minSecretLen {
				out = append(out, e[from:to])
			}
		}
	}
	return out
}

// markWithin is the mark, or nothing when it does not fit in max bytes.
func markWithin(max int) string {
	if len(redactedMark) > max {
		return ""
	}
	return redactedMark
}

// shortSecret reports whether s, or a decoding of it, is one of the
// secrets shorter than minSecretLen once spaces around it are trimmed.
func (r *redactor) shortSecret(s string) bool {
	if s = strings.TrimSpace(s); len(r.short) == 0 || s == "" || len(s) > maxShortView {
		return false
	}
	for _, v := range applyChains(identityView(s), 0) {
		for _, sec := range r.short {
			if string(v.b) == sec {
				return true
			}
		}
	}
	return false
}
