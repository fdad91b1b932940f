package tokencache

import (
	"bytes"
	"unicode/utf8"
)

// HTML character references for the redactor: a token endpoint behind an
// HTML error page, or one that HTML-escapes what it puts in a message,
// writes a secret's characters as &#104; &#x68; &#X68; or &lt; &amp; ...

// maxRefDigits is the most digits a numeric reference may have (leading
// zeros included) to be decoded: enough for any padding an encoder uses
// ("&#x0000E9;"), and it bounds a reference to maxRefLen bytes, which the
// decoding limits in applyChains rely on.
const (
	maxRefDigits = 8
	maxRefLen    = len("&#x;") + maxRefDigits
)

// htmlEntities are the named references decoded: those of the characters
// HTML escapers replace. The names are matched in any case (HTML has &AMP;
// &LT; &GT; &QUOT; too). None is a prefix of another.
var htmlEntities = []struct {
	name string
	c    byte
}{{"amp", '&'}, {"apos", '\''}, {"gt", '>'}, {"lt", '<'}, {"quot", '"'}}

// htmlUnescape decodes (up to limit bytes when limit > 0) the character
// references of HTML: decimal &#NNN; and hex &#xHH; or &#XHH; (either case,
// up to maxRefDigits digits, the ';' optional as in HTML; 0, a surrogate or
// a value beyond U+10FFFF becomes U+FFFD) and the named ones above (the ';'
// optional). A reference cut by the end of the text (or one without its
// ';' there, which may be cut) is dropped, like an incomplete escape in the
// other decodings. A '&' that starts no reference is kept. A text without
// '&' is returned as it is.
func (v *view) htmlUnescape(limit int) *view {
	if bytes.IndexByte(v.b, '&') < 0 {
		return v
	}
	out := newView(v, limit)
	b := v.b
	for i := 0; i < len(b) && (limit <= 0 || len(out.b) < limit); i++ {
		if b[i] != '&' {
			out.add(b[i], i, i+1)
			continue
		}
		r, n, complete := htmlReference(b[i:])
		if !complete {
			return out
		}
		if n == 0 {
			out.add('&', i, i+1)
			continue
		}
		var enc [utf8.UTFMax]byte
		for _, c := range enc[:utf8.EncodeRune(enc[:], r)] {
			out.add(c, i, i+n)
		}
		i += n - 1
	}
	return out
}

// htmlReference reads the reference at the start of b, which starts with
// '&': its rune and length, n == 0 when there is none. complete is false
// when the end of b leaves it open.
func htmlReference(b []byte) (r rune, n int, complete bool) {
	if len(b) > 1 && b[1] == '#' {
		i, base := 2, int64(10)
		if len(b) > 2 && (b[2] == 'x' || b[2] == 'X') {
			i, base = 3, 16
		}
		j, val := i, int64(0)
		for ; j < len(b) && j-i <= maxRefDigits; j++ {
			c := b[j]
			if base == 10 && (c < '0' || c > '9') || !isHex(c) {
				break
			}
			val = val*base + int64(unhex(c))
		}
		switch {
		case j-i > maxRefDigits:
			return 0, 0, true
		case j == len(b):
			return 0, 0, false
		case j == i:
			return 0, 0, true
		}
		if b[j] == ';' {
			j++
		}
		if val == 0 || val > utf8.MaxRune || !utf8.ValidRune(rune(val)) {
			return utf8.RuneError, j, true
		}
		return rune(val), j, true
	}
	for _, e := range htmlEntities {
		k := min(len(b)-1, len(e.name))
		if !bytes.EqualFold(b[1:1+k], []byte(e.name[:k])) {
			continue
		}
		n := 1 + len(e.name)
		if n >= len(b) {
			return 0, 0, false
		}
		if b[n] == ';' {
			n++
		}
		return rune(e.c), n, true
	}
	return 0, 0, true
}
