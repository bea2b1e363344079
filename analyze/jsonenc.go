package analyze

import (
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonEnc: the streaming JSON encoder the output writes with (indented
// as encoding/json.MarshalIndent with two spaces, the same bytes).

// jsonEnc appends the document to buf and writes buf out whenever it
// passes jsonChunk. After a write error it stops writing and keeps err.
type jsonEnc struct {
	w     io.Writer
	buf   []byte
	err   error
	depth int
	first bool // no member written yet in the innermost object or array
	// The date and time to the second of the last time written, and which
	// second it was: most times of a capture share their second with the
	// one before.
	sec    int64
	secStr []byte
	// moreFiles, when set, yields the files of the next process after its
	// Files; process clears it.
	moreFiles func(yield func(*File) bool)
	// moreNet, when set, yields the network entries of the next process
	// after its Net, at least one; process clears it.
	moreNet func(yield func(*NetEntry) bool)
}

func newJSONEnc(w io.Writer) *jsonEnc {
	return &jsonEnc{w: w, buf: make([]byte, 0, jsonChunk+4096)}
}

// end finishes the document and writes out what is left.
func (e *jsonEnc) end() error {
	e.close('}')
	e.buf = append(e.buf, '\n')
	e.flush()
	if e.err != nil {
		return fmt.Errorf("analyze: json: %w", e.err)
	}
	return nil
}

func (e *jsonEnc) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

func (e *jsonEnc) newline() {
	if len(e.buf) >= jsonChunk {
		e.flush()
	}
	e.buf = append(e.buf, '\n')
	for n := 2 * e.depth; n > 0; n -= len(jsonIndent) {
		e.buf = append(e.buf, jsonIndent[:min(n, len(jsonIndent))]...)
	}
}

// open starts an object or array; close ends it, "{}" or "[]" when empty.
func (e *jsonEnc) open(c byte) {
	e.buf = append(e.buf, c)
	e.depth++
	e.first = true
}

func (e *jsonEnc) close(c byte) {
	e.depth--
	if !e.first {
		e.newline()
	}
	e.buf = append(e.buf, c)
	e.first = false
}

// elem starts an element of an array.
func (e *jsonEnc) elem() {
	if !e.first {
		e.buf = append(e.buf, ',')
	}
	e.first = false
	e.newline()
}

// key starts a member of an object; name needs no escaping.
func (e *jsonEnc) key(name string) {
	e.elem()
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, `": `...)
}

// time writes t (ns since the Unix epoch) with TimeLayout.
func (e *jsonEnc) time(t int64) {
	sec, ns := t/1e9, t%1e9
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	if e.secStr == nil || sec != e.sec {
		e.sec = sec
		e.secStr = time.Unix(sec, 0).UTC().AppendFormat(e.secStr[:0], "2006-01-02T15:04:05")
	}
	e.buf = append(e.buf, '"')
	e.buf = append(e.buf, e.secStr...)
	var frac [11]byte
	frac[0], frac[10] = '.', 'Z'
	for i := 9; i >= 1; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	e.buf = append(e.buf, frac[:]...)
	e.buf = append(e.buf, '"')
}

// optTime writes t, or null for 0 (unknown or not yet).
func (e *jsonEnc) optTime(t int64) {
	if t == 0 {
		e.null()
		return
	}
	e.time(t)
}

func (e *jsonEnc) strings(s []string) {
	e.open('[')
	for _, v := range s {
		e.elem()
		e.str(v)
	}
	e.close(']')
}

func (e *jsonEnc) str(s string) { e.buf = appendJSONString(e.buf, s) }

func (e *jsonEnc) int(n int64) { e.buf = strconv.AppendInt(e.buf, n, 10) }

func (e *jsonEnc) uint(n uint64) { e.buf = strconv.AppendUint(e.buf, n, 10) }

func (e *jsonEnc) bool(b bool) { e.buf = strconv.AppendBool(e.buf, b) }

func (e *jsonEnc) null() { e.buf = append(e.buf, "null"...) }

// optStr writes the member key: v, unless v is empty.
func (e *jsonEnc) optStr(key, v string) {
	if v != "" {
		e.key(key)
		e.str(v)
	}
}

// appendJSONString appends s quoted as encoding/json writes it without
// HTML escaping: \b \f \n \r \t and \uXXXX for other control characters,
// U+FFFD for each invalid UTF-8 byte, and U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
