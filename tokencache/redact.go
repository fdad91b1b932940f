package tokencache

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Redaction of secrets from text a token endpoint sent back.
//
// A server may echo what it received: the form body (percent-encoded, with
// '+' or "%20" for a space and upper- or lower-case hex), the body again
// JSON-escaped inside its JSON answer, or the Authorization header (base64
// of the form-encoded client ID and secret). Matching every encoding by
// building it would miss the variants an encoder is free to choose, so the
// text is decoded instead: it is searched as it is and through a few
// decoded views (percent-decoding with and without '+' as space, JSON
// string unescaping, and both orders of the two), each of which remembers
// which bytes of the text every decoded byte came from. A secret found in a
// view is redacted in the text. Because a byte inside an escape may also
// be read as the start of a secret ("%0F%2f": an "F", then "/"), decoding
// is also tried from every such byte. Base64 is not decoded: the exact
// strings this client can send are searched for instead.
//
// Besides whole secrets, two kinds of fragment are redacted: any run of
// fragmentLen bytes of a secret, wherever it is (a server that cuts or
// wraps its echo must not leak most of a secret), and a prefix of at least
// minTailLen bytes of a secret at the very end of the text (a server, or
// the shortening here, that cut the text inside a secret).

const (
	// fragmentLen is the length of the secret fragments redacted wherever
	// they appear. It is also the size of the packed keys in redactor.grams.
	fragmentLen = 8
	// minTailLen is the shortest prefix of a secret redacted at the end of
	// a text.
	minTailLen = 4
	// redactedMark replaces every secret.
	redactedMark = "(redacted)"
	// maxErrText bounds the text of a transport error kept in an *Error.
	maxErrText = 300
	// maxReason bounds an *Error's Reason.
	maxReason = 200
	// otherReadingLen is how much text is decoded from a byte inside an
	// escape: enough for fragmentLen bytes through two decodings (a byte
	// JSON-escaped, then each of the six percent-encoded, is 18 bytes).
	otherReadingLen = 160
)

// redactor finds secrets in text. The zero value, and a redactor without
// secrets, redacts nothing.
type redactor struct {
	needles [][]byte
	// kmp[i] is the prefix function of needles[i], for the tail check.
	kmp [][]int
	// grams holds every fragmentLen-byte window of every needle.
	grams map[uint64]struct{}
}

// newRedactor returns a redactor for the given secrets; empty ones are
// ignored and duplicates dropped.
func newRedactor(secrets ...string) *redactor {
	r := &redactor{grams: map[uint64]struct{}{}}
	seen := map[string]bool{}
	for _, s := range secrets {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		n := []byte(s)
		r.needles = append(r.needles, n)
		r.kmp = append(r.kmp, prefixFunction(n))
		for i := 0; i+fragmentLen <= len(n); i++ {
			r.grams[binary.LittleEndian.Uint64(n[i:])] = struct{}{}
		}
	}
	return r
}

// requestSecrets lists what a token request with g and refreshToken must
// never let into an error: the password, the client secret, the refresh
// token, and the HTTP Basic credentials as this client sends them (base64
// of the form-encoded client ID and secret, RFC 6749 section 2.3.1) and as
// a careless reader might re-encode them (without form encoding, or with
// the URL-safe alphabet).
func requestSecrets(g Grant, refreshToken string) []string {
	out := append(g.secrets(), refreshToken)
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

// sanitize makes server-provided text safe to log: printable ASCII only, at
// most max bytes, with every secret (raw, encoded, or a fragment as
// described above) replaced by "(redacted)". Secrets are removed both
// before and after other bytes become '?', so that a server cannot rebuild
// a secret by splicing control characters into it, and before the text is
// shortened, so that shortening cannot leave a long part of one; what is
// left at the cut is checked again.
func sanitize(s string, max int, secrets []string) string {
	return newRedactor(secrets...).sanitize(s, max)
}

func (r *redactor) sanitize(s string, max int) string {
	// Only the start of a long text can be kept: the rest is dropped
	// first, far enough from max that every secret in what is kept is
	// whole or a fragment (of fragmentLen bytes or more, or a prefix at
	// the end). This bounds the work on a large error body.
	if limit := 16*max + 1024; len(s) > limit {
		s = s[:limit]
	}
	s = r.redact(s)
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	s = r.redact(string(b))
	// A redacted text can only hold a secret again if a secret overlaps the
	// mark itself; give up on such a text rather than loop.
	for i := 0; r.found(s); i++ {
		if i == 2 {
			return redactedMark
		}
		s = r.redact(s)
	}
	for cut := max; len(s) > max; {
		if cut <= 0 {
			return ""
		}
		// Do not leave half a mark.
		if m := strings.LastIndex(s[:cut], "("); m >= 0 && strings.HasPrefix(s[m:], redactedMark) && m+len(redactedMark) > cut {
			cut = m
		}
		t := r.redact(s[:cut])
		if len(t) <= max {
			return t
		}
		cut -= len(t) - max
	}
	return s
}

// scrub sanitises every text of e that Error can print: Code, Description,
// Reason and the transport error's text (replaced by a wrapper that keeps
// the original for errors.Is and errors.As).
func (r *redactor) scrub(e *Error) {
	e.Code = r.sanitize(e.Code, 64)
	e.Description = r.sanitize(e.Description, 200)
	e.Reason = r.sanitize(e.Reason, maxReason)
	if e.Err != nil {
		inner, wrapped := e.Err, false
		if se, ok := inner.(*scrubbedError); ok {
			inner, wrapped = se.err, true
		}
		if msg := r.sanitize(e.Err.Error(), maxErrText); wrapped || msg != e.Err.Error() {
			e.Err = &scrubbedError{msg: msg, err: inner}
		}
	}
}

// scrubbedError is an error whose text had to be sanitised.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// found reports whether s still holds a whole secret or a fragment.
func (r *redactor) found(s string) bool {
	return len(r.ranges(s)) > 0
}

// redact replaces every secret and fragment in s with the mark; adjacent or
// overlapping finds become one mark.
func (r *redactor) redact(s string) string {
	rs := r.ranges(s)
	if len(rs) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, rg := range rs {
		b.WriteString(s[last:rg[0]])
		b.WriteString(redactedMark)
		last = rg[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// ranges returns the merged, sorted byte ranges of s to redact.
func (r *redactor) ranges(s string) [][2]int {
	if len(r.needles) == 0 || s == "" {
		return nil
	}
	var marks []bool // marks[i]: byte i of s is redacted
	mark := func(from, to int) {
		if marks == nil {
			marks = make([]bool, len(s))
		}
		for i := from; i < to; i++ {
			marks[i] = true
		}
	}
	raw := identityView(s, 0, len(s))
	views := applyChains(raw, 0)
	searched := map[*view]bool{}
	for _, v := range views {
		// A decoding that changes nothing returns its input: search once.
		if !searched[v] {
			searched[v] = true
			r.search(v, mark)
		}
	}
	// The other readings of the text: from every byte inside an escape of
	// some view ("%0F%2f%22": "F%2f%22" may be a secret's "F/\"" whose
	// "F" follows a '%' of the text's). Decoding from there is searched
	// for a find that starts there; finds that start later are in the
	// views (decodings from a later byte inside an escape are tried too).
	inside := make([]bool, len(s))
	escaped := false
	for v := range searched {
		for i := range v.b {
			for k := v.start[i] + 1; k < v.end[i]; k++ {
				inside[k], escaped = true, true
			}
		}
	}
	for k := 0; escaped && k < len(s); k++ {
		if !inside[k] {
			continue
		}
		end := min(len(s), k+otherReadingLen)
		for _, w := range applyChains(identityView(s[k:end], k, len(s)), fragmentLen) {
			r.searchAtStart(w, end == len(s), mark)
		}
	}
	if marks == nil {
		return nil
	}
	var out [][2]int
	for i := 0; i < len(marks); i++ {
		if !marks[i] {
			continue
		}
		j := i
		for j < len(marks) && marks[j] {
			j++
		}
		out = append(out, [2]int{i, j})
		i = j
	}
	return out
}

// search marks, in the text under v, every whole needle, every fragment
// and a needle prefix at the end.
func (r *redactor) search(v *view, mark func(from, to int)) {
	b := v.b
	span := func(from, to int) { mark(v.start[from], v.end[to-1]) }
	for _, n := range r.needles {
		for off := 0; ; {
			i := bytes.Index(b[off:], n)
			if i < 0 {
				break
			}
			span(off+i, off+i+len(n))
			off += i + 1
		}
	}
	for i := 0; i+fragmentLen <= len(b); i++ {
		if _, ok := r.grams[binary.LittleEndian.Uint64(b[i:])]; ok {
			span(i, i+fragmentLen)
		}
	}
	for k, n := range r.needles {
		if p := tailPrefix(b, n, r.kmp[k]); p >= minTailLen && p < len(n) {
			// Up to the end of the text: an incomplete escape after the
			// prefix goes too.
			mark(v.start[len(b)-p], v.srcLen)
		}
	}
}

// searchAtStart marks a fragment, a whole needle or (when w reaches the
// end of the text) a needle's prefix that starts at the first byte of w.
func (r *redactor) searchAtStart(w *view, reachesEnd bool, mark func(from, to int)) {
	b := w.b
	if len(b) == 0 {
		return
	}
	if len(b) >= fragmentLen {
		if _, ok := r.grams[binary.LittleEndian.Uint64(b)]; ok {
			mark(w.start[0], w.end[fragmentLen-1])
		}
	}
	for _, n := range r.needles {
		switch {
		case bytes.HasPrefix(b, n):
			mark(w.start[0], w.end[len(n)-1])
		case reachesEnd && len(b) >= minTailLen && len(b) < len(n) && bytes.HasPrefix(n, b):
			mark(w.start[0], w.srcLen)
		}
	}
}

// applyChains returns v and the decodings of it that a server's echo can
// need: percent (with and without '+' as space), JSON, and both orders of
// the two.
// With limit > 0 each decoding stops after limit bytes (the first of two
// after 6*limit: a JSON escape is at most six bytes a byte).
func applyChains(v *view, limit int) []*view {
	first := 6 * limit
	pp, po, js := v.percentDecode(true, first), v.percentDecode(false, first), v.jsonUnescape(first)
	return []*view{v, pp, po, js,
		js.percentDecode(true, limit), js.percentDecode(false, limit),
		pp.jsonUnescape(limit), po.jsonUnescape(limit)}
}

// prefixFunction is the KMP failure function of n.
func prefixFunction(n []byte) []int {
	pi := make([]int, len(n))
	for i, k := 1, 0; i < len(n); i++ {
		for k > 0 && n[i] != n[k] {
			k = pi[k-1]
		}
		if n[i] == n[k] {
			k++
		}
		pi[i] = k
	}
	return pi
}

// tailPrefix returns the length of the longest prefix of n that b ends
// with (len(n) when b ends with n).
func tailPrefix(b, n []byte, pi []int) int {
	if len(n) == 0 {
		return 0
	}
	if len(b) > len(n) {
		b = b[len(b)-len(n):]
	}
	k := 0
	for _, c := range b {
		if k == len(n) {
			k = pi[k-1]
		}
		for k > 0 && c != n[k] {
			k = pi[k-1]
		}
		if c == n[k] {
			k++
		}
	}
	return k
}

// view is a decoding of a text: byte i of b came from text bytes
// [start[i], end[i]). srcLen is the length of the whole text.
type view struct {
	b          []byte
	start, end []int
	srcLen     int
	parent     *view
}

// identityView is the part s of a text of srcLen bytes that starts at off.
func identityView(s string, off, srcLen int) *view {
	v := &view{b: []byte(s), start: make([]int, len(s)), end: make([]int, len(s)), srcLen: srcLen}
	for i := range v.b {
		v.start[i], v.end[i] = off+i, off+i+1
	}
	return v
}

// newView returns an empty view to decode parent into, for up to limit
// bytes when limit > 0.
func newView(parent *view, limit int) *view {
	n := len(parent.b)
	if limit > 0 && limit < n {
		n = limit + utf8.UTFMax
	}
	return &view{b: make([]byte, 0, n), start: make([]int, 0, n), end: make([]int, 0, n), srcLen: parent.srcLen, parent: parent}
}

// add appends c, decoded from the parent's bytes [pFrom, pTo).
func (v *view) add(c byte, pFrom, pTo int) {
	v.b = append(v.b, c)
	v.start = append(v.start, v.parent.start[pFrom])
	v.end = append(v.end, v.parent.end[pTo-1])
}

// percentDecode decodes %XX (either case) and, with plus, '+' as a space,
// up to limit bytes when limit > 0.
// An incomplete escape at the end is dropped. A text without '%' (and
// '+') is its own decoding: v itself is returned.
func (v *view) percentDecode(plus bool, limit int) *view {
	if bytes.IndexByte(v.b, '%') < 0 && (!plus || bytes.IndexByte(v.b, '+') < 0) {
		return v
	}
	out := newView(v, limit)
	b := v.b
	for i := 0; i < len(b) && (limit <= 0 || len(out.b) < limit); i++ {
		switch {
		case b[i] == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			out.add(unhex(b[i+1])<<4|unhex(b[i+2]), i, i+3)
			i += 2
		case b[i] == '%' && (i+1 == len(b) || i+2 == len(b) && isHex(b[i+1])):
			return out
		case plus && b[i] == '+':
			out.add(' ', i, i+1)
		default:
			out.add(b[i], i, i+1)
		}
	}
	return out
}

// jsonUnescape decodes (up to limit bytes when limit > 0) the escapes of
// a JSON string: \" \\ \/ \b \f \n \r
// \t and \uXXXX (either case, surrogate pairs joined; a lone surrogate
// becomes U+FFFD as in encoding/json). An incomplete escape at the end is
// dropped. A text without a backslash is returned as it is.
func (v *view) jsonUnescape(limit int) *view {
	if bytes.IndexByte(v.b, '\\') < 0 {
		return v
	}
	out := newView(v, limit)
	b := v.b
	for i := 0; i < len(b) && (limit <= 0 || len(out.b) < limit); i++ {
		if b[i] != '\\' {
			out.add(b[i], i, i+1)
			continue
		}
		if i+1 == len(b) {
			return out
		}
		var c byte
		switch b[i+1] {
		case '"', '\\', '/':
			c = b[i+1]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, ok, complete := hex4(b[i+2:])
			if !complete {
				return out
			}
			if !ok {
				out.add(b[i], i, i+1)
				continue
			}
			n := 6
			if utf16.IsSurrogate(r) {
				r2, ok2, complete2 := rune(0), false, true
				if len(b) > i+7 && b[i+6] == '\\' && b[i+7] == 'u' {
					r2, ok2, complete2 = hex4(b[i+8:])
				} else if len(b) == i+6 || len(b) == i+7 && b[i+6] == '\\' {
					complete2 = false
				}
				if !complete2 {
					return out
				}
				if d := utf16.DecodeRune(r, r2); ok2 && d != utf8.RuneError {
					r, n = d, 12
				} else {
					r = utf8.RuneError
				}
			}
			var enc [utf8.UTFMax]byte
			for _, c := range enc[:utf8.EncodeRune(enc[:], r)] {
				out.add(c, i, i+n)
			}
			i += n - 1
			continue
		default:
			out.add(b[i], i, i+1)
			continue
		}
		out.add(c, i, i+2)
		i++
	}
	return out
}

// hex4 reads four hex digits at the start of b. complete is false when b
// ends before a non-hex byte or the fourth digit.
func hex4(b []byte) (r rune, ok, complete bool) {
	for i := 0; i < 4; i++ {
		if i == len(b) {
			return 0, false, false
		}
		if !isHex(b[i]) {
			return 0, false, true
		}
		r = r<<4 | rune(unhex(b[i]))
	}
	return r, true, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
