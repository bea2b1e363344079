package cut

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"slices"

	"proctrail/formats"
	"proctrail/replay"
)

// redactor masks the text its patterns match: each byte of a match
// becomes '*', so that every field keeps its length (an audit record's
// netlink length, a comm's 16 bytes, an EXECVE argument's a1_len stay
// true) and every encoding stays valid. It counts the fields it masked.
type redactor struct {
	res []*regexp.Regexp
	buf []byte
}

// mask masks b in place and reports whether it masked anything. Empty
// matches mask nothing.
func (r *redactor) mask(b []byte) bool {
	hit := false
	for _, re := range r.res {
		for _, m := range re.FindAllIndex(b, -1) {
			if m[0] == m[1] {
				continue
			}
			for i := m[0]; i < m[1]; i++ {
				b[i] = '*'
			}
			hit = true
		}
	}
	return hit
}

// maskString is mask for a string field; it counts into n.
func (r *redactor) maskString(s *string, n *uint64) {
	b := []byte(*s)
	if r.mask(b) {
		*s = string(b)
		*n++
	}
}

// procEvent masks the comm of a connector comm event in msg, in place,
// and returns how many fields it masked.
func (r *redactor) procEvent(msg []byte) uint64 {
	c := replay.ProcEventComm(msg)
	if c == nil {
		return 0
	}
	if i := bytes.IndexByte(c, 0); i >= 0 {
		c = c[:i]
	}
	if r.mask(c) {
		return 1
	}
	return 0
}

// procRecord masks the strings of a procfs record and returns its new
// encoding, and how many fields it masked.
func (r *redactor) procRecord(raw []byte) ([]byte, uint64, error) {
	var p formats.ProcRecord
	if err := p.UnmarshalBinary(raw); err != nil {
		return nil, 0, err
	}
	var n uint64
	for _, s := range []*string{&p.Comm, &p.Exe, &p.Cwd, &p.Root, &p.Cgroup, &p.Mountinfo} {
		r.maskString(s, &n)
	}
	p.Cmdline = slices.Clone(p.Cmdline)
	for i := range p.Cmdline {
		r.maskString(&p.Cmdline[i], &n)
	}
	if n == 0 {
		return raw, 0, nil
	}
	out, err := p.AppendBinary(nil)
	return out, n, err
}

// auditKeys are the keys of the audit fields that hold names, paths,
// arguments and hosts: the strings the kernel logs with
// audit_log_untrustedstring (quoted, or hex when they hold special
// bytes), and the user-space records' account and host fields.
var auditKeys = map[string]bool{
	"comm": true, "ocomm": true, "exe": true, "name": true, "cwd": true,
	"proctitle": true, "cmd": true, "path": true,
	"hostname": true, "addr": true, "terminal": true, "acct": true,
}

// auditRecord masks the string fields of an audit message (a netlink
// header and the record's text) in place, and returns how many it
// masked. EXECVE arguments (aN, and the aN[i] pieces of a long one, each
// on its own) are masked too; a match that spans two pieces of one long
// argument is not seen.
func (r *redactor) auditRecord(msg []byte) uint64 {
	if len(msg) <= 16 {
		return 0
	}
	text := msg[16:]
	var n uint64
	for i := 0; i < len(text); {
		// A key starts the text or follows a space or the quote of msg='.
		if i > 0 && text[i-1] != ' ' && text[i-1] != '\'' {
			i++
			continue
		}
		eq := bytes.IndexByte(text[i:], '=')
		sp := bytes.IndexByte(text[i:], ' ')
		if eq < 0 || (sp >= 0 && sp < eq) {
			if sp < 0 {
				break
			}
			i += sp + 1
			continue
		}
		key := string(text[i : i+eq])
		v := i + eq + 1
		end := fieldEnd(text, v)
		if auditKeys[key] || execveArg(key) {
			if r.auditValue(text[v:end]) {
				n++
			}
		}
		i = end
	}
	return n
}

// fieldEnd is where the value starting at v ends: after its closing
// quote, or at the next space.
func fieldEnd(text []byte, v int) int {
	if v < len(text) && (text[v] == '"' || text[v] == '\'') {
		if text[v] == '\'' {
			return v + 1 // msg='…': its fields are scanned one by one
		}
		if j := bytes.IndexByte(text[v+1:], '"'); j >= 0 {
			return v + 1 + j + 1
		}
		return len(text)
	}
	if j := bytes.IndexByte(text[v:], ' '); j >= 0 {
		return v + j
	}
	return len(text)
}

// auditValue masks one value in place: a quoted string's content, or a
// hex-encoded string decoded, masked and encoded again; a bare word that
// is not hex as it is.
func (r *redactor) auditValue(val []byte) bool {
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		return r.mask(val[1 : len(val)-1])
	}
	if len(val) > 0 && len(val)%2 == 0 && isUpperHex(val) {
		r.buf = slices.Grow(r.buf[:0], len(val)/2)[:len(val)/2]
		if _, err := hex.Decode(r.buf, val); err == nil && r.mask(r.buf) {
			hexUpper(val, r.buf)
			return true
		}
		return false
	}
	if string(val) == "?" || string(val) == "(null)" {
		return false
	}
	return r.mask(val)
}

func isUpperHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// hexUpper writes src into dst as the kernel's audit_log_n_hex does:
// upper-case, two digits a byte.
func hexUpper(dst, src []byte) {
	const digits = "0123456789ABCDEF"
	for i, c := range src {
		dst[2*i], dst[2*i+1] = digits[c>>4], digits[c&0xF]
	}
}

// execveArg reports whether key is an EXECVE argument: aN, or aN[i].
func execveArg(key string) bool {
	if len(key) < 2 || key[0] != 'a' {
		return false
	}
	k := key[1:]
	j := 0
	for j < len(k) && k[j] >= '0' && k[j] <= '9' {
		j++
	}
	if j == 0 {
		return false
	}
	if j == len(k) {
		return true
	}
	rest := k[j:]
	if len(rest) < 3 || rest[0] != '[' || rest[len(rest)-1] != ']' {
		return false
	}
	for _, c := range rest[1 : len(rest)-1] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
