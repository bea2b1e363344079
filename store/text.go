package store

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Strings from a capture are bytes: a path or an argument may hold bytes
// that are not UTF-8, or a NUL, which PostgreSQL's text refuses. They are
// stored reversibly, as Python's surrogateescape does, but with code
// points both databases accept: each such byte b becomes U+10FF00+b (a
// private-use code point of plane 16), and a code point of that range
// already in the string is escaped as U+10FF01 (never a byte of its own:
// 0x01 is valid UTF-8) followed by U+10FF00 plus its low byte. A string
// that is valid UTF-8 without NUL and without those code points, that is
// every string of an ordinary capture, is stored unchanged.

const (
	escBase = 0x10FF00 // U+10FF00+b stands for the byte b
	escRune = 0x10FF01 // followed by escBase+x: the code point escBase+x itself
)

// encodeText returns s in the stored form.
func encodeText(s string) string {
	clean := true
	for i := 0; i < len(s); {
		c := s[i]
		if c != 0 && c < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if c == 0 || (r == utf8.RuneError && n == 1) || r >= escBase {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == 0 || (r == utf8.RuneError && n == 1):
			b.WriteRune(escBase + rune(c))
			i++
			continue
		case r >= escBase:
			b.WriteRune(escRune)
			b.WriteRune(escBase + (r - escBase))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// decodeText undoes encodeText.
func decodeText(s string) string {
	if !hasEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == escRune && i+n < len(s):
			r2, n2 := utf8.DecodeRuneInString(s[i+n:])
			if r2 >= escBase {
				b.WriteRune(r2)
				i += n + n2
				continue
			}
			b.WriteByte(byte(r - escBase))
		case r >= escBase && r <= escBase+0xFF:
			b.WriteByte(byte(r - escBase))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// hasEscape reports whether s may hold an escape: the UTF-8 encoding of
// every code point from U+10FF00 begins with 0xF4 0x8F 0xBC..0xBF.
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, 0xF4); i >= 0 && i+2 < len(s); {
		if s[i+1] == 0x8F && s[i+2] >= 0xBC {
			return true
		}
		j := strings.IndexByte(s[i+1:], 0xF4)
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// encodeArgv returns argv as the JSON array stored, each string in the
// stored form (so the JSON holds no invalid UTF-8 and no \u0000).
func encodeArgv(argv []string) string {
	if len(argv) == 0 {
		return "[]"
	}
	enc := make([]string, len(argv))
	for i, a := range argv {
		enc[i] = encodeText(a)
	}
	// Without HTML escaping: "a && b" stays as it is, for LIKE.
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(enc) // cannot fail on strings
	return strings.TrimSuffix(b.String(), "\n")
}

// decodeArgv undoes encodeArgv; an empty array is nil, as analyze has it.
func decodeArgv(s string) ([]string, error) {
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, nil
	}
	for i := range argv {
		argv[i] = decodeText(argv[i])
	}
	return argv, nil
}

// splitTime splits ns since the epoch into whole microseconds and the
// nanoseconds past them (0–999).
func splitTime(ns int64) (us int64, nsec int64) {
	us = ns / 1000
	nsec = ns % 1000
	if nsec < 0 {
		us--
		nsec += 1000
	}
	return us, nsec
}

// appendTime appends ns (since the epoch) as SQLite holds times: RFC
// 3339 in UTC, always nine fractional digits, so that text order is time
// order ("2006-01-02T15:04:05.000000000Z"), without time.Format's cost.
func appendTime(dst []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	dst = time.Unix(sec, 0).UTC().AppendFormat(dst, "2006-01-02T15:04:05")
	var f [11]byte
	f[0], f[10] = '.', 'Z'
	for i := 9; i >= 1; i-- {
		f[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, f[:]...)
}
