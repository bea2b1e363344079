package replay

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// AuditRecord is one audit record: one netlink message from NETLINK_AUDIT,
// or one line of an auditd log. Its header (type, serial, time) is parsed
// when it is decoded; its key=value body only when Fields is called. Records
// from DecodeAuditMessage and ParseLogLine cache the parsed body, shared by
// their copies; records a Stream builds (which parses headers itself, without
// auparse) carry no cache and are parsed again on each Fields call.
//
// Records compare with go-cmp only with cmpopts.IgnoreUnexported(AuditRecord{}):
// the cached body is unexported. The zero AuditRecord has no header and no
// body.
type AuditRecord struct {
	// Type is the record type: the netlink message type, or the type= name
	// of a log line (UNKNOWN[1334] names a number).
	Type auparse.AuditMessageType
	// Serial is the audit event serial from the audit(SEC.MS:SERIAL)
	// header. The kernel's counter is 32 bits and wraps; records of one
	// event share it.
	Serial uint64
	// Time is the header's timestamp, in UTC. The kernel prints
	// milliseconds (three digits, which auparse reads as a count of
	// milliseconds, so "1.5" would mean 1.005 s).
	Time time.Time
	// Node is the node= name an auditd log line starts with when auditd's
	// name_format is set; empty for netlink messages.
	Node string
	// Text is the record text starting at "audit(", trailing NULs and
	// spaces removed. For an enriched log line it is the raw part only.
	Text string

	body *recordBody
}

// recordBody parses a record's fields once, safely for concurrent callers.
type recordBody struct {
	once   sync.Once
	msg    *auparse.AuditMessage
	fields map[string]string
	err    error
}

func newRecord(m *auparse.AuditMessage, node string) AuditRecord {
	return AuditRecord{
		Type:   m.RecordType,
		Serial: uint64(m.Sequence),
		Time:   m.Timestamp,
		Node:   node,
		Text:   trimText(m.RawData),
		body:   &recordBody{msg: m},
	}
}

// Fields returns the record's key=value pairs as go-libaudit's auparse
// decodes them (AuditMessage.Data): quotes removed; hex-encoded values
// decoded (EXECVE a0…, PATH name, PROCTITLE proctitle with NULs turned into
// spaces, CWD cwd, SYSCALL exe, USER_CMD cmd, TTY data); arch and syscall
// turned into names (arch=x86_64, syscall=execve); success/res replaced by
// result=success|fail; negative exit turned into an errno name; auid and
// ses of -1 turned into "unset"; SELinux contexts split into subj_user…;
// key= removed; values "", "?" and "(null)" dropped; a USER record's
// msg='…' flattened into the record.
//
// For a record with a cached body the first call parses and later calls
// return the same map, shared by every copy of the record; for one without
// (built by hand or by a Stream) each call parses anew. Callers must not
// modify the map. Fields is safe
// for concurrent use. It returns a nil map exactly when the error is
// non-nil. auparse fails on whole records it cannot enrich: a SYSCALL
// without arch, an EXECVE whose long argument was split into a1[0], a1[1]…
// (use [AuditEvent.Argv]), a SOCKADDR of an unknown size; RawFields still
// works then. An EOE record has no fields: an empty map.
func (r AuditRecord) Fields() (map[string]string, error) {
	b := r.body
	if b == nil {
		// A record built by hand: parse its Text now, without caching.
		m, err := auparse.Parse(r.Type, r.Text)
		if err != nil {
			return nil, fmt.Errorf("%w: audit %v record: %v", ErrMalformed, r.Type, err)
		}
		b = &recordBody{msg: m}
	}
	b.once.Do(func() {
		if b.msg.RecordType == auparse.AUDIT_EOE {
			b.fields = map[string]string{}
			return
		}
		f, err := b.msg.Data()
		if err != nil {
			b.err = fmt.Errorf("%w: audit %v record fields: %v", ErrMalformed, b.msg.RecordType, err)
			return
		}
		if f == nil {
			f = map[string]string{}
		}
		b.fields = f
	})
	return b.fields, b.err
}

// RawFields returns the record's key=value pairs as written: quotes
// removed, nothing decoded, nothing dropped, keys such as a1[0] and a1_len
// kept. A USER record's msg='…' is flattened into the record, its pairs
// overriding outer ones, as auparse does. It never fails; a record with no
// pairs gives an empty map. The map is new at each call and owned by the
// caller.
func (r AuditRecord) RawFields() map[string]string {
	out := map[string]string{}
	for k, v := range splitPairs(afterHeader(r.Text)) {
		if k == "msg" && len(v) > 0 {
			for ik, iv := range splitPairs(v) {
				out[ik] = iv
			}
			continue
		}
		out[k] = v
	}
	return out
}

// afterHeader is the text after the audit(…): header, or all of text when
// it has no header.
func afterHeader(text string) string {
	if strings.HasPrefix(text, "audit(") {
		if i := strings.IndexByte(text, ')'); i >= 0 {
			text = strings.TrimPrefix(text[i+1:], ":")
		}
	}
	return text
}

// Binary replies of the kernel to requests (kernel/audit.c
// audit_receive_msg). A recorder that captures its own requests' answers
// stores these; they are not records.
var auditReplyTypes = map[auparse.AuditMessageType]bool{
	auparse.AUDIT_GET:         true,
	auparse.AUDIT_LIST:        true,
	auparse.AUDIT_SIGNAL_INFO: true,
	auparse.AUDIT_LIST_RULES:  true,
	auparse.AUDIT_TTY_GET:     true,
	auparse.AUDIT_GET_FEATURE: true,
	auparse.AUDIT_WATCH_LIST:  true,
}

// DecodeAuditMessage decodes one netlink message from NETLINK_AUDIT as
// received from the kernel: a 16-byte nlmsghdr whose type is the record
// type, then the record text.
//
// The kernel sends one record per datagram, and historically sets
// nlmsg_len to the length of the text alone, without the header
// (kernel/audit.c audit_log_end; the multicast copy gets the right length,
// see kauditd_send_multicast_skb). So, like go-libaudit's
// parseNetlinkAuditMessage, DecodeAuditMessage takes every byte after the
// header as the text, and fails only when nlmsg_len claims more bytes than
// msg holds. Trailing NULs and whitespace are removed.
//
// On error the returned record is the zero value and the error wraps
// ErrTruncated, ErrMalformed (text without an audit(…) header: auparse
// cannot parse it) or ErrControl (netlink control messages and the binary
// replies to the recorder's requests). The record does not keep msg.
// DecodeAuditMessage never panics, whatever the input.
func DecodeAuditMessage(msg []byte) (AuditRecord, error) {
	h, err := parseNLHeader(msg)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("audit message: %w", err)
	}
	if uint64(h.Len) > uint64(len(msg)) {
		return AuditRecord{}, fmt.Errorf("%w: audit message: nlmsg_len %d exceeds the %d bytes received", ErrTruncated, h.Len, len(msg))
	}
	typ := auparse.AuditMessageType(h.Type)
	if h.Type < nlmsgMinType {
		return AuditRecord{}, fmt.Errorf("audit message: %w", controlError(h.Type, msg))
	}
	if auditReplyTypes[typ] {
		return AuditRecord{}, fmt.Errorf("%w: audit %v reply", ErrControl, typ)
	}
	m, err := auparse.Parse(typ, trimText(string(msg[nlmsgHdrLen:])))
	if err != nil {
		return AuditRecord{}, fmt.Errorf("%w: audit %v record: %v", ErrMalformed, typ, err)
	}
	return newRecord(m, ""), nil
}

// ParseLogLine parses one line of an auditd log (/var/log/audit/audit.log),
// in the raw format
//
//	type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 …
//
// optionally preceded by node=NAME, or in the enriched format, where a GS
// (0x1d) byte precedes the interpreted fields (AUID="root" …): those are
// dropped and only the raw part is parsed. Surrounding whitespace and a
// trailing newline are ignored.
//
// The header is parsed by auparse.ParseLogLine; an unknown type name, a
// line not starting with type= (or node=… type=), or a missing audit(…)
// header is an error wrapping ErrMalformed, and the record is then the zero
// value. ParseLogLine never panics, whatever the input.
func ParseLogLine(line string) (AuditRecord, error) {
	if i := strings.IndexByte(line, 0x1d); i >= 0 {
		line = line[:i]
	}
	line = strings.Trim(line, "\r\n\x00 \t")
	var node string
	if rest, ok := strings.CutPrefix(line, "node="); ok {
		name, after, found := strings.Cut(rest, " ")
		if !found {
			return AuditRecord{}, fmt.Errorf("%w: audit log line: node= without a record", ErrMalformed)
		}
		node, line = name, strings.TrimLeft(after, " ")
	}
	if !strings.HasPrefix(line, "type=") {
		return AuditRecord{}, fmt.Errorf("%w: audit log line does not start with type=", ErrMalformed)
	}
	m, err := auparse.ParseLogLine(line)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("%w: audit log line: %v", ErrMalformed, err)
	}
	return newRecord(m, node), nil
}

// trimText cuts what is not a record's text: white space before it (as
// auparse.Parse's strings.TrimSpace does), and NULs (the kernel pads with
// them) and white space after it, in any order. Both decoders trim with
// it before parsing, so they parse the same text: trimming ASCII alone
// first, as they did, left "\x00" behind a U+0085 that TrimSpace then
// removed, and the two disagreed on whether the record had fields.
//
// A text of ASCII at both ends, as the kernel writes it ("audit(" first, a
// NUL or nothing last), is trimmed byte by byte; only a byte of 0x80 or
// more where trimming stops (U+0085 and U+00A0 are spaces) takes the
// rune by rune way. The runes were 7% of a capture reader's CPU.
func trimText(s string) string {
	i, j := 0, len(s)
	for i < j && asciiSpace(s[i]) {
		i++
	}
	for j > i && (s[j-1] == 0 || asciiSpace(s[j-1])) {
		j--
	}
	if i < j && (s[i] >= utf8.RuneSelf || s[j-1] >= utf8.RuneSelf) {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		return strings.TrimRightFunc(s, isPadding)
	}
	return s[i:j]
}

// asciiSpace reports whether c is one of the ASCII bytes unicode.IsSpace
// accepts.
func asciiSpace(c byte) bool {
	return c == ' ' || c-'\t' <= '\r'-'\t'
}

func isPadding(r rune) bool { return r == 0 || unicode.IsSpace(r) }

// decodeAuditShared is DecodeAuditMessage for a msg that is never modified
// afterwards. It allocates nothing: the record's text points into msg, and
// the record has no cached body (Fields parses its Text at each call, as
// for a record built by hand), since auparse's message and its cache cost
// two allocations a record and most records are never asked for their
// fields. The header is parsed as auparse.Parse parses it; whatever this
// fast path does not accept goes to DecodeAuditMessage, for its error.
//
// It decodes into *rec, written in place: a record returned by value was
// stored on the stack field by field and copied from there whole, which
// stalled on the stores. hc, if not nil, is the header parsed last, by
// the same reader: a header equal to it is not parsed again.
func decodeAuditShared(rec *AuditRecord, msg []byte, hc *headerCache) (err error) {
	if len(msg) < nlmsgHdrLen {
		*rec, err = DecodeAuditMessage(msg)
		return err
	}
	// nlmsg_len and nlmsg_type, the two fields of the header wanted, read
	// alone: parseNLHeader's whole header, stored field by field and
	// loaded back at once, stalled on the stores.
	hLen := binary.LittleEndian.Uint32(msg[0:4])
	hType := binary.LittleEndian.Uint16(msg[4:6])
	typ := auparse.AuditMessageType(hType)
	// The kernel's replies are all numbered below AUDIT_GET_FEATURE+1:
	// records, from 1100 on, skip the map.
	if uint64(hLen) > uint64(len(msg)) || hType < nlmsgMinType || (typ <= auparse.AUDIT_GET_FEATURE && auditReplyTypes[typ]) {
		*rec, err = DecodeAuditMessage(msg)
		return err
	}
	text := msg[nlmsgHdrLen:]
	line := trimText(unsafe.String(unsafe.SliceData(text), len(text)))
	// auparse's parseAuditHeader: "…(SEC.MSEC:SERIAL)…", in plain
	// digits as the kernel writes them; anything else (signs, overflow)
	// goes the long way, for auparse's result or error.
	start := strings.IndexByte(line, '(')
	if start < 0 {
		*rec, err = DecodeAuditMessage(msg)
		return err
	}
	// The records are written field by field: the compiler builds a
	// composite literal assigned through a pointer on the stack first,
	// then copies it whole.
	var head string
	if hc != nil {
		if j := strings.IndexByte(line[start:], ')'); j > 0 && j < len(hc.b) {
			head = line[start : start+j+1]
			if hc.n == len(head) && string(hc.b[:hc.n]) == head {
				rec.Type, rec.Serial, rec.Node, rec.Text, rec.body = typ, hc.serial, "", line, nil
				rec.Time = hc.time
				return nil
			}
		}
	}
	sec, i, ok1 := digitsTo(line, start+1, '.', 18)
	msec, i, ok2 := digitsTo(line, i, ':', 18)
	serial, _, ok3 := digitsTo(line, i, ')', 10)
	if !ok1 || !ok2 || !ok3 || serial > math.MaxUint32 {
		*rec, err = DecodeAuditMessage(msg)
		return err
	}
	rec.Type, rec.Serial, rec.Node, rec.Text, rec.body = typ, serial, "", line, nil
	rec.Time = time.Unix(int64(sec), int64(msec)*int64(time.Millisecond)).UTC()
	if head != "" {
		hc.n = copy(hc.b[:], head)
		hc.serial, hc.time = serial, rec.Time
	}
	return nil
}

// headerCache is the last audit header decodeAuditShared parsed,
// "(SEC.MSEC:SERIAL)", and what it read from it. The records of one event
// share their header, so most records' header is the one before: compared
// with it, not parsed again (the digits were 2% of an analysis's CPU).
type headerCache struct {
	n      int
	b      [40]byte
	serial uint64
	time   time.Time
}

// digitsTo parses the decimal digits of s from i up to the byte end: 1
// to max of them and nothing else. It returns their value and the index
// after end; ok is false when s has anything else there. max 18 or less
// keeps it within an int64.
func digitsTo(s string, i int, end byte, max int) (v uint64, next int, ok bool) {
	for j := i; j < len(s) && j-i <= max; j++ {
		c := s[j]
		if c == end {
			return v, j + 1, j > i
		}
		if c-'0' > 9 {
			return 0, 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return 0, 0, false
}
