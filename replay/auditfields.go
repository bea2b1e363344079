package replay

import (
	"encoding/hex"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// pairs yields the key=value pairs of a record body in order, values with
// their quotes. The kernel writes a value either "quoted" (it never
// contains a double quote: audit_log_untrustedstring hex-encodes such
// strings), as bare hex, or as a bare token; userspace records nest a
// 'single-quoted' msg. Words without '=' (an AVC's "avc:  denied  { read }
// for") are skipped, and an unterminated quote runs to the end.
func pairs(s string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for {
			s = strings.TrimLeft(s, " \t\n")
			if s == "" {
				return
			}
			i := strings.IndexAny(s, "= \t\n")
			if i < 0 {
				return
			}
			if s[i] != '=' || i == 0 {
				s = s[i+1:]
				continue
			}
			key := s[:i]
			s = s[i+1:]
			var v string
			if s != "" && (s[0] == '"' || s[0] == '\'') {
				if j := strings.IndexByte(s[1:], s[0]); j >= 0 {
					v, s = s[:j+2], s[j+2:]
				} else {
					v, s = s, ""
				}
			} else if j := strings.IndexAny(s, " \t\n"); j >= 0 {
				v, s = s[:j], s[j:]
			} else {
				v, s = s, ""
			}
			if !yield(key, v) {
				return
			}
		}
	}
}

// unquote removes a value's surrounding quotes and reports whether it had
// them. A lone or unterminated quote is removed too.
func unquote(v string) (string, bool) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return v, false
	}
	q := v[0]
	v = v[1:]
	if v != "" && v[len(v)-1] == q {
		v = v[:len(v)-1]
	}
	return v, true
}

// splitPairs is pairs with the quotes removed, later keys overriding
// earlier ones.
func splitPairs(s string) map[string]string {
	out := map[string]string{}
	for k, v := range pairs(s) {
		out[k], _ = unquote(v)
	}
	return out
}

// decodeArg decodes one EXECVE value: quoted text as is, bare text as the
// hex the kernel writes for arguments with spaces, quotes, control or
// non-ASCII bytes. Bare text that is not hex is kept as written. It also
// returns the value's length as the kernel counts it in aN_len (the quoted
// text's bytes, or the hex digits).
func decodeArg(v string) (string, int) {
	s, quoted := unquote(v)
	if quoted {
		return s, len(s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return s, len(s)
	}
	return string(b), len(s)
}

// argBuf collects one argument of an EXECVE record set.
type argBuf struct {
	whole   *string        // aN=
	chunks  map[int]string // aN[i]=, decoded
	encLen  int            // sum of the chunks' lengths as the kernel counts them
	wantLen int            // aN_len, or -1
}

// parseArgKey splits an EXECVE key: "a3" → (3, -1, ""), "a3[2]" → (3, 2,
// ""), "a3_len" → (3, -1, "_len"). ok is false for other keys.
func parseArgKey(k string) (arg, chunk int, suffix string, ok bool) {
	if len(k) < 2 || k[0] != 'a' {
		return 0, 0, "", false
	}
	k = k[1:]
	n := 0
	for n < len(k) && k[n] >= '0' && k[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return 0, 0, "", false
	}
	arg, _ = strconv.Atoi(k[:n])
	rest := k[n:]
	switch {
	case rest == "":
		return arg, -1, "", true
	case rest == "_len":
		return arg, -1, "_len", true
	case len(rest) >= 3 && rest[0] == '[' && rest[len(rest)-1] == ']':
		c, err := strconv.Atoi(rest[1 : len(rest)-1])
		if err != nil || c < 0 || len(rest) > 11 {
			return 0, 0, "", false
		}
		return arg, c, "", true
	}
	return 0, 0, "", false
}

// Argv rebuilds the argument vector of an execve from the event's EXECVE
// records, in order. It handles what auparse does not: an argument longer
// than the kernel's record space is split into aN[0], aN[1]… (announced by
// aN_len, in hex or quoted chunks), and one execve's arguments may span
// several EXECVE records. Hex-encoded arguments are decoded; they may hold
// any bytes but NUL.
//
// Argv returns nil, nil when the event has no EXECVE record. It returns an
// error wrapping ErrMalformed, and no argv, when argc is missing or
// invalid, an argument or chunk is missing (a lost record), or chunks add
// up to less than aN_len. The slice is new and owned by the caller.
func (e AuditEvent) Argv() ([]string, error) {
	argc := -1
	args := map[int]*argBuf{}
	seen := false
	for _, r := range e.Records {
		if r.Type != auparse.AUDIT_EXECVE {
			continue
		}
		seen = true
		for k, v := range pairs(afterHeader(r.Text)) {
			if k == "argc" {
				n, err := strconv.ParseUint(v, 10, 31)
				if err != nil {
					return nil, fmt.Errorf("%w: EXECVE argc=%q", ErrMalformed, v)
				}
				argc = int(n)
				continue
			}
			arg, chunk, suffix, ok := parseArgKey(k)
			if !ok {
				continue
			}
			a := args[arg]
			if a == nil {
				a = &argBuf{wantLen: -1}
				args[arg] = a
			}
			switch {
			case suffix == "_len":
				n, err := strconv.ParseUint(v, 10, 31)
				if err != nil {
					return nil, fmt.Errorf("%w: EXECVE %s=%q", ErrMalformed, k, v)
				}
				a.wantLen = int(n)
			case chunk < 0:
				s, _ := decodeArg(v)
				a.whole = &s
			default:
				if a.chunks == nil {
					a.chunks = map[int]string{}
				}
				s, n := decodeArg(v)
				a.chunks[chunk] = s
				a.encLen += n
			}
		}
	}
	if !seen {
		return nil, nil
	}
	if argc < 0 {
		return nil, fmt.Errorf("%w: EXECVE records without argc", ErrMalformed)
	}
	if argc > len(args) {
		return nil, fmt.Errorf("%w: EXECVE argc=%d but %d arguments recorded", ErrMalformed, argc, len(args))
	}
	argv := make([]string, argc)
	for i := range argv {
		a := args[i]
		switch {
		case a == nil:
			return nil, fmt.Errorf("%w: EXECVE argument a%d missing", ErrMalformed, i)
		case a.whole != nil && a.chunks != nil:
			return nil, fmt.Errorf("%w: EXECVE argument a%d both whole and split", ErrMalformed, i)
		case a.whole != nil:
			argv[i] = *a.whole
		case a.chunks == nil:
			return nil, fmt.Errorf("%w: EXECVE argument a%d has only a%d_len", ErrMalformed, i, i)
		default:
			if a.encLen < a.wantLen {
				return nil, fmt.Errorf("%w: EXECVE argument a%d has %d of a%d_len=%d", ErrMalformed, i, a.encLen, i, a.wantLen)
			}
			var sb strings.Builder
			for c := range len(a.chunks) {
				s, ok := a.chunks[c]
				if !ok {
					return nil, fmt.Errorf("%w: EXECVE chunk a%d[%d] missing", ErrMalformed, i, c)
				}
				sb.WriteString(s)
			}
			argv[i] = sb.String()
		}
	}
	return argv, nil
}
