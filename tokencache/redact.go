package tokencache

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// Redaction of secrets from text a token endpoint sent back.
//
// A server may echo what it received: the form body (percent-encoded, with
// '+' or "%20" for a space and upper- or lower-case hex), the body again
// JSON-escaped inside its JSON answer, an HTML page or HTML-escaped text
// quoting it, or the Authorization header (base64 of the form-encoded
// client ID and secret). Matching every encoding by building it would miss
// the variants an encoder is free to choose, so the text is decoded
// instead: it is searched as it is and through a few decoded views
// (percent-decoding with and without '+' as space, JSON string unescaping,
// HTML character references, and each of those followed by another kind),
// each of which remembers which bytes of the text every decoded byte came
// from. A secret found in a view is redacted in the text. Because a byte
// inside an escape may also be read as the start of a secret ("%0F%2f": an
// "F", then "/"), decoding is also tried from every such byte. Base64 is
// not decoded: the strings base64 of a secret can show are searched for
// instead (requestSecrets).
//
// Besides whole secrets, two kinds of fragment are redacted: any run of
// fragmentLen bytes of a secret, wherever it is (a server that cuts or
// wraps its echo must not leak most of a secret), and a prefix of at least
// minTailLen bytes of a secret at the very end of the text (a server, or
// the shortening here, that cut the text inside a secret). A secret
// shorter than minSecretLen is not searched for at all; only a text that
// is nothing but that secret is redacted.

const (
	// fragmentLen is the length of the secret fragments redacted wherever
	// they appear. It is also the size of the packed keys in redactor.grams.
	fragmentLen = 8
	// minTailLen is the shortest prefix of a secret redacted at the end of
	// a text.
	minTailLen = 4
	// minSecretLen is the shortest secret searched for in a text. A
	// shorter one would be found in ordinary words and in every escape
	// ("or", "%2F"): each find would garble the message, and where the
	// marks land would tell which characters the secret is made of. Nor
	// would marking protect it: fewer than minTailLen bytes of a secret,
	// as a prefix cut at the end, are left in clear anyway, and a secret
	// of three printable characters falls to under a million guesses. No
	// GroupID password, client secret or token is that short. Such a
	// secret is still never a whole text on its own (see shortSecret).
	minSecretLen = minTailLen
	// redactedMark replaces every secret.
	redactedMark = "(redacted)"
	// maxErrText bounds the text of a transport error kept in an *Error.
	maxErrText = 300
	// maxReason bounds an *Error's Reason.
	maxReason = 200
	// otherReadingLen is how much text is decoded from a byte inside an
	// escape: enough for fragmentLen bytes through two decodings (a byte
	// as an HTML reference of maxRefLen bytes, then each of those
	// percent-encoded, is 3*maxRefLen bytes).
	otherReadingLen = fragmentLen * 3 * maxRefLen
	// maxShortView bounds the text compared, decoded, with the secrets
	// shorter than minSecretLen: no two decodings make one out of more.
	maxShortView = (minSecretLen - 1) * 3 * maxRefLen
)

// redactor finds secrets in text. The zero value, and a redactor without
// secrets, redacts nothing.
type redactor struct {
	// short holds the secrets shorter than minSecretLen, needles the
	// others.
	short   []string
	needles [][]byte
	// kmp[i] is the prefix function of needles[i], for the tail check.
	kmp [][]int
	// grams holds every fragmentLen-byte window of every needle.
	grams map[uint64]struct{}
	// starts[c]: a needle or a window in grams starts with c.
	starts [256]bool
}

// newRedactor returns a redactor for the given secrets; empty ones are
// ignored, duplicates dropped and those shorter than minSecretLen kept
// apart.
func newRedactor(secrets ...string) *redactor {
	r := &redactor{grams: map[uint64]struct{}{}}
	seen := map[string]bool{}
	for _, s := range secrets {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if len(s) < minSecretLen {
			r.short = append(r.short, s)
			continue
		}
		n := []byte(s)
		r.needles = append(r.needles, n)
		r.kmp = append(r.kmp, prefixFunction(n))
		r.starts[n[0]] = true
		for i := 0; i+fragmentLen <= len(n); i++ {
			r.grams[binary.LittleEndian.Uint64(n[i:])] = struct{}{}
			r.starts[n[i]] = true
		}
	}
	return r
}

// sanitize makes server-provided text safe to log: printable ASCII only, at
// most max bytes, with every secret (raw, encoded, or a fragment as
// described above) replaced by "(redacted)". Secrets are removed both
// before and after other bytes become '?', so that a server cannot rebuild
// a secret by splicing control characters into it, and before the text is
// shortened, so that shortening cannot leave a long part of one; what is
// left at the cut is checked again. A text that is, or comes out as,
// nothing but a secret shorter than minSecretLen (raw or decoded, spaces
// around it aside) becomes "(redacted)" too.
func sanitize(s string, max int, secrets []string) string {
	return newRedactor(secrets...).sanitize(s, max)
}

func (r *redactor) sanitize(s string, max int) string {
	if r.shortSecret(s) {
		return markWithin(max)
	}
	if s = r.sanitizeText(s, max); r.shortSecret(s) {
		return markWithin(max)
	}
	return s
}

// sanitizeText is sanitize but for the secrets shorter than minSecretLen.
func (r *redactor) sanitizeText(s string, max int) string {
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
	raw := identityView(s)
	views := applyChains(raw, 0)
	for _, v := range views {
		r.search(v, mark)
	}
	// The other readings of the text: from every byte inside an escape of
	// some view ("%0F%2f%22": "F%2f%22" may be a secret's "F/\"" whose
	// "F" follows a '%' of the text's). Decoding from there is searched
	// for a find that starts there; finds that start later are in the
	// views (decodings from a later byte inside an escape are tried too).
	inside := make([]bool, len(s))
	escaped := false
	for _, v := range views {
		for i := range v.b {
			for k := v.start[i] + 1; k < v.end[i]; k++ {
				inside[k], escaped = true, true
			}
		}
	}
	for k := 0; escaped && k < len(s); k++ {
		// A byte that starts no escape is the first byte of every
		// decoding from it: no find starts there unless one starts with it.
		if !inside[k] || !r.starts[s[k]] && !strings.ContainsRune(escapeStarts, rune(s[k])) {
			continue
		}
		end := min(len(s), k+otherReadingLen)
		for _, w := range applyChains(raw.slice(k, end), fragmentLen) {
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
	span := func(from, to int) { mark(int(v.start[from]), int(v.end[to-1])) }
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
			mark(int(v.start[len(b)-p]), v.srcLen)
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
			mark(int(w.start[0]), int(w.end[fragmentLen-1]))
		}
	}
	for _, n := range r.needles {
		switch {
		case bytes.HasPrefix(b, n):
			mark(int(w.start[0]), int(w.end[len(n)-1]))
		case reachesEnd && len(b) >= minTailLen && len(b) < len(n) && bytes.HasPrefix(n, b):
			mark(int(w.start[0]), w.srcLen)
		}
	}
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
