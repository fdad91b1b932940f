package tokencache

import (
	"bytes"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Decodings of a text for the redactor: each decoded byte remembers which
// bytes of the original text it came from, so a secret found in a decoding
// can be blanked out in the original.

// escapeStarts are the bytes that start an escape in some decoding.
const escapeStarts = "%+\\&"

// applyChains returns v and the decodings of it that a server's echo can
// need: percent (with and without '+' as space), JSON, HTML, and each of
// those followed by another kind (both orders of every pair), each once.
// With limit > 0 each decoding stops after limit bytes (the first of two
// after maxRefLen*limit: an escape of the second is at most that long).
func applyChains(v *view, limit int) []*view {
	first := maxRefLen * limit
	pp, po := v.percentDecode(true, first), v.percentDecode(false, first)
	js, h := v.jsonUnescape(first), v.htmlUnescape(first)
	out := make([]*view, 0, 15)
	add := func(ws ...*view) {
		for _, w := range ws {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	add(v, pp, po, js, h)
	// A decoding that changes nothing returns v, whose decodings are above.
	if js != v {
		add(js.percentDecode(true, limit), js.percentDecode(false, limit), js.htmlUnescape(limit))
	}
	if h != v {
		add(h.percentDecode(true, limit), h.percentDecode(false, limit), h.jsonUnescape(limit))
	}
	if pp != v {
		add(pp.jsonUnescape(limit), pp.htmlUnescape(limit))
	}
	if po != v {
		add(po.jsonUnescape(limit), po.htmlUnescape(limit))
	}
	return out
}

// view is a decoding of a text: byte i of b came from text bytes
// [start[i], end[i]) (int32: the text is bounded by sanitize). srcLen is
// the length of the whole text.
type view struct {
	b          []byte
	start, end []int32
	srcLen     int
	parent     *view
}

// identityView is the text s itself.
func identityView(s string) *view {
	v := &view{b: []byte(s), start: make([]int32, len(s)), end: make([]int32, len(s)), srcLen: len(s)}
	for i := range v.b {
		v.start[i], v.end[i] = int32(i), int32(i+1)
	}
	return v
}

// slice is the part [from, to) of the text of the identity view v.
func (v *view) slice(from, to int) *view {
	return &view{b: v.b[from:to], start: v.start[from:to], end: v.end[from:to], srcLen: v.srcLen}
}

// newView returns an empty view to decode parent into, for up to limit
// bytes when limit > 0.
func newView(parent *view, limit int) *view {
	n := len(parent.b)
	if limit > 0 && limit < n {
		n = limit + utf8.UTFMax
	}
	return &view{b: make([]byte, 0, n), start: make([]int32, 0, n), end: make([]int32, 0, n), srcLen: parent.srcLen, parent: parent}
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
